//! Shared by the micro benchmarks: record batches shaped like the ones a source broker
//! returns, the batch sizes to sweep, the memcpy baseline and a short default run.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::Criterion;
use strait::batch::{encode_batch, Compression, Record, RecordBatch};

/// Nominal batch sizes, from a lone small record up to the producer's largest usual batch.
pub const BATCH_SIZES: [usize; 4] = [1 << 10, 16 << 10, 256 << 10, 1 << 20];

const RECORD_VALUE_LEN: usize = 1000;
/// Header bytes of a v2 batch plus a generous per-record framing allowance.
const BATCH_HEADER_LEN: usize = 61;
const RECORD_FRAMING_LEN: usize = 16;

/// Short by default so that `cargo bench` stays within a couple of minutes on two cores;
/// `cargo bench -- --measurement-time 5` asks for more.
pub fn short_run() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

/// An uncompressed v2 batch of about `size` bytes (never less than one record): records
/// of 1000 pseudo-random bytes, or one smaller record when `size` is below that.
pub fn batch_of(size: usize) -> RecordBatch {
    let room = size.saturating_sub(BATCH_HEADER_LEN);
    let value_len = RECORD_VALUE_LEN.min(room.saturating_sub(RECORD_FRAMING_LEN).max(1));
    let count = (room / (value_len + RECORD_FRAMING_LEN)).max(1);
    let mut noise = NoiseBytes(0x9E37_79B9_7F4A_7C15);
    let records: Vec<Record> = (0..count as i64)
        .map(|offset| Record {
            offset,
            timestamp: 1_700_000_000_000 + offset,
            key: None,
            value: Some(noise.take(value_len)),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, Compression::None).expect("an uncompressed batch always encodes")
}

/// The baseline every benchmark is read against: copying the same bytes once.
pub fn memcpy(destination: &mut [u8], source: &[u8]) {
    destination.copy_from_slice(black_box(source));
    black_box(destination);
}

/// xorshift64: incompressible-looking bytes without pulling a random generator in.
struct NoiseBytes(u64);

impl NoiseBytes {
    fn take(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        out.truncate(len);
        Bytes::from(out)
    }
}

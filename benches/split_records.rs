//! Walking a fetched `records` blob into whole batches (`split_records`): only the
//! headers are read, the payloads become slices of the blob.

mod support;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strait::batch::split_records;

use support::{batch_of, memcpy, BATCH_SIZES};

/// About what one partition returns in a fetch with max.partition.fetch.bytes of 4 MiB.
const BLOB_BYTES: usize = 4 << 20;

/// The bytes of whole batches of about `batch_size` bytes each, back to back, totalling
/// at least `total` bytes: one partition's records in a fetch response.
fn fetched_blob(batch_size: usize, total: usize) -> Bytes {
    let batch = batch_of(batch_size);
    let count = total.div_ceil(batch.len()).max(1);
    let mut blob = Vec::with_capacity(count * batch.len());
    for _ in 0..count {
        blob.extend_from_slice(batch.as_bytes());
    }
    Bytes::from(blob)
}

fn split(c: &mut Criterion) {
    let mut group = c.benchmark_group("split_records");
    for size in BATCH_SIZES {
        let blob = fetched_blob(size, BLOB_BYTES);
        group.throughput(Throughput::Bytes(blob.len() as u64));
        group.bench_with_input(BenchmarkId::new("split", size), &blob, |b, blob| {
            b.iter(|| split_records(black_box(blob.clone())).expect("whole batches"))
        });
        let mut copy = vec![0u8; blob.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &blob, |b, blob| {
            b.iter(|| memcpy(&mut copy, blob))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::short_run();
    targets = split
}
criterion_main!(benches);

//! The fast path: a fresh 61-byte header in front of the untouched records payload.

use bytes::{BufMut, Bytes};

use super::crc_combine::crc32c_combine;
use super::error::BatchError;

use super::header::{
    RecordBatch, ATTRIBUTES_AT, BASE_OFFSET_AT, BASE_SEQUENCE_AT, CRC_AT, CRC_COVERS_FROM,
    DELETE_HORIZON_FLAG, HEADER_LEN, LOG_APPEND_TIME_FLAG, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, PARTITION_LEADER_EPOCH_AT, PRODUCER_ID_AT,
    TRANSACTIONAL_FLAG,
};

/// The producer identity strait writes with on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

impl ProducerStamp {
    pub const NON_IDEMPOTENT: Self = Self {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        base_sequence: NO_SEQUENCE,
        transactional: false,
    };
}

/// A batch ready for a produce request: write `header` then `payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedBatch {
    pub header: Bytes,
    pub payload: Bytes,
    pub records_count: i32,
    pub source_base_offset: i64,
    pub source_last_offset: i64,
}

impl PatchedBatch {
    /// Bytes on the wire, the size max.message.bytes limits.
    #[allow(clippy::len_without_is_empty)] // never empty: the header alone is 61 bytes
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len()
    }

    /// Header and payload for a vectored write.
    pub fn chunks(&self) -> [Bytes; 2] {
        [self.header.clone(), self.payload.clone()]
    }
}

/// A source batch whose CRC32C was checked, keeping the CRC of its payload so that
/// patching needs no second pass over the records.
#[derive(Debug, Clone)]
pub struct VerifiedBatch {
    batch: RecordBatch,
    payload_crc: u32,
}

impl VerifiedBatch {
    /// Checks the source CRC: a fresh CRC over a damaged payload would otherwise pass
    /// corruption on to the target as valid data.
    pub fn verify(batch: RecordBatch) -> Result<Self, BatchError> {
        let bytes = batch.as_bytes();
        let payload_crc = crc32c::crc32c(&bytes[HEADER_LEN..]);
        let header_crc = crc32c::crc32c(&bytes[CRC_COVERS_FROM..HEADER_LEN]);
        let actual = crc32c_combine(header_crc, payload_crc, bytes.len() - HEADER_LEN);
        if actual != batch.crc() {
            return Err(BatchError::CrcMismatch {
                base_offset: batch.base_offset(),
                expected: batch.crc(),
                actual,
            });
        }
        Ok(VerifiedBatch { batch, payload_crc })
    }

    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// Bytes on the wire.
    #[allow(clippy::len_without_is_empty)] // never empty: the header alone is 61 bytes
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn records_count(&self) -> i32 {
        self.batch.records_count()
    }
}

/// Rewrites what the target broker insists on and leaves the records alone:
/// baseOffset 0, partitionLeaderEpoch -1, the LogAppendTime and delete-horizon bits
/// cleared (record timestamps read as baseTimestamp + delta either way), the
/// transactional bit and producer fields from `stamp`, and the CRC32C of the new header
/// combined with the payload's, which was computed once when the batch was verified.
/// The batch must be one the fast path can carry (see `slow_reason`), and not a
/// control batch.
pub fn patch(verified: &VerifiedBatch, stamp: &ProducerStamp) -> PatchedBatch {
    let batch = &verified.batch;
    let source = batch.as_bytes();
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&source[..HEADER_LEN]);

    let mut attributes =
        batch.attributes() & !(LOG_APPEND_TIME_FLAG | DELETE_HORIZON_FLAG | TRANSACTIONAL_FLAG);
    if stamp.transactional {
        attributes |= TRANSACTIONAL_FLAG;
    }
    put_at(&mut header, BASE_OFFSET_AT, |b| b.put_i64(0));
    put_at(&mut header, PARTITION_LEADER_EPOCH_AT, |b| {
        b.put_i32(NO_PARTITION_LEADER_EPOCH)
    });
    put_at(&mut header, ATTRIBUTES_AT, |b| b.put_i16(attributes));
    put_at(&mut header, PRODUCER_ID_AT, |b| {
        b.put_i64(stamp.producer_id);
        b.put_i16(stamp.producer_epoch);
    });
    put_at(&mut header, BASE_SEQUENCE_AT, |b| {
        b.put_i32(stamp.base_sequence)
    });

    let payload = batch.payload();
    let crc = crc32c_combine(
        crc32c::crc32c(&header[CRC_COVERS_FROM..]),
        verified.payload_crc,
        payload.len(),
    );
    put_at(&mut header, CRC_AT, |b| b.put_u32(crc));

    PatchedBatch {
        header: Bytes::from(header),
        payload,
        records_count: batch.records_count(),
        source_base_offset: batch.base_offset(),
        source_last_offset: batch.last_offset(),
    }
}

fn put_at(header: &mut [u8], at: usize, write: impl FnOnce(&mut &mut [u8])) {
    let mut window = &mut header[at..];
    write(&mut window);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verify, then patch: the order the engine uses.
    fn patch(batch: &RecordBatch, stamp: &ProducerStamp) -> Result<PatchedBatch, BatchError> {
        Ok(super::patch(&VerifiedBatch::verify(batch.clone())?, stamp))
    }
    use crate::batch::header::{LOG_APPEND_TIME_FLAG, MAX_TIMESTAMP_AT, PARTITION_LEADER_EPOCH_AT};
    use crate::batch::test_support::{
        edit_batch, kp_batch, kp_decode, kp_record, put_i16_at, put_i32_at, put_i64_at, ALL_CODECS,
    };

    /// A batch as a source broker stores it: offsets 500..502, leader epoch 4, an
    /// idempotent producer, LogAppendTime.
    fn source_batch(codec: crate::batch::Compression) -> RecordBatch {
        let records = [
            kp_record(500, 10_000, Some(b"k1"), Some(b"v1")),
            kp_record(501, 10_007, None, Some(b"")),
            kp_record(502, 9_990, Some(b""), None),
        ];
        let bytes = edit_batch(&kp_batch(&records, codec), |b| {
            put_i32_at(b, PARTITION_LEADER_EPOCH_AT, 4);
            put_i16_at(
                b,
                ATTRIBUTES_AT,
                i16::from(codec.id()) | LOG_APPEND_TIME_FLAG,
            );
            put_i64_at(b, MAX_TIMESTAMP_AT, 99_999);
            put_i64_at(b, PRODUCER_ID_AT, 4242);
            put_i16_at(b, crate::batch::header::PRODUCER_EPOCH_AT, 2);
            put_i32_at(b, BASE_SEQUENCE_AT, 17);
        });
        RecordBatch::new(bytes).unwrap()
    }

    fn joined(patched: &PatchedBatch) -> RecordBatch {
        RecordBatch::new(Bytes::from(
            [&patched.header[..], &patched.payload[..]].concat(),
        ))
        .unwrap()
    }

    #[test]
    fn idempotent_stamp_rewrites_the_header_and_keeps_the_records() {
        let stamp = ProducerStamp {
            producer_id: 31,
            producer_epoch: 5,
            base_sequence: 1_000,
            transactional: false,
        };
        for codec in ALL_CODECS {
            let source = source_batch(codec);
            let patched = patch(&source, &stamp).unwrap();
            assert_eq!(patched.header.len(), HEADER_LEN);
            assert_eq!(patched.len(), source.len());
            assert_eq!(patched.records_count, 3);
            assert_eq!(patched.source_base_offset, 500);
            assert_eq!(patched.source_last_offset, 502);

            let out = joined(&patched);
            out.verify_crc().unwrap();
            assert_eq!(out.base_offset(), 0);
            assert_eq!(out.partition_leader_epoch(), -1);
            assert_eq!(out.attributes(), i16::from(codec.id()), "{codec}");
            assert_eq!(out.producer_id(), 31);
            assert_eq!(out.producer_epoch(), 5);
            assert_eq!(out.base_sequence(), 1_000);
            assert_eq!(out.last_offset_delta(), source.last_offset_delta());
            assert_eq!(out.base_timestamp(), source.base_timestamp());
            assert_eq!(out.max_timestamp(), source.max_timestamp());
            assert_eq!(out.records_count(), source.records_count());

            let oracle = kp_decode(out.as_bytes());
            let seen: Vec<_> = oracle
                .records
                .iter()
                .map(|r| {
                    (
                        r.offset,
                        r.timestamp,
                        r.key.clone(),
                        r.value.clone(),
                        r.sequence,
                    )
                })
                .collect();
            let k = |s: &'static [u8]| Some(Bytes::from_static(s));
            assert_eq!(
                seen,
                [
                    (0, 10_000, k(b"k1"), k(b"v1"), 1_000),
                    (1, 10_007, None, k(b""), 1_001),
                    (2, 9_990, k(b""), None, 1_002),
                ],
                "{codec}"
            );
        }
    }

    #[test]
    fn the_payload_is_the_source_slice_itself() {
        let source = source_batch(crate::batch::Compression::Lz4);
        let patched = patch(&source, &ProducerStamp::NON_IDEMPOTENT).unwrap();
        assert_eq!(
            patched.payload.as_ptr(),
            source.as_bytes()[HEADER_LEN..].as_ptr()
        );
        assert_eq!(patched.payload.len(), source.len() - HEADER_LEN);
        let [header, payload] = patched.chunks();
        assert_eq!(header, patched.header);
        assert_eq!(payload.as_ptr(), patched.payload.as_ptr());
    }

    #[test]
    fn non_idempotent_and_transactional_stamps() {
        let source = source_batch(crate::batch::Compression::Gzip);
        let plain = joined(&patch(&source, &ProducerStamp::NON_IDEMPOTENT).unwrap());
        assert_eq!(
            (
                plain.producer_id(),
                plain.producer_epoch(),
                plain.base_sequence()
            ),
            (-1, -1, -1)
        );
        assert!(!plain.is_transactional());
        plain.verify_crc().unwrap();

        let txn = ProducerStamp {
            producer_id: 8,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
        };
        let out = joined(&patch(&source, &txn).unwrap());
        assert!(out.is_transactional());
        assert!(kp_decode(out.as_bytes())
            .records
            .iter()
            .all(|r| r.transactional));
        // a transactional source written non-transactionally loses the bit
        let again = joined(&patch(&out, &ProducerStamp::NON_IDEMPOTENT).unwrap());
        assert!(!again.is_transactional());
        again.verify_crc().unwrap();
    }

    #[test]
    fn a_damaged_source_is_refused_instead_of_getting_a_fresh_crc() {
        let source = source_batch(crate::batch::Compression::None);
        let mut damaged = source.as_bytes().to_vec();
        damaged[HEADER_LEN + 3] ^= 0x04;
        let damaged = RecordBatch::new(Bytes::from(damaged)).unwrap();
        let err = patch(&damaged, &ProducerStamp::NON_IDEMPOTENT).unwrap_err();
        assert!(
            matches!(
                err,
                BatchError::CrcMismatch {
                    base_offset: 500,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_delete_horizon_bit_is_cleared() {
        let source = source_batch(crate::batch::Compression::None);
        let marked = edit_batch(source.as_bytes(), |b| {
            put_i16_at(b, ATTRIBUTES_AT, DELETE_HORIZON_FLAG)
        });
        let marked = RecordBatch::new(marked).unwrap();
        let out = joined(&patch(&marked, &ProducerStamp::NON_IDEMPOTENT).unwrap());
        assert!(!out.has_delete_horizon());
        out.verify_crc().unwrap();
    }
}

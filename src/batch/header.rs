//! The v2 RecordBatch header and a zero-copy view of one whole batch.

use std::fmt;

use bytes::Bytes;

use super::error::BatchError;

/// Byte positions of the v2 header fields (big-endian), as in Kafka's DefaultRecordBatch.
pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORDS_COUNT_AT: usize = 57;
/// Size of the v2 header; the records follow it.
pub const HEADER_LEN: usize = 61;
/// baseOffset and batchLength: the part of every log entry that batchLength does not count.
pub const LOG_OVERHEAD: usize = 12;
/// The CRC32C covers the batch from the attributes to the end.
pub const CRC_COVERS_FROM: usize = ATTRIBUTES_AT;

pub const MAGIC_V2: i8 = 2;

/// Attribute bits.
pub const CODEC_MASK: i16 = 0x07;
pub const LOG_APPEND_TIME_FLAG: i16 = 0x08;
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
pub const CONTROL_FLAG: i16 = 0x20;
pub const DELETE_HORIZON_FLAG: i16 = 0x40;

/// "None" values of the producer fields and of timestamps.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
pub const NO_TIMESTAMP: i64 = -1;

/// Compression codec of a batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
        }
    }

    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        })
    }
}

pub(crate) fn read_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn read_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The offset after a v2 batch known only by its first bytes (the incomplete batch a
/// fetch answer is cut in), when they reach its last offset delta.
pub fn next_offset_of_partial(head: &[u8]) -> Option<i64> {
    if head.len() < LAST_OFFSET_DELTA_AT + 4 || head[MAGIC_AT] as i8 != MAGIC_V2 {
        return None;
    }
    let last_offset = read_i64(head, BASE_OFFSET_AT)
        .wrapping_add(i64::from(read_i32(head, LAST_OFFSET_DELTA_AT)));
    Some(last_offset.wrapping_add(1))
}

/// One whole v2 record batch: header and records, exactly `LOG_OVERHEAD + batchLength`
/// bytes. Cloning shares the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

impl RecordBatch {
    /// Wraps bytes that must hold exactly one v2 batch (length and magic are checked,
    /// the CRC is not: see [`RecordBatch::verify_crc`]).
    pub fn new(bytes: Bytes) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_LEN {
            return Err(BatchError::CorruptBatch {
                base_offset: if bytes.len() >= 8 {
                    read_i64(&bytes, BASE_OFFSET_AT)
                } else {
                    -1
                },
                reason: format!(
                    "{} bytes are fewer than the {HEADER_LEN}-byte v2 header",
                    bytes.len()
                ),
            });
        }
        let magic = bytes[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic {
                position: MAGIC_AT,
                magic,
            });
        }
        let batch = Self { bytes };
        let declared = batch.batch_length() as i64 + LOG_OVERHEAD as i64;
        if declared != batch.bytes.len() as i64 {
            return Err(BatchError::CorruptBatch {
                base_offset: batch.base_offset(),
                reason: format!(
                    "batchLength {} declares {declared} bytes but the batch has {}",
                    batch.batch_length(),
                    batch.bytes.len()
                ),
            });
        }
        Ok(batch)
    }

    pub fn base_offset(&self) -> i64 {
        read_i64(&self.bytes, BASE_OFFSET_AT)
    }

    /// Offset of the last record the batch was written with; compaction keeps it even
    /// when that record is gone.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }

    /// Where the next fetch continues after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    pub fn batch_length(&self) -> i32 {
        read_i32(&self.bytes, BATCH_LENGTH_AT)
    }

    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(&self.bytes, PARTITION_LEADER_EPOCH_AT)
    }

    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_AT] as i8
    }

    pub fn crc(&self) -> u32 {
        read_i32(&self.bytes, CRC_AT) as u32
    }

    pub fn attributes(&self) -> i16 {
        read_i16(&self.bytes, ATTRIBUTES_AT)
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        let codec = (self.attributes() & CODEC_MASK) as u8;
        Compression::from_id(codec).ok_or(BatchError::UnknownCodec {
            base_offset: self.base_offset(),
            codec,
        })
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_FLAG != 0
    }

    pub fn has_log_append_time(&self) -> bool {
        self.attributes() & LOG_APPEND_TIME_FLAG != 0
    }

    /// Set by the log cleaner: `base_timestamp()` then holds the delete horizon, and
    /// record timestamps are still `base_timestamp() + delta`.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & DELETE_HORIZON_FLAG != 0
    }

    pub fn last_offset_delta(&self) -> i32 {
        read_i32(&self.bytes, LAST_OFFSET_DELTA_AT)
    }

    pub fn base_timestamp(&self) -> i64 {
        read_i64(&self.bytes, BASE_TIMESTAMP_AT)
    }

    pub fn max_timestamp(&self) -> i64 {
        read_i64(&self.bytes, MAX_TIMESTAMP_AT)
    }

    pub fn producer_id(&self) -> i64 {
        read_i64(&self.bytes, PRODUCER_ID_AT)
    }

    pub fn producer_epoch(&self) -> i16 {
        read_i16(&self.bytes, PRODUCER_EPOCH_AT)
    }

    pub fn base_sequence(&self) -> i32 {
        read_i32(&self.bytes, BASE_SEQUENCE_AT)
    }

    pub fn records_count(&self) -> i32 {
        read_i32(&self.bytes, RECORDS_COUNT_AT)
    }

    /// True when the batch holds no record (compaction keeps such batches for producer
    /// state); the target refuses them, so they are dropped.
    pub fn is_empty(&self) -> bool {
        self.records_count() == 0
    }

    /// The records (compressed as one blob when the codec is not none), sharing the
    /// batch's memory.
    pub fn payload(&self) -> Bytes {
        self.bytes.slice(HEADER_LEN..)
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Size of the whole batch in bytes, the figure max.message.bytes limits.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let actual = crc32c::crc32c(&self.bytes[CRC_COVERS_FROM..]);
        if actual == self.crc() {
            Ok(())
        } else {
            Err(BatchError::CrcMismatch {
                base_offset: self.base_offset(),
                expected: self.crc(),
                actual,
            })
        }
    }
}

impl fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("records_count", &self.records_count())
            .field("attributes", &format_args!("{:#06x}", self.attributes()))
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_support::{
        edit_batch, kp_batch, kp_record, put_i16_at, put_i32_at, put_i64_at,
    };

    fn sample() -> Bytes {
        let records = [
            kp_record(40, 1_000, Some(b"a"), Some(b"1")),
            kp_record(41, 1_005, Some(b"b"), Some(b"2")),
        ];
        kp_batch(&records, Compression::Snappy)
    }

    #[test]
    fn accessors_read_each_header_field() {
        let bytes = edit_batch(&sample(), |b| {
            put_i32_at(b, PARTITION_LEADER_EPOCH_AT, 9);
            put_i16_at(b, ATTRIBUTES_AT, 0x02 | 0x08 | 0x10 | 0x40);
            put_i64_at(b, MAX_TIMESTAMP_AT, 2_000);
            put_i64_at(b, PRODUCER_ID_AT, 77);
            put_i16_at(b, PRODUCER_EPOCH_AT, 3);
            put_i32_at(b, BASE_SEQUENCE_AT, 12);
        });
        let batch = RecordBatch::new(bytes.clone()).unwrap();
        assert_eq!(batch.base_offset(), 40);
        assert_eq!(batch.last_offset_delta(), 1);
        assert_eq!(batch.last_offset(), 41);
        assert_eq!(batch.next_offset(), 42);
        assert_eq!(batch.batch_length() as usize, bytes.len() - LOG_OVERHEAD);
        assert_eq!(batch.partition_leader_epoch(), 9);
        assert_eq!(batch.magic(), 2);
        assert_eq!(batch.compression().unwrap(), Compression::Snappy);
        assert!(batch.has_log_append_time());
        assert!(batch.is_transactional());
        assert!(!batch.is_control());
        assert!(batch.has_delete_horizon());
        assert_eq!(batch.base_timestamp(), 1_000);
        assert_eq!(batch.max_timestamp(), 2_000);
        assert_eq!(batch.producer_id(), 77);
        assert_eq!(batch.producer_epoch(), 3);
        assert_eq!(batch.base_sequence(), 12);
        assert_eq!(batch.records_count(), 2);
        assert!(!batch.is_empty());
        assert_eq!(batch.len(), bytes.len());
        assert_eq!(batch.payload(), bytes.slice(HEADER_LEN..));
        assert_eq!(batch.crc(), crc32c::crc32c(&bytes[CRC_COVERS_FROM..]));
        batch.verify_crc().unwrap();
    }

    #[test]
    fn unknown_codec_is_an_error_naming_the_offset() {
        let bytes = edit_batch(&sample(), |b| put_i16_at(b, ATTRIBUTES_AT, 0x05));
        let err = RecordBatch::new(bytes).unwrap().compression().unwrap_err();
        assert!(
            matches!(
                err,
                BatchError::UnknownCodec {
                    base_offset: 40,
                    codec: 5
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn verify_crc_reports_expected_and_actual() {
        let mut bytes = sample().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let batch = RecordBatch::new(Bytes::from(bytes.clone())).unwrap();
        match batch.verify_crc().unwrap_err() {
            BatchError::CrcMismatch {
                base_offset,
                expected,
                actual,
            } => {
                assert_eq!(base_offset, 40);
                assert_eq!(expected, batch.crc());
                assert_eq!(actual, crc32c::crc32c(&bytes[CRC_COVERS_FROM..]));
                assert_ne!(expected, actual);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn new_refuses_wrong_length_or_magic() {
        let bytes = sample();
        let short = bytes.slice(..bytes.len() - 1);
        assert!(matches!(
            RecordBatch::new(short),
            Err(BatchError::CorruptBatch {
                base_offset: 40,
                ..
            })
        ));
        let mut v1 = bytes.to_vec();
        v1[MAGIC_AT] = 1;
        assert!(matches!(
            RecordBatch::new(Bytes::from(v1)),
            Err(BatchError::UnsupportedMagic {
                position: MAGIC_AT,
                magic: 1
            })
        ));
        assert!(matches!(
            RecordBatch::new(bytes.slice(..30)),
            Err(BatchError::CorruptBatch { .. })
        ));
    }
}

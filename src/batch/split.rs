//! Splits a fetched `records` blob into whole log entries without copying.

use bytes::Bytes;

use super::error::BatchError;
use super::header::{
    read_i32, read_i64, RecordBatch, BATCH_LENGTH_AT, HEADER_LEN, LOG_OVERHEAD, MAGIC_AT, MAGIC_V2,
};

/// crc, magic, attributes, key length, value length: the smallest magic 0 message.
const LEGACY_MIN_MESSAGE_SIZE: i32 = 14;
const V2_MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;

/// One magic 0 or 1 log entry: offset, size, then the message. For a compressed
/// wrapper message the offset is that of its last inner message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEntry {
    bytes: Bytes,
}

impl LegacyEntry {
    /// Wraps bytes that must hold exactly one magic 0/1 entry (length and magic are
    /// checked, the CRC is checked on conversion).
    pub fn new(bytes: Bytes) -> Result<Self, BatchError> {
        let malformed = |reason: String| BatchError::Malformed {
            position: 0,
            reason,
        };
        if bytes.len() < LOG_OVERHEAD + LEGACY_MIN_MESSAGE_SIZE as usize {
            return Err(malformed(format!(
                "{} bytes are too few for a magic 0/1 message",
                bytes.len()
            )));
        }
        let magic = bytes[MAGIC_AT] as i8;
        if !(0..=1).contains(&magic) {
            return Err(BatchError::UnsupportedMagic {
                position: MAGIC_AT,
                magic,
            });
        }
        let size = read_i32(&bytes, BATCH_LENGTH_AT);
        if i64::from(size) + LOG_OVERHEAD as i64 != bytes.len() as i64 {
            return Err(malformed(format!(
                "message size {size} does not match the entry's {} bytes",
                bytes.len()
            )));
        }
        Ok(Self { bytes })
    }

    pub fn offset(&self) -> i64 {
        read_i64(&self.bytes, 0)
    }

    /// Where the next fetch continues after this entry.
    pub fn next_offset(&self) -> i64 {
        self.offset().wrapping_add(1)
    }

    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_AT] as i8
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEntry {
    V2(RecordBatch),
    Legacy(LegacyEntry),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRecords {
    pub entries: Vec<RawEntry>,
    /// Bytes of a last entry cut off by the fetch size limit; they are left out and the
    /// next fetch starts at that entry.
    pub truncated_tail_bytes: usize,
}

/// Walks the entries of a fetched `records` blob, as Kafka's ByteBufferLogInputStream
/// does: each entry is a slice of `blob`. An incomplete last entry is reported in
/// `truncated_tail_bytes`, not as an error.
pub fn split_records(blob: Bytes) -> Result<SplitRecords, BatchError> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < blob.len() {
        let remaining = blob.len() - at;
        if remaining < LOG_OVERHEAD {
            break;
        }
        let size = read_i32(&blob, at + BATCH_LENGTH_AT);
        if size < LEGACY_MIN_MESSAGE_SIZE {
            return Err(BatchError::Malformed {
                position: at + BATCH_LENGTH_AT,
                reason: format!(
                    "entry size {size} is below the smallest possible ({LEGACY_MIN_MESSAGE_SIZE})"
                ),
            });
        }
        if remaining <= MAGIC_AT {
            break;
        }
        let magic = blob[at + MAGIC_AT] as i8;
        if !(0..=MAGIC_V2).contains(&magic) {
            return Err(BatchError::UnsupportedMagic {
                position: at + MAGIC_AT,
                magic,
            });
        }
        if magic == MAGIC_V2 && size < V2_MIN_BATCH_LENGTH {
            return Err(BatchError::Malformed {
                position: at + BATCH_LENGTH_AT,
                reason: format!(
                    "v2 batch length {size} is below the header's {V2_MIN_BATCH_LENGTH} bytes"
                ),
            });
        }
        let entry_len = LOG_OVERHEAD + size as usize;
        if remaining < entry_len {
            break;
        }
        let bytes = blob.slice(at..at + entry_len);
        entries.push(if magic == MAGIC_V2 {
            RawEntry::V2(RecordBatch::new(bytes)?)
        } else {
            RawEntry::Legacy(LegacyEntry::new(bytes)?)
        });
        at += entry_len;
    }
    Ok(SplitRecords {
        entries,
        truncated_tail_bytes: blob.len() - at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::header::Compression;
    use crate::batch::test_support::{kp_batch, kp_record, legacy_entry};

    fn batch_at(offset: i64, count: i64, codec: Compression) -> Bytes {
        let records: Vec<_> = (offset..offset + count)
            .map(|o| kp_record(o, 1_000 + o, Some(b"k"), Some(b"value")))
            .collect();
        kp_batch(&records, codec)
    }

    fn concat(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn splits_several_batches_as_slices_of_the_blob() {
        let first = batch_at(0, 3, Compression::None);
        let second = batch_at(3, 2, Compression::Gzip);
        let third = batch_at(5, 4, Compression::Zstd);
        let blob = concat(&[&first, &second, &third]);
        let split = split_records(blob.clone()).unwrap();
        assert_eq!(split.truncated_tail_bytes, 0);
        let mut expected_start = 0;
        let mut base_offsets = Vec::new();
        for (entry, source) in split.entries.iter().zip([&first, &second, &third]) {
            let RawEntry::V2(batch) = entry else {
                panic!("expected a v2 batch, got {entry:?}");
            };
            assert_eq!(batch.as_bytes(), source);
            assert_eq!(batch.as_bytes().as_ptr(), blob[expected_start..].as_ptr());
            expected_start += batch.len();
            base_offsets.push(batch.base_offset());
        }
        assert_eq!(split.entries.len(), 3);
        assert_eq!(base_offsets, [0, 3, 5]);
    }

    #[test]
    fn a_cut_off_last_entry_is_left_out_and_counted() {
        let first = batch_at(0, 3, Compression::None);
        let second = batch_at(3, 2, Compression::Lz4);
        for cut in [1, 11, 12, 16, 17, 61, second.len() - 1] {
            let blob = concat(&[&first, &second[..cut]]);
            let split = split_records(blob).unwrap();
            assert_eq!(split.entries.len(), 1, "cut {cut}");
            assert_eq!(split.truncated_tail_bytes, cut, "cut {cut}");
        }
        let legacy = legacy_entry(9, 1, 0, 5, None, Some(b"v"));
        let blob = concat(&[&first, &legacy[..legacy.len() - 2]]);
        assert_eq!(
            split_records(blob).unwrap().truncated_tail_bytes,
            legacy.len() - 2
        );
    }

    #[test]
    fn legacy_entries_are_kept_as_whole_messages() {
        let v0 = legacy_entry(7, 0, 0, -1, Some(b"k"), None);
        let v1 = legacy_entry(8, 1, 0, 1234, None, Some(b""));
        let v2 = batch_at(9, 1, Compression::None);
        let split = split_records(concat(&[&v0, &v1, &v2])).unwrap();
        let kinds: Vec<_> = split
            .entries
            .iter()
            .map(|e| match e {
                RawEntry::Legacy(l) => (l.magic(), l.offset(), l.as_bytes().len()),
                RawEntry::V2(b) => (b.magic(), b.base_offset(), b.len()),
            })
            .collect();
        assert_eq!(
            kinds,
            [(0, 7, v0.len()), (1, 8, v1.len()), (2, 9, v2.len())]
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_byte_position() {
        let first = batch_at(0, 1, Compression::None);
        let mut bad_magic = batch_at(1, 1, Compression::None).to_vec();
        bad_magic[MAGIC_AT] = 7;
        let err = split_records(concat(&[&first, &bad_magic])).unwrap_err();
        assert!(
            matches!(err, BatchError::UnsupportedMagic { position, magic: 7 } if position == first.len() + MAGIC_AT),
            "{err}"
        );

        let mut negative = batch_at(1, 1, Compression::None).to_vec();
        negative[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&(-5i32).to_be_bytes());
        let err = split_records(concat(&[&first, &negative])).unwrap_err();
        assert!(
            matches!(err, BatchError::Malformed { position, .. } if position == first.len() + BATCH_LENGTH_AT),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains(&format!("byte {}", first.len() + BATCH_LENGTH_AT)));

        let mut short_v2 = batch_at(1, 1, Compression::None).to_vec();
        short_v2[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&20i32.to_be_bytes());
        assert!(matches!(
            split_records(Bytes::from(short_v2)),
            Err(BatchError::Malformed {
                position: BATCH_LENGTH_AT,
                ..
            })
        ));
    }

    #[test]
    fn an_empty_blob_has_no_entries() {
        let split = split_records(Bytes::new()).unwrap();
        assert!(split.entries.is_empty());
        assert_eq!(split.truncated_tail_bytes, 0);
    }
}

//! Magic 0 and 1 messages (Kafka before 0.11), read into records the way Kafka's
//! AbstractLegacyRecordBatch and LegacyRecord present them to a consumer.
//!
//! Message: crc u32 (CRC-32 of magic..end), magic i8, attributes i8 (bits 0-2 codec,
//! bit 3 LogAppendTime in magic 1), timestamp i64 (magic 1 only), key and value as
//! i32 length (-1 null) + bytes. A compressed message holds a whole message set in
//! its value.

use bytes::Bytes;

use super::compression;
use super::error::BatchError;
use super::header::{read_i32, read_i64, Compression, LOG_OVERHEAD, MAGIC_AT, NO_TIMESTAMP};
use super::records::Record;
use super::split::{split_records, LegacyEntry, RawEntry};

const CRC_AT: usize = LOG_OVERHEAD;
const ATTRIBUTES_AT: usize = MAGIC_AT + 1;
const TIMESTAMP_AT: usize = ATTRIBUTES_AT + 1;
const CODEC_MASK: u8 = 0x07;
const LOG_APPEND_TIME_FLAG: u8 = 0x08;

struct Message {
    offset: i64,
    magic: i8,
    codec: Compression,
    log_append_time: bool,
    /// NO_TIMESTAMP for magic 0.
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

struct FieldReader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl FieldReader<'_> {
    fn nullable_bytes(&mut self, what: &str) -> Result<Option<Bytes>, String> {
        if self.at + 4 > self.bytes.len() {
            return Err(format!("{what} length runs past the end of the message"));
        }
        let len = read_i32(self.bytes, self.at);
        self.at += 4;
        match len {
            -1 => Ok(None),
            len if len < 0 => Err(format!("{what} length {len} is negative")),
            len => {
                let end = self.at + len as usize;
                if end > self.bytes.len() {
                    return Err(format!(
                        "{what} of {len} bytes runs past the end of the message"
                    ));
                }
                let slice = self.bytes.slice(self.at..end);
                self.at = end;
                Ok(Some(slice))
            }
        }
    }
}

fn parse_message(entry: &LegacyEntry) -> Result<Message, BatchError> {
    let bytes = entry.as_bytes();
    let offset = entry.offset();
    let corrupt = |reason: String| BatchError::CorruptBatch {
        base_offset: offset,
        reason,
    };
    let expected = read_i32(bytes, CRC_AT) as u32;
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[MAGIC_AT..]);
    if crc.sum() != expected {
        return Err(BatchError::CrcMismatch {
            base_offset: offset,
            expected,
            actual: crc.sum(),
        });
    }
    let magic = entry.magic();
    let attributes = bytes[ATTRIBUTES_AT];
    let codec_id = attributes & CODEC_MASK;
    let codec = match Compression::from_id(codec_id) {
        Some(Compression::Zstd) => {
            return Err(corrupt(
                "zstd compression in a magic 0/1 message, which Kafka never allowed".into(),
            ))
        }
        Some(codec) => codec,
        None => {
            return Err(BatchError::UnknownCodec {
                base_offset: offset,
                codec: codec_id,
            })
        }
    };
    let (timestamp, key_at) = if magic == 1 {
        if bytes.len() < TIMESTAMP_AT + 8 {
            return Err(corrupt(
                "magic 1 message too short for its timestamp".into(),
            ));
        }
        (read_i64(bytes, TIMESTAMP_AT), TIMESTAMP_AT + 8)
    } else {
        (NO_TIMESTAMP, TIMESTAMP_AT)
    };
    let mut reader = FieldReader { bytes, at: key_at };
    let key = reader.nullable_bytes("key").map_err(corrupt)?;
    let value = reader.nullable_bytes("value").map_err(corrupt)?;
    if reader.at != bytes.len() {
        return Err(corrupt(format!(
            "{} bytes follow the message's value",
            bytes.len() - reader.at
        )));
    }
    Ok(Message {
        offset,
        magic,
        codec,
        log_append_time: magic == 1 && attributes & LOG_APPEND_TIME_FLAG != 0,
        timestamp,
        key,
        value,
    })
}

fn plain_record(message: Message, offset: i64, timestamp: i64) -> Record {
    Record {
        offset,
        timestamp,
        key: message.key,
        value: message.value,
        headers: Vec::new(),
    }
}

/// The codec of the entry and its records with absolute offsets and the timestamps a
/// Kafka consumer sees (NO_TIMESTAMP for magic 0, the wrapper's time for messages
/// inside a LogAppendTime wrapper).
pub(crate) fn legacy_records(
    entry: &LegacyEntry,
) -> Result<(Compression, Vec<Record>), BatchError> {
    let wrapper = parse_message(entry)?;
    if wrapper.codec == Compression::None {
        let (offset, timestamp) = (wrapper.offset, wrapper.timestamp);
        return Ok((
            Compression::None,
            vec![plain_record(wrapper, offset, timestamp)],
        ));
    }
    let codec = wrapper.codec;
    let corrupt = |reason: String| BatchError::CorruptBatch {
        base_offset: wrapper.offset,
        reason,
    };
    let compressed = wrapper
        .value
        .as_ref()
        .ok_or_else(|| corrupt("compressed wrapper message has a null value".into()))?;
    let inner_set =
        compression::decompress(codec, compressed).map_err(|source| BatchError::Decompress {
            codec,
            base_offset: wrapper.offset,
            source,
        })?;
    let split = split_records(Bytes::from(inner_set))
        .map_err(|e| corrupt(format!("inner message set: {e}")))?;
    if split.truncated_tail_bytes != 0 {
        return Err(corrupt(format!(
            "inner message set ends with {} bytes of a cut-off message",
            split.truncated_tail_bytes
        )));
    }
    let mut inner = Vec::with_capacity(split.entries.len());
    for entry in &split.entries {
        let RawEntry::Legacy(entry) = entry else {
            return Err(corrupt("a v2 batch inside a magic 0/1 wrapper".into()));
        };
        let message = parse_message(entry)?;
        if message.codec != Compression::None {
            return Err(corrupt(
                "a compressed message inside a compressed wrapper".into(),
            ));
        }
        inner.push(message);
    }
    let last_inner_offset = inner
        .last()
        .map(|m| m.offset)
        .ok_or_else(|| corrupt("compressed wrapper holds no message".into()))?;
    // Magic 1 inner offsets are relative and the wrapper carries the absolute offset of
    // the last one (0 from some librdkafka versions); magic 0 inner offsets are absolute.
    let absolute_base = match wrapper.magic {
        1 if wrapper.offset == 0 => 0,
        1 if wrapper.offset < last_inner_offset => {
            return Err(corrupt(format!(
                "wrapper offset {} is below its last inner offset {last_inner_offset}",
                wrapper.offset
            )))
        }
        1 => wrapper.offset - last_inner_offset,
        _ => 0,
    };
    let records = inner
        .into_iter()
        .map(|message| {
            let timestamp = if message.magic == 1 && wrapper.log_append_time {
                wrapper.timestamp
            } else {
                message.timestamp
            };
            let offset = absolute_base + message.offset;
            plain_record(message, offset, timestamp)
        })
        .collect();
    Ok((codec, records))
}

//! The records inside a v2 batch: a small codec of Kafka's varint record format that
//! keeps null apart from empty and every header in order, duplicate keys included.

use bytes::{BufMut, Bytes};

use super::compression;
use super::error::BatchError;
use super::header::{
    Compression, RecordBatch, CRC_AT, CRC_COVERS_FROM, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One record with its absolute offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    /// `baseTimestamp + timestampDelta`: the time the producer wrote, also in
    /// LogAppendTime batches (where consumers are shown the batch's maxTimestamp).
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// Reads zigzag varints and length-prefixed fields, handing out slices of `data`.
struct Cursor {
    data: Bytes,
    at: usize,
}

impl Cursor {
    fn remaining(&self) -> usize {
        self.data.len() - self.at
    }

    fn take(&mut self, len: usize) -> Result<Bytes, String> {
        if len > self.remaining() {
            return Err(format!(
                "a field of {len} bytes at byte {} runs past the end ({} bytes)",
                self.at,
                self.data.len()
            ));
        }
        let slice = self.data.slice(self.at..self.at + len);
        self.at += len;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn unsigned_varint(&mut self, max_bytes: u32) -> Result<u64, String> {
        let start = self.at;
        let mut value = 0u64;
        for shift in 0..max_bytes {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7F) << (7 * shift);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "varint at byte {start} is longer than {max_bytes} bytes"
        ))
    }

    fn varint(&mut self) -> Result<i32, String> {
        let raw = self.unsigned_varint(5)? as u32;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, String> {
        let raw = self.unsigned_varint(10)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// A varint length then that many bytes; length -1 is null.
    fn nullable_bytes(&mut self, what: &str) -> Result<Option<Bytes>, String> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < 0 => Err(format!("{what} length {len} is negative")),
            len => self.take(len as usize).map(Some),
        }
    }
}

fn decode_record(
    cursor: &mut Cursor,
    base_offset: i64,
    base_timestamp: i64,
) -> Result<Record, String> {
    let length = cursor.varint()?;
    if length < 0 {
        return Err(format!("record length {length} is negative"));
    }
    let mut body = Cursor {
        data: cursor.take(length as usize)?,
        at: 0,
    };
    let _attributes = body.u8()?; // unused by every Kafka version so far
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let key = body.nullable_bytes("key")?;
    let value = body.nullable_bytes("value")?;
    let header_count = body.varint()?;
    if header_count < 0 {
        return Err(format!("header count {header_count} is negative"));
    }
    let mut headers = Vec::with_capacity((header_count as usize).min(body.remaining()));
    for _ in 0..header_count {
        let key = body
            .nullable_bytes("header key")?
            .ok_or("header key is null, which Kafka forbids")?;
        let value = body.nullable_bytes("header value")?;
        headers.push(Header { key, value });
    }
    if body.remaining() != 0 {
        return Err(format!(
            "record declares {length} bytes but its fields end {} bytes earlier",
            body.remaining()
        ));
    }
    Ok(Record {
        offset: base_offset + i64::from(offset_delta),
        timestamp: base_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        headers,
    })
}

/// Decodes every record of a batch, decompressing first if needed. Keys, values and
/// headers are slices of the batch (uncompressed) or of the decompressed buffer.
pub fn decode_records(batch: &RecordBatch) -> Result<Vec<Record>, BatchError> {
    let base_offset = batch.base_offset();
    let corrupt = |reason: String| BatchError::CorruptBatch {
        base_offset,
        reason,
    };
    let codec = batch.compression()?;
    let data =
        match codec {
            Compression::None => batch.payload(),
            _ => Bytes::from(compression::decompress(codec, &batch.payload()).map_err(
                |source| BatchError::Decompress {
                    codec,
                    base_offset,
                    source,
                },
            )?),
        };
    let count = batch.records_count();
    if count < 0 {
        return Err(corrupt(format!("recordsCount {count} is negative")));
    }
    let mut cursor = Cursor { data, at: 0 };
    let mut records = Vec::with_capacity((count as usize).min(cursor.remaining()));
    for index in 0..count {
        let record = decode_record(&mut cursor, base_offset, batch.base_timestamp())
            .map_err(|reason| corrupt(format!("record {index} of {count}: {reason}")))?;
        records.push(record);
    }
    if cursor.remaining() != 0 {
        return Err(corrupt(format!(
            "{} bytes follow the last of its {count} records",
            cursor.remaining()
        )));
    }
    Ok(records)
}

fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_nullable_bytes(out: &mut Vec<u8>, bytes: Option<&Bytes>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, bytes.len() as i32);
            out.extend_from_slice(bytes);
        }
    }
}

fn encode_record(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    record: &Record,
    offset_delta: i32,
    timestamp_delta: i64,
) {
    scratch.clear();
    scratch.push(0); // attributes
    put_varlong(scratch, timestamp_delta);
    put_varint(scratch, offset_delta);
    put_nullable_bytes(scratch, record.key.as_ref());
    put_nullable_bytes(scratch, record.value.as_ref());
    put_varint(scratch, record.headers.len() as i32);
    for header in &record.headers {
        put_nullable_bytes(scratch, Some(&header.key));
        put_nullable_bytes(scratch, header.value.as_ref());
    }
    put_varint(out, scratch.len() as i32);
    out.extend_from_slice(scratch);
}

/// Builds one v2 batch of `records` (not empty) as a fresh producer would: baseOffset 0,
/// offset deltas 0..n-1 in the given order, CreateTime with baseTimestamp = the first
/// record's timestamp, no producer id, partitionLeaderEpoch -1, valid CRC32C.
/// The records' own offsets are not written.
pub fn encode_batch(records: &[Record], codec: Compression) -> Result<RecordBatch, BatchError> {
    assert!(
        !records.is_empty(),
        "a record batch needs at least one record"
    );
    let base_timestamp = records[0].timestamp;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(base_timestamp);
    let mut body = Vec::new();
    let mut scratch = Vec::new();
    for (delta, record) in records.iter().enumerate() {
        encode_record(
            &mut body,
            &mut scratch,
            record,
            delta as i32,
            record.timestamp.wrapping_sub(base_timestamp),
        );
    }
    let payload = compression::compress(codec, &body)
        .map_err(|source| BatchError::Compress { codec, source })?;

    let mut batch = Vec::with_capacity(HEADER_LEN + payload.len());
    batch.put_i64(0);
    batch.put_i32((HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32);
    batch.put_i32(NO_PARTITION_LEADER_EPOCH);
    batch.put_i8(MAGIC_V2);
    batch.put_u32(0); // CRC, filled in below
    batch.put_i16(i16::from(codec.id()));
    batch.put_i32(records.len() as i32 - 1);
    batch.put_i64(base_timestamp);
    batch.put_i64(max_timestamp);
    batch.put_i64(NO_PRODUCER_ID);
    batch.put_i16(NO_PRODUCER_EPOCH);
    batch.put_i32(NO_SEQUENCE);
    batch.put_i32(records.len() as i32);
    batch.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&batch[CRC_COVERS_FROM..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    RecordBatch::new(Bytes::from(batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(value: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        out
    }

    #[test]
    fn varints_match_kafkas_zigzag_encoding() {
        // Values and encodings from the protobuf/Kafka zigzag definition.
        assert_eq!(varint_bytes(0), [0x00]);
        assert_eq!(varint_bytes(-1), [0x01]);
        assert_eq!(varint_bytes(1), [0x02]);
        assert_eq!(varint_bytes(-64), [0x7F]);
        assert_eq!(varint_bytes(64), [0x80, 0x01]);
        assert_eq!(varint_bytes(i32::MAX), [0xFE, 0xFF, 0xFF, 0xFF, 0x0F]);
        assert_eq!(varint_bytes(i32::MIN), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
        for value in [0, 1, -1, 300, -300, i32::MAX, i32::MIN] {
            let mut cursor = Cursor {
                data: Bytes::from(varint_bytes(value)),
                at: 0,
            };
            assert_eq!(cursor.varint().unwrap(), value);
        }
        for value in [0i64, -1, 1 << 40, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            let mut cursor = Cursor {
                data: Bytes::from(out),
                at: 0,
            };
            assert_eq!(cursor.varlong().unwrap(), value);
        }
    }

    #[test]
    fn a_varint_longer_than_five_bytes_is_refused() {
        let mut cursor = Cursor {
            data: Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            at: 0,
        };
        assert!(cursor.varint().unwrap_err().contains("longer than 5"));
    }

    use crate::batch::header::RECORDS_COUNT_AT;
    use crate::batch::test_support::{
        edit_batch, kp_batch, kp_decode, kp_header, kp_record, put_i32_at, ALL_CODECS,
    };

    fn bytes(text: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn decodes_kafka_protocol_batches_of_every_codec() {
        let mut with_headers = kp_record(102, 5_000, Some(b""), None);
        kp_header(&mut with_headers, "trace", Some(b"abc"));
        kp_header(&mut with_headers, "empty", Some(b""));
        kp_header(&mut with_headers, "null", None);
        let source = [
            kp_record(100, 5_010, None, Some(b"")),
            kp_record(101, 4_990, Some(b"key"), Some(b"value")),
            with_headers,
        ];
        for codec in ALL_CODECS {
            let batch = RecordBatch::new(kp_batch(&source, codec)).unwrap();
            let records = decode_records(&batch).unwrap();
            let summary: Vec<_> = records
                .iter()
                .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
                .collect();
            assert_eq!(
                summary,
                [
                    (100, 5_010, None, bytes("")),
                    (101, 4_990, bytes("key"), bytes("value")),
                    (102, 5_000, bytes(""), None),
                ],
                "{codec}"
            );
            let headers: Vec<_> = records[2]
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            assert_eq!(
                headers,
                [
                    (Bytes::from_static(b"trace"), bytes("abc")),
                    (Bytes::from_static(b"empty"), bytes("")),
                    (Bytes::from_static(b"null"), None),
                ],
                "{codec}"
            );
            assert!(records[0].headers.is_empty());
        }
    }

    #[test]
    fn uncompressed_fields_are_slices_of_the_batch() {
        let batch = RecordBatch::new(kp_batch(
            &[kp_record(0, 1, Some(b"key"), Some(b"value"))],
            Compression::None,
        ))
        .unwrap();
        let records = decode_records(&batch).unwrap();
        let value = records[0].value.as_ref().unwrap();
        let range = batch.as_bytes().as_ptr_range();
        assert!(range.contains(&value.as_ptr()));
    }

    fn record(offset: i64, timestamp: i64, headers: &[(&str, Option<&str>)]) -> Record {
        Record {
            offset,
            timestamp,
            key: bytes("k"),
            value: None,
            headers: headers
                .iter()
                .map(|(k, v)| Header {
                    key: Bytes::copy_from_slice(k.as_bytes()),
                    value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                })
                .collect(),
        }
    }

    #[test]
    fn encodes_a_record_byte_for_byte_as_the_format_defines_with_duplicate_headers() {
        let batch = encode_batch(
            &[record(900, 1_700, &[("h", Some("1")), ("h", None)])],
            Compression::None,
        )
        .unwrap();
        // length 14, attributes 0, timestampDelta 0, offsetDelta 0, key len 1 "k",
        // value len -1, 2 headers: len 1 "h" len 1 "1", len 1 "h" len -1
        let expected: &[u8] = &[
            0x1c, 0x00, 0x00, 0x00, 0x02, b'k', 0x01, 0x04, 0x02, b'h', 0x02, b'1', 0x02, b'h',
            0x01,
        ];
        assert_eq!(&batch.payload()[..], expected);
        let decoded = decode_records(&batch).unwrap();
        assert_eq!(
            decoded,
            [record(0, 1_700, &[("h", Some("1")), ("h", None)])]
        );
    }

    #[test]
    fn encoded_batches_read_back_with_kafka_protocol_for_every_codec() {
        let records = [
            record(50, 2_000, &[("a", Some("x"))]),
            record(51, 1_500, &[]),
            Record {
                key: None,
                value: bytes(""),
                ..record(53, 2_500, &[])
            },
        ];
        for codec in ALL_CODECS {
            let batch = encode_batch(&records, codec).unwrap();
            batch.verify_crc().unwrap();
            assert_eq!(batch.compression().unwrap(), codec);
            assert_eq!(batch.base_offset(), 0);
            assert_eq!(batch.last_offset_delta(), 2);
            assert_eq!(batch.records_count(), 3);
            assert_eq!(batch.base_timestamp(), 2_000);
            assert_eq!(batch.max_timestamp(), 2_500);
            assert_eq!(batch.producer_id(), -1);
            assert_eq!(batch.producer_epoch(), -1);
            assert_eq!(batch.base_sequence(), -1);
            assert_eq!(batch.partition_leader_epoch(), -1);
            assert_eq!(batch.attributes(), i16::from(codec.id()));
            let oracle = kp_decode(batch.as_bytes());
            let seen: Vec<_> = oracle
                .records
                .iter()
                .map(|r| {
                    (
                        r.offset,
                        r.timestamp,
                        r.key.clone(),
                        r.value.clone(),
                        r.headers.len(),
                    )
                })
                .collect();
            assert_eq!(
                seen,
                [
                    (0, 2_000, bytes("k"), None, 1),
                    (1, 1_500, bytes("k"), None, 0),
                    (2, 2_500, None, bytes(""), 0),
                ],
                "{codec}"
            );
        }
    }

    #[test]
    fn a_records_count_that_disagrees_with_the_payload_is_corrupt() {
        let source = kp_batch(
            &[
                kp_record(5, 1, Some(b"a"), None),
                kp_record(6, 1, Some(b"b"), None),
            ],
            Compression::None,
        );
        for (count, needle) in [
            (3, "record 2 of 3"),
            (1, "follow the last of its 1 records"),
            (-1, "negative"),
        ] {
            let batch = RecordBatch::new(edit_batch(&source, |b| {
                put_i32_at(b, RECORDS_COUNT_AT, count)
            }))
            .unwrap();
            let err = decode_records(&batch).unwrap_err();
            assert!(
                matches!(err, BatchError::CorruptBatch { base_offset: 5, .. }),
                "{err}"
            );
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn a_record_length_that_disagrees_with_its_fields_is_corrupt() {
        let source = kp_batch(&[kp_record(5, 1, Some(b"a"), None)], Compression::None);
        let length_at = crate::batch::header::HEADER_LEN;
        let edited = edit_batch(&source, |b| b[length_at] += 2);
        // the record now claims 1 more byte than the batch holds after it
        let err = decode_records(&RecordBatch::new(edited).unwrap()).unwrap_err();
        assert!(err.to_string().contains("runs past the end"), "{err}");
    }

    #[test]
    fn a_damaged_compressed_payload_is_a_decompress_error() {
        let source = kp_batch(
            &[kp_record(8, 1, Some(b"a"), Some(b"b"))],
            Compression::Zstd,
        );
        let edited = edit_batch(&source, |b| {
            let at = crate::batch::header::HEADER_LEN + 6;
            b[at] ^= 0xFF;
        });
        let err = decode_records(&RecordBatch::new(edited).unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                BatchError::Decompress {
                    codec: Compression::Zstd,
                    base_offset: 8,
                    ..
                }
            ),
            "{err}"
        );
    }
}

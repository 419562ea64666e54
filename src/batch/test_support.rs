//! Fixtures for the batch tests. Input batches come from kafka-protocol's encoder (an
//! implementation independent of ours) or are written byte by byte; output is checked
//! with kafka-protocol's decoder.

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, RecordSet, TimestampType, IEEE,
};

use super::header::{Compression, RecordBatch, CRC_AT, CRC_COVERS_FROM};

pub(crate) const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn kp_compression(codec: Compression) -> KpCompression {
    match codec {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

/// A plain record for kafka-protocol's encoder (no producer id, not transactional).
pub(crate) fn kp_record(
    offset: i64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> KpRecord {
    KpRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 7,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: -1,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: IndexMap::new(),
    }
}

pub(crate) fn kp_header(record: &mut KpRecord, key: &str, value: Option<&[u8]>) {
    record.headers.insert(
        StrBytes::from_string(key.to_owned()),
        value.map(Bytes::copy_from_slice),
    );
}

/// One v2 batch from kafka-protocol: baseOffset = the lowest record offset,
/// lastOffsetDelta = highest - lowest, baseTimestamp = the lowest timestamp,
/// baseSequence = the first record's sequence.
pub(crate) fn kp_batch(records: &[KpRecord], codec: Compression) -> Bytes {
    // kafka-protocol starts a new batch unless offset - sequence stays constant
    let min_offset = records.iter().map(|r| r.offset).min().expect("records");
    let base_sequence = records[0].sequence;
    let records: Vec<KpRecord> = records
        .iter()
        .map(|r| KpRecord {
            sequence: base_sequence.wrapping_add((r.offset - min_offset) as i32),
            ..r.clone()
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: kp_compression(codec),
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("kafka-protocol encodes");
    buf.freeze()
}

/// Decodes exactly one v2 batch with kafka-protocol (which also checks the CRC32C).
pub(crate) fn kp_decode(batch: &Bytes) -> RecordSet {
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes the batch");
    assert!(buf.is_empty(), "{} bytes left after one batch", buf.len());
    set
}

/// Applies `edit` to a copy of the batch and recomputes its CRC32C.
pub(crate) fn edit_batch(batch: &Bytes, edit: impl FnOnce(&mut [u8])) -> Bytes {
    let mut bytes = batch.to_vec();
    edit(&mut bytes);
    let crc = crc32c::crc32c(&bytes[CRC_COVERS_FROM..]);
    bytes[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

pub(crate) fn put_i16_at(bytes: &mut [u8], at: usize, value: i16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

pub(crate) fn put_i32_at(bytes: &mut [u8], at: usize, value: i32) {
    bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

pub(crate) fn put_i64_at(bytes: &mut [u8], at: usize, value: i64) {
    bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
}

/// One magic 0/1 log entry (offset, size, message), its CRC-32 computed with the
/// `crc` crate kafka-protocol uses.
pub(crate) fn legacy_entry(
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut message = Vec::new();
    message.put_i8(magic);
    message.put_u8(attributes);
    if magic == 1 {
        message.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            None => message.put_i32(-1),
            Some(bytes) => {
                message.put_i32(bytes.len() as i32);
                message.extend_from_slice(bytes);
            }
        }
    }
    let mut entry = Vec::new();
    entry.put_i64(offset);
    entry.put_i32(message.len() as i32 + 4);
    entry.put_u32(IEEE.checksum(&message));
    entry.extend_from_slice(&message);
    entry
}

/// A batch of one record of a transactional producer.
pub(crate) fn txn_batch(producer_id: i64, offset: i64) -> RecordBatch {
    let record = KpRecord {
        transactional: true,
        producer_id,
        producer_epoch: 0,
        sequence: 0,
        ..kp_record(offset, 1_000 + offset, Some(b"k"), Some(b"v"))
    };
    RecordBatch::new(kp_batch(&[record], Compression::None)).expect("valid batch")
}

/// A transaction marker as the broker writes it: key version 0 + type, value version 0
/// + coordinator epoch.
pub(crate) fn marker_batch(producer_id: i64, offset: i64, control_type: i16) -> RecordBatch {
    let mut key = vec![0, 0];
    key.extend_from_slice(&control_type.to_be_bytes());
    let record = KpRecord {
        transactional: true,
        control: true,
        producer_id,
        producer_epoch: 0,
        ..kp_record(
            offset,
            1_000 + offset,
            Some(&key),
            Some(&[0, 0, 0, 0, 0, 5]),
        )
    };
    RecordBatch::new(kp_batch(&[record], Compression::None)).expect("valid batch")
}

//! Real log segments written by Apache Kafka 4.3.1 (Java producer, broker, log
//! cleaner), read as a fetch would return them. Expected values come from Kafka's
//! own `kafka-dump-log` output for the same files.
//!
//! - java-producer-all-codecs: three idempotent producer batches per codec none,
//!   gzip, snappy, lz4, zstd; records (null key, empty value), (empty key, null value),
//!   (key, value, headers dup=1, other=null, dup="", dup=<codec>).
//! - aborted-then-committed-txn: producer 29 writes offsets 0-1 and aborts (marker at
//!   2), then writes offset 3 and commits (marker at 4).
//! - compacted-with-delete-horizon: keys k1 k2 k1 k3(tombstone) k2 at offsets 0-4,
//!   cleaned to offsets 2-4 with the delete horizon set, then k4 at offset 5.

use bytes::Bytes;

use super::aborted::AbortedTransactions;
use super::control::{control_marker, ControlMarker};
use super::header::{Compression, RecordBatch};
use super::patch::{patch, ProducerStamp, VerifiedBatch};
use super::records::decode_records;
use super::slow::{rebuild, slow_reason, SlowReason};
use super::split::{split_records, RawEntry};
use super::test_support::kp_decode;

fn fixture(hex: &str) -> Bytes {
    let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
    let byte = |pair: &[u8]| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
    Bytes::from(digits.chunks(2).map(byte).collect::<Vec<u8>>())
}

fn batches(hex: &str) -> Vec<RecordBatch> {
    let split = split_records(fixture(hex)).unwrap();
    assert_eq!(split.truncated_tail_bytes, 0);
    split
        .entries
        .into_iter()
        .map(|entry| match entry {
            RawEntry::V2(batch) => batch,
            RawEntry::Legacy(legacy) => panic!("unexpected legacy entry {legacy:?}"),
        })
        .collect()
}

const ALL_CODECS_LOG: &str = include_str!("fixtures/java-producer-all-codecs.hex");
const TXN_LOG: &str = include_str!("fixtures/aborted-then-committed-txn.hex");
const COMPACTED_LOG: &str = include_str!("fixtures/compacted-with-delete-horizon.hex");

fn some(text: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(text.as_bytes()))
}

#[test]
fn java_producer_batches_of_every_codec_decode_with_duplicate_headers() {
    let batches = batches(ALL_CODECS_LOG);
    let codecs: Vec<_> = batches.iter().map(|b| b.compression().unwrap()).collect();
    assert_eq!(
        codecs,
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd
        ]
    );
    for (batch, producer_id) in batches.iter().zip(24..) {
        batch.verify_crc().unwrap();
        assert_eq!(batch.producer_id(), producer_id);
        assert_eq!((batch.base_sequence(), batch.records_count()), (0, 3));
        let codec = batch.compression().unwrap().to_string();
        let records = decode_records(batch).unwrap();
        let base = batch.base_offset();
        let first_time = records[0].timestamp;
        let fields: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    r.timestamp - first_time,
                    r.key.clone(),
                    r.value.clone(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                (base, 0, None, some("")),
                (base + 1, 5, some(""), None),
                (
                    base + 2,
                    -3,
                    some(&format!("key-{codec}")),
                    some(&format!("{}{codec}", "value ".repeat(20)))
                ),
            ]
        );
        let headers: Vec<_> = records[2]
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        assert_eq!(
            headers,
            [
                (Bytes::from_static(b"dup"), some("1")),
                (Bytes::from_static(b"other"), None),
                (Bytes::from_static(b"dup"), some("")),
                (Bytes::from_static(b"dup"), some(&codec)),
            ]
        );
        assert_eq!(records[1].timestamp, batch.max_timestamp());
    }
}

#[test]
fn java_producer_batches_patch_and_rebuild_into_valid_batches() {
    let stamp = ProducerStamp {
        producer_id: 1_000,
        producer_epoch: 1,
        base_sequence: 40,
        transactional: false,
    };
    for batch in batches(ALL_CODECS_LOG) {
        assert_eq!(slow_reason(&batch, batch.base_offset(), 1 << 20), None);
        let patched = patch(&VerifiedBatch::verify(batch.clone()).unwrap(), &stamp);
        assert_eq!(patched.payload.as_ptr(), batch.payload().as_ptr());
        let joined = Bytes::from([&patched.header[..], &patched.payload[..]].concat());
        let oracle = kp_decode(&joined);
        assert_eq!(oracle.records.len(), 3);
        assert!(oracle.records.iter().all(|r| r.producer_id == 1_000));

        let rebuilt = rebuild(&batch, batch.base_offset() + 2, 1 << 20).unwrap();
        assert_eq!(rebuilt[0].source_offsets, [batch.base_offset() + 2]);
        assert_eq!(
            rebuilt[0].batch.compression().unwrap(),
            batch.compression().unwrap()
        );
        let original = decode_records(&batch).unwrap();
        let again = decode_records(&rebuilt[0].batch).unwrap();
        assert_eq!(again[0].headers, original[2].headers);
        assert_eq!(again[0].timestamp, original[2].timestamp);
        kp_decode(rebuilt[0].batch.as_bytes());
    }
}

#[test]
fn a_real_aborted_transaction_is_filtered_as_the_java_consumer_does() {
    let batches = batches(TXN_LOG);
    let markers: Vec<_> = batches.iter().map(|b| control_marker(b).unwrap()).collect();
    assert_eq!(
        markers,
        [
            None,
            Some(ControlMarker::Abort),
            None,
            Some(ControlMarker::Commit)
        ]
    );
    // the broker's aborted list for a fetch from offset 0: producer 29 from offset 0
    let mut filter = AbortedTransactions::new([(29, 0)]);
    let dropped: Vec<_> = batches.iter().map(|b| filter.should_drop(b)).collect();
    assert_eq!(dropped, [true, true, false, true]);
    let kept = decode_records(&batches[2]).unwrap();
    assert_eq!(kept[0].value, some("committed"));
}

#[test]
fn a_real_cleaned_batch_rebuilds_with_its_original_timestamps() {
    let batches = batches(COMPACTED_LOG);
    let cleaned = &batches[0];
    cleaned.verify_crc().unwrap();
    assert!(cleaned.has_delete_horizon());
    assert_eq!(cleaned.base_timestamp(), 1_795_406_366_574); // the horizon
    assert_eq!((cleaned.records_count(), cleaned.last_offset()), (3, 4));
    assert_eq!(
        slow_reason(cleaned, 0, 1 << 20),
        Some(SlowReason::Compacted)
    );
    assert_eq!(slow_reason(&batches[1], 5, 1 << 20), None);

    let rebuilt = rebuild(cleaned, 0, 1 << 20).unwrap();
    assert_eq!(rebuilt.len(), 1);
    assert_eq!(rebuilt[0].source_offsets, [2, 3, 4]);
    let out = &rebuilt[0].batch;
    assert!(!out.has_delete_horizon());
    let oracle = kp_decode(out.as_bytes());
    let seen: Vec<_> = oracle
        .records
        .iter()
        .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (0, 1_795_319_948_764, some("k1"), some("c")),
            (1, 1_795_319_948_765, some("k3"), None),
            (2, 1_795_319_948_766, some("k2"), some("d")),
        ]
    );
}

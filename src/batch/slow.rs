//! The slow path: batches the target would refuse as they stand are decoded and
//! written again as fresh batches (baseOffset 0, offset deltas 0..n-1, no producer id), ready
//! for `patch`.

use super::error::BatchError;
use super::header::{Compression, RecordBatch};
use super::legacy::legacy_records;
use super::records::{decode_records, encode_batch, Record};
use super::split::LegacyEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlowReason {
    /// Compaction removed records: recordsCount != lastOffsetDelta + 1.
    Compacted,
    /// The log cleaner stored its delete horizon in baseTimestamp.
    DeleteHorizon,
    /// The fetch position falls inside the batch.
    StartsBeforePosition,
    /// A magic 0/1 message set.
    Legacy,
    /// Larger than the target accepts.
    TooLarge,
    /// A small batch merged with its neighbours for a long link to the target (see
    /// `coalesce`).
    Coalesced,
}

/// How many batches or entries took the slow path, per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlowPathCounts {
    pub compacted: u64,
    pub delete_horizon: u64,
    pub starts_before_position: u64,
    pub legacy: u64,
    pub too_large: u64,
    pub coalesced: u64,
}

impl SlowPathCounts {
    pub fn count(&mut self, reason: SlowReason) {
        *self.counter(reason) += 1;
    }

    pub fn get(&self, reason: SlowReason) -> u64 {
        match reason {
            SlowReason::Compacted => self.compacted,
            SlowReason::DeleteHorizon => self.delete_horizon,
            SlowReason::StartsBeforePosition => self.starts_before_position,
            SlowReason::Legacy => self.legacy,
            SlowReason::TooLarge => self.too_large,
            SlowReason::Coalesced => self.coalesced,
        }
    }

    pub fn total(&self) -> u64 {
        self.compacted
            + self.delete_horizon
            + self.starts_before_position
            + self.legacy
            + self.too_large
            + self.coalesced
    }

    pub fn add(&mut self, other: &SlowPathCounts) {
        self.compacted += other.compacted;
        self.delete_horizon += other.delete_horizon;
        self.starts_before_position += other.starts_before_position;
        self.legacy += other.legacy;
        self.too_large += other.too_large;
        self.coalesced += other.coalesced;
    }

    fn counter(&mut self, reason: SlowReason) -> &mut u64 {
        match reason {
            SlowReason::Compacted => &mut self.compacted,
            SlowReason::DeleteHorizon => &mut self.delete_horizon,
            SlowReason::StartsBeforePosition => &mut self.starts_before_position,
            SlowReason::Legacy => &mut self.legacy,
            SlowReason::TooLarge => &mut self.too_large,
            SlowReason::Coalesced => &mut self.coalesced,
        }
    }
}

impl std::fmt::Display for SlowPathCounts {
    /// Only the reasons that occurred, e.g. `compacted 3, too large 1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = [
            ("compacted", self.compacted),
            ("delete horizon", self.delete_horizon),
            ("starts before position", self.starts_before_position),
            ("legacy format", self.legacy),
            ("too large", self.too_large),
            ("merged for a long link", self.coalesced),
        ];
        let mut first = true;
        for (name, count) in named.into_iter().filter(|(_, count)| *count > 0) {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "{name} {count}")?;
            first = false;
        }
        Ok(())
    }
}

/// Why a v2 data batch cannot be forwarded by `patch` alone, or `None` when it can.
/// The caller has already dropped control batches, empty batches (`is_empty`) and
/// batches that end before `fetch_position`.
pub fn slow_reason(
    batch: &RecordBatch,
    fetch_position: i64,
    max_batch_bytes: usize,
) -> Option<SlowReason> {
    if batch.base_offset() < fetch_position {
        Some(SlowReason::StartsBeforePosition)
    } else if i64::from(batch.records_count()) != i64::from(batch.last_offset_delta()) + 1 {
        Some(SlowReason::Compacted)
    } else if batch.has_delete_horizon() {
        Some(SlowReason::DeleteHorizon)
    } else if batch.len() > max_batch_bytes {
        Some(SlowReason::TooLarge)
    } else {
        None
    }
}

/// A batch written by the slow path: baseOffset 0, producer fields -1, CreateTime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuiltBatch {
    pub batch: RecordBatch,
    /// The source offset of each record, in order (record i has offset delta i).
    pub source_offsets: Vec<i64>,
}

/// Rewrites a v2 data batch: keeps the records at offset >= `keep_from`, numbers them
/// 0..n-1, compresses them with the batch's codec and splits them so that no output
/// batch exceeds `max_batch_bytes`. Record timestamps (baseTimestamp + delta, also
/// under a delete horizon), keys, values and headers are kept as they are. A control
/// batch carries nothing to forward and gives no batch. The source CRC is checked, so
/// damaged data is refused rather than given a fresh CRC.
pub fn rebuild(
    batch: &RecordBatch,
    keep_from: i64,
    max_batch_bytes: usize,
) -> Result<Vec<RebuiltBatch>, BatchError> {
    if batch.is_control() {
        return Ok(Vec::new());
    }
    batch.verify_crc()?;
    let codec = batch.compression()?;
    let mut records = decode_records(batch)?;
    records.retain(|record| record.offset >= keep_from);
    let mut rebuilt = Vec::new();
    pack(&records, codec, max_batch_bytes, &mut rebuilt)?;
    Ok(rebuilt)
}

/// Converts consecutive magic 0/1 entries (pass a whole run of them, so their records
/// share v2 batches) into v2 batches, keeping records at offset >= `keep_from`. Each
/// output batch uses the codec of the messages it holds; magic 0 records get no
/// timestamp (-1), as Kafka's own up-conversion does.
pub fn convert_legacy(
    entries: &[LegacyEntry],
    keep_from: i64,
    max_batch_bytes: usize,
) -> Result<Vec<RebuiltBatch>, BatchError> {
    let mut rebuilt = Vec::new();
    let mut run: Vec<Record> = Vec::new();
    let mut run_codec = Compression::None;
    for entry in entries {
        let (codec, records) = legacy_records(entry)?;
        if codec != run_codec {
            pack(&run, run_codec, max_batch_bytes, &mut rebuilt)?;
            run.clear();
            run_codec = codec;
        }
        run.extend(records.into_iter().filter(|r| r.offset >= keep_from));
    }
    pack(&run, run_codec, max_batch_bytes, &mut rebuilt)?;
    Ok(rebuilt)
}

/// Merges consecutive v2 data batches, whose CRCs the caller checked, into as few
/// batches as `max_batch_bytes` allows, with the first one's codec. Across a long link to
/// the target a partition has at most five produce requests on their way, of one batch
/// each (the idempotent producer's limits), so a source written in small batches would be
/// copied at five of them per round trip (at 300 ms, 17 a second per partition). Records
/// keep their order, offsets, timestamps, keys, values and headers.
pub fn coalesce(
    batches: &[&RecordBatch],
    max_batch_bytes: usize,
) -> Result<Vec<RebuiltBatch>, BatchError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let codec = first.compression()?;
    let mut records = Vec::new();
    for batch in batches {
        records.extend(decode_records(batch)?);
    }
    let mut merged = Vec::new();
    pack(&records, codec, max_batch_bytes, &mut merged)?;
    Ok(merged)
}

/// Rough encoded size of a record, to cut an oversized run into parts of similar size.
fn weight(record: &Record) -> usize {
    let field_len = |bytes: &Option<bytes::Bytes>| bytes.as_ref().map_or(0, |b| b.len());
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + field_len(&h.value) + 10)
        .sum();
    field_len(&record.key) + field_len(&record.value) + headers + 20
}

/// Encodes `records` as one batch if it fits, else cuts them into as many parts as
/// the size suggests and packs each part the same way.
fn pack(
    records: &[Record],
    codec: Compression,
    max_batch_bytes: usize,
    out: &mut Vec<RebuiltBatch>,
) -> Result<(), BatchError> {
    if records.is_empty() {
        return Ok(());
    }
    let batch = encode_batch(records, codec)?;
    if batch.len() <= max_batch_bytes {
        out.push(RebuiltBatch {
            batch,
            source_offsets: records.iter().map(|r| r.offset).collect(),
        });
        return Ok(());
    }
    if let [record] = records {
        return Err(BatchError::RecordTooLarge {
            offset: record.offset,
            size: batch.len(),
            max: max_batch_bytes,
        });
    }
    let parts = batch.len().div_ceil(max_batch_bytes.max(1)).max(2);
    let total: usize = records.iter().map(weight).sum();
    let mut cuts = Vec::new();
    let mut so_far = 0;
    let mut next_part = 1;
    for (index, record) in records[..records.len() - 1].iter().enumerate() {
        so_far += weight(record);
        if so_far * parts >= total * next_part {
            cuts.push(index + 1);
            while so_far * parts >= total * next_part {
                next_part += 1;
            }
        }
    }
    if cuts.is_empty() {
        // all the weight sits in the last record: isolate it
        cuts.push(records.len() - 1);
    }
    let mut start = 0;
    for end in cuts.into_iter().chain([records.len()]) {
        pack(&records[start..end], codec, max_batch_bytes, out)?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::batch::compression;
    use crate::batch::header::{
        ATTRIBUTES_AT, BASE_TIMESTAMP_AT, DELETE_HORIZON_FLAG, LAST_OFFSET_DELTA_AT,
        LOG_APPEND_TIME_FLAG, MAX_TIMESTAMP_AT,
    };
    use crate::batch::records::Header;
    use crate::batch::split::{split_records, RawEntry};
    use crate::batch::test_support::{
        edit_batch, kp_batch, kp_decode, kp_header, kp_record, legacy_entry, put_i16_at,
        put_i32_at, put_i64_at, txn_batch, ALL_CODECS,
    };

    const NO_LIMIT: usize = usize::MAX;

    #[test]
    fn coalesced_batches_keep_every_record_in_order_with_the_first_codec() {
        for codec in ALL_CODECS {
            let mut with_header = kp_record(12, 3_000, Some(b"k12"), Some(b"v12"));
            kp_header(&mut with_header, "h", Some(b"x"));
            let inputs = [
                kp_batch(&[kp_record(10, 1_000, Some(b"k10"), Some(b"v10"))], codec),
                kp_batch(
                    &[kp_record(11, 2_000, None, Some(b"v11")), with_header],
                    codec,
                ),
                kp_batch(&[kp_record(13, 2_500, Some(b"k13"), None)], codec),
            ];
            let batches: Vec<RecordBatch> = inputs
                .iter()
                .map(|bytes| RecordBatch::new(bytes.clone()).unwrap())
                .collect();
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            let merged = coalesce(&refs, NO_LIMIT).unwrap();
            assert_eq!(merged.len(), 1, "{codec:?}");
            assert_eq!(merged[0].source_offsets, vec![10, 11, 12, 13]);
            assert_eq!(merged[0].batch.compression().unwrap(), codec);
            let read = kp_decode(&Bytes::copy_from_slice(merged[0].batch.as_bytes()));
            let expected: Vec<_> = inputs
                .iter()
                .flat_map(|bytes| kp_decode(bytes).records)
                .collect();
            assert_eq!(read.records.len(), expected.len());
            for (got, want) in read.records.iter().zip(&expected) {
                assert_eq!(
                    (got.timestamp, &got.key, &got.value, &got.headers),
                    (want.timestamp, &want.key, &want.value, &want.headers),
                    "{codec:?}"
                );
            }
            // Offsets are numbered afresh, as for any rebuilt batch.
            assert_eq!(
                read.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
                vec![0, 1, 2, 3]
            );
        }
    }

    fn some(text: &[u8]) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(text))
    }

    /// Compacted source: offsets 10, 12, 15 left of 10..=15.
    fn compacted(codec: Compression) -> RecordBatch {
        let mut third = kp_record(15, 3_000, Some(b"k3"), Some(b"v3"));
        kp_header(&mut third, "h", Some(b"x"));
        let records = [
            kp_record(10, 1_000, None, Some(b"")),
            kp_record(12, 2_000, Some(b""), None),
            third,
        ];
        RecordBatch::new(kp_batch(&records, codec)).unwrap()
    }

    /// (offset, timestamp, key, value) of each record of a rebuilt batch, read by
    /// kafka-protocol.
    fn oracle_view(batch: &RecordBatch) -> Vec<(i64, i64, Option<Bytes>, Option<Bytes>)> {
        kp_decode(batch.as_bytes())
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
            .collect()
    }

    fn assert_fresh(batch: &RecordBatch, codec: Compression) {
        batch.verify_crc().unwrap();
        assert_eq!(batch.base_offset(), 0);
        assert_eq!(batch.compression().unwrap(), codec);
        assert_eq!(batch.records_count(), batch.last_offset_delta() + 1);
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (-1, -1, -1)
        );
        assert!(!batch.is_transactional() && !batch.is_control());
        assert!(!batch.has_log_append_time() && !batch.has_delete_horizon());
    }

    #[test]
    fn slow_reason_names_each_case() {
        let whole = RecordBatch::new(kp_batch(
            &[kp_record(20, 1, None, None), kp_record(21, 1, None, None)],
            Compression::None,
        ))
        .unwrap();
        assert_eq!(slow_reason(&whole, 20, NO_LIMIT), None);
        assert_eq!(slow_reason(&whole, 19, whole.len()), None);
        assert_eq!(
            slow_reason(&whole, 21, NO_LIMIT),
            Some(SlowReason::StartsBeforePosition)
        );
        assert_eq!(
            slow_reason(&whole, 20, whole.len() - 1),
            Some(SlowReason::TooLarge)
        );
        assert_eq!(
            slow_reason(&compacted(Compression::None), 10, NO_LIMIT),
            Some(SlowReason::Compacted)
        );
        let horizon = edit_batch(whole.as_bytes(), |b| {
            put_i16_at(b, ATTRIBUTES_AT, DELETE_HORIZON_FLAG)
        });
        assert_eq!(
            slow_reason(&RecordBatch::new(horizon).unwrap(), 20, NO_LIMIT),
            Some(SlowReason::DeleteHorizon)
        );
    }

    #[test]
    fn slow_path_counts_per_reason() {
        let mut counts = SlowPathCounts::default();
        counts.count(SlowReason::Legacy);
        counts.count(SlowReason::Legacy);
        counts.count(SlowReason::TooLarge);
        assert_eq!(counts.get(SlowReason::Legacy), 2);
        assert_eq!(counts.too_large, 1);
        assert_eq!(counts.get(SlowReason::Compacted), 0);
    }

    #[test]
    fn compaction_gaps_are_renumbered_for_every_codec() {
        for codec in ALL_CODECS {
            let rebuilt = rebuild(&compacted(codec), 0, NO_LIMIT).unwrap();
            assert_eq!(rebuilt.len(), 1, "{codec}");
            let out = &rebuilt[0];
            assert_fresh(&out.batch, codec);
            assert_eq!(out.source_offsets, [10, 12, 15]);
            assert_eq!(
                oracle_view(&out.batch),
                [
                    (0, 1_000, None, some(b"")),
                    (1, 2_000, some(b""), None),
                    (2, 3_000, some(b"k3"), some(b"v3")),
                ],
                "{codec}"
            );
            let oracle = kp_decode(out.batch.as_bytes());
            assert_eq!(
                oracle.records[2]
                    .headers
                    .get(&kafka_protocol::protocol::StrBytes::from_static_str("h")),
                Some(&some(b"x"))
            );
        }
    }

    #[test]
    fn a_compacted_tail_keeps_its_records_and_drops_the_phantom_last_offset() {
        let whole = kp_batch(
            &[
                kp_record(30, 5, Some(b"a"), None),
                kp_record(31, 6, Some(b"b"), None),
            ],
            Compression::Snappy,
        );
        // the cleaner removed offsets 32..=34 but kept lastOffsetDelta 4
        let tail = RecordBatch::new(edit_batch(&whole, |b| {
            put_i32_at(b, LAST_OFFSET_DELTA_AT, 4)
        }))
        .unwrap();
        assert_eq!(tail.last_offset(), 34);
        assert_eq!(
            slow_reason(&tail, 30, NO_LIMIT),
            Some(SlowReason::Compacted)
        );
        let rebuilt = rebuild(&tail, 30, NO_LIMIT).unwrap();
        assert_eq!(rebuilt[0].source_offsets, [30, 31]);
        assert_fresh(&rebuilt[0].batch, Compression::Snappy);
    }

    #[test]
    fn records_before_the_fetch_position_are_left_out() {
        for codec in [Compression::None, Compression::Lz4] {
            let rebuilt = rebuild(&compacted(codec), 11, NO_LIMIT).unwrap();
            assert_eq!(rebuilt[0].source_offsets, [12, 15]);
            assert_eq!(
                oracle_view(&rebuilt[0].batch),
                [
                    (0, 2_000, some(b""), None),
                    (1, 3_000, some(b"k3"), some(b"v3"))
                ]
            );
        }
        assert!(rebuild(&compacted(Compression::None), 16, NO_LIMIT)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn delete_horizon_timestamps_stay_those_the_records_had() {
        let source = kp_batch(
            &[
                kp_record(0, 1_000, Some(b"a"), None),
                kp_record(1, 1_250, Some(b"b"), None),
            ],
            Compression::Gzip,
        );
        // The cleaner writes baseTimestamp = horizon and deltas from it, so a record's
        // time is horizon + delta: here 90_000 + 0 and 90_000 + 250.
        let horizon = 90_000;
        let marked = RecordBatch::new(edit_batch(&source, |b| {
            put_i16_at(b, ATTRIBUTES_AT, DELETE_HORIZON_FLAG | 1);
            put_i64_at(b, BASE_TIMESTAMP_AT, horizon);
            put_i64_at(b, MAX_TIMESTAMP_AT, horizon + 250);
        }))
        .unwrap();
        let rebuilt = rebuild(&marked, 0, NO_LIMIT).unwrap();
        let out = &rebuilt[0].batch;
        assert_fresh(out, Compression::Gzip);
        assert_eq!(out.base_timestamp(), horizon);
        assert_eq!(out.max_timestamp(), horizon + 250);
        let times: Vec<_> = oracle_view(out).iter().map(|r| r.1).collect();
        assert_eq!(times, [horizon, horizon + 250]);
    }

    #[test]
    fn log_append_time_becomes_create_time_with_the_record_deltas() {
        let source = kp_batch(
            &[
                kp_record(7, 100, None, Some(b"x")),
                kp_record(8, 130, None, Some(b"y")),
            ],
            Compression::None,
        );
        let lat = RecordBatch::new(edit_batch(&source, |b| {
            put_i16_at(b, ATTRIBUTES_AT, LOG_APPEND_TIME_FLAG);
            put_i64_at(b, MAX_TIMESTAMP_AT, 777_777);
        }))
        .unwrap();
        let rebuilt = rebuild(&lat, 0, NO_LIMIT).unwrap();
        assert_fresh(&rebuilt[0].batch, Compression::None);
        assert_eq!(rebuilt[0].batch.max_timestamp(), 130);
        let times: Vec<_> = oracle_view(&rebuilt[0].batch).iter().map(|r| r.1).collect();
        assert_eq!(times, [100, 130]);
    }

    #[test]
    fn a_damaged_source_batch_is_refused() {
        let mut damaged = compacted(Compression::None).as_bytes().to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x01;
        let damaged = RecordBatch::new(Bytes::from(damaged)).unwrap();
        let err = rebuild(&damaged, 0, NO_LIMIT).unwrap_err();
        assert!(
            matches!(
                err,
                BatchError::CrcMismatch {
                    base_offset: 10,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn transactional_sources_come_out_without_producer_fields() {
        let rebuilt = rebuild(&txn_batch(55, 3), 0, NO_LIMIT).unwrap();
        assert_fresh(&rebuilt[0].batch, Compression::None);
        assert_eq!(rebuilt[0].source_offsets, [3]);
    }

    #[test]
    fn control_and_empty_batches_give_nothing() {
        let marker = crate::batch::test_support::marker_batch(1, 9, 1);
        assert!(rebuild(&marker, 0, NO_LIMIT).unwrap().is_empty());
        let one = kp_batch(&[kp_record(4, 1, None, None)], Compression::None);
        // what compaction leaves for producer state: a header without records
        let header_only = edit_batch(&one.slice(..61), |b| {
            put_i32_at(b, crate::batch::header::BATCH_LENGTH_AT, 49);
            put_i32_at(b, crate::batch::header::RECORDS_COUNT_AT, 0);
        });
        let empty = RecordBatch::new(header_only).unwrap();
        assert!(empty.is_empty());
        assert!(rebuild(&empty, 0, NO_LIMIT).unwrap().is_empty());
    }

    /// Bytes that no codec can shrink, from a linear congruential generator.
    fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn an_oversized_batch_is_split_under_the_limit_in_order() {
        let values: Vec<Vec<u8>> = (0..60).map(|i| noise(1_000, i)).collect();
        let records: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| kp_record(1_000 + i as i64, 50 + i as i64, Some(b"k"), Some(v)))
            .collect();
        let max = 10_000;
        for codec in ALL_CODECS {
            let source = RecordBatch::new(kp_batch(&records, codec)).unwrap();
            assert_eq!(slow_reason(&source, 1_000, max), Some(SlowReason::TooLarge));
            let rebuilt = rebuild(&source, 1_000, max).unwrap();
            assert!(rebuilt.len() >= 6, "{codec}: {} batches", rebuilt.len());
            let mut offsets: Vec<i64> = Vec::new();
            let mut seen_values = Vec::new();
            for part in &rebuilt {
                assert!(part.batch.len() <= max, "{codec}: {}", part.batch.len());
                assert_fresh(&part.batch, codec);
                offsets.extend(&part.source_offsets);
                let view = oracle_view(&part.batch);
                assert_eq!(view.len(), part.source_offsets.len());
                for ((delta, timestamp, _, value), source_offset) in
                    view.into_iter().zip(&part.source_offsets)
                {
                    assert_eq!(timestamp, 50 + source_offset - 1_000);
                    seen_values.push((delta, value.unwrap()));
                }
            }
            assert_eq!(offsets, (1_000..1_060).collect::<Vec<_>>(), "{codec}");
            let values_in_order: Vec<_> = seen_values.iter().map(|(_, v)| v.to_vec()).collect();
            assert_eq!(values_in_order, values, "{codec}");
        }
    }

    #[test]
    fn a_single_record_over_the_limit_is_an_error_naming_it() {
        let records = [
            kp_record(70, 1, None, Some(b"small")),
            kp_record(71, 1, None, Some(&noise(20_000, 9))),
        ];
        for codec in ALL_CODECS {
            let source = RecordBatch::new(kp_batch(&records, codec)).unwrap();
            match rebuild(&source, 0, 10_000).unwrap_err() {
                BatchError::RecordTooLarge { offset, size, max } => {
                    assert_eq!((offset, max), (71, 10_000), "{codec}");
                    assert!(size > 20_000, "{codec}: {size}");
                }
                other => panic!("{codec}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn duplicate_header_keys_survive_a_rebuild_in_order() {
        let headers = vec![
            Header {
                key: Bytes::from_static(b"dup"),
                value: some(b"1"),
            },
            Header {
                key: Bytes::from_static(b"other"),
                value: None,
            },
            Header {
                key: Bytes::from_static(b"dup"),
                value: some(b""),
            },
            Header {
                key: Bytes::from_static(b"dup"),
                value: None,
            },
        ];
        let record = |offset| Record {
            offset,
            timestamp: 5,
            key: None,
            value: some(b"v"),
            headers: headers.clone(),
        };
        for codec in ALL_CODECS {
            let fresh = encode_batch(&[record(0), record(1)], codec).unwrap();
            // make it a compacted source at offset 100 whose first record is gone
            let source = RecordBatch::new(edit_batch(fresh.as_bytes(), |b| {
                put_i64_at(b, 0, 100);
                put_i32_at(b, LAST_OFFSET_DELTA_AT, 2);
            }))
            .unwrap();
            let rebuilt = rebuild(&source, 101, NO_LIMIT).unwrap();
            assert_eq!(rebuilt[0].source_offsets, [101]);
            let decoded = decode_records(&rebuilt[0].batch).unwrap();
            assert_eq!(decoded, [record(0)], "{codec}");
        }
    }

    fn legacy_run(entries: &[Vec<u8>]) -> Vec<LegacyEntry> {
        split_records(Bytes::from(entries.concat()))
            .unwrap()
            .entries
            .into_iter()
            .map(|entry| match entry {
                RawEntry::Legacy(legacy) => legacy,
                RawEntry::V2(batch) => panic!("unexpected v2 batch {batch:?}"),
            })
            .collect()
    }

    #[test]
    fn plain_magic_0_and_1_messages_become_one_v2_batch() {
        let run = legacy_run(&[
            legacy_entry(5, 0, 0, -1, None, Some(b"")),
            legacy_entry(6, 0, 0, -1, Some(b""), None),
            legacy_entry(7, 1, 0, 1_600_000_000_000, Some(b"k"), Some(b"v")),
        ]);
        let rebuilt = convert_legacy(&run, 0, NO_LIMIT).unwrap();
        assert_eq!(rebuilt.len(), 1);
        assert_fresh(&rebuilt[0].batch, Compression::None);
        assert_eq!(rebuilt[0].source_offsets, [5, 6, 7]);
        assert_eq!(
            oracle_view(&rebuilt[0].batch),
            [
                (0, -1, None, some(b"")),
                (1, -1, some(b""), None),
                (2, 1_600_000_000_000, some(b"k"), some(b"v")),
            ]
        );
    }

    /// A compressed wrapper entry holding `inner` entries.
    fn wrapper(
        offset: i64,
        magic: i8,
        attributes: u8,
        timestamp: i64,
        codec: Compression,
        inner: &[Vec<u8>],
    ) -> Vec<u8> {
        let value = compression::compress(codec, &inner.concat()).unwrap();
        legacy_entry(
            offset,
            magic,
            attributes | codec.id(),
            timestamp,
            None,
            Some(&value),
        )
    }

    #[test]
    fn compressed_magic_1_wrappers_use_relative_offsets_and_keep_their_codec() {
        let inner = [
            legacy_entry(0, 1, 0, 111, Some(b"a"), Some(b"1")),
            legacy_entry(1, 1, 0, 222, None, Some(b"")),
            legacy_entry(2, 1, 0, 333, Some(b""), None),
        ];
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            let run = legacy_run(&[wrapper(102, 1, 0, 999, codec, &inner)]);
            let rebuilt = convert_legacy(&run, 0, NO_LIMIT).unwrap();
            assert_eq!(rebuilt.len(), 1, "{codec}");
            assert_fresh(&rebuilt[0].batch, codec);
            assert_eq!(rebuilt[0].source_offsets, [100, 101, 102], "{codec}");
            assert_eq!(
                oracle_view(&rebuilt[0].batch),
                [
                    (0, 111, some(b"a"), some(b"1")),
                    (1, 222, None, some(b"")),
                    (2, 333, some(b""), None),
                ],
                "{codec}"
            );
        }
    }

    #[test]
    fn a_log_append_time_wrapper_gives_its_time_to_the_inner_messages() {
        let inner = [
            legacy_entry(0, 1, 0, 111, None, Some(b"x")),
            legacy_entry(1, 1, 0, 222, None, Some(b"y")),
        ];
        let run = legacy_run(&[wrapper(41, 1, 0x08, 5_000, Compression::Gzip, &inner)]);
        let rebuilt = convert_legacy(&run, 0, NO_LIMIT).unwrap();
        let times: Vec<_> = oracle_view(&rebuilt[0].batch).iter().map(|r| r.1).collect();
        assert_eq!(times, [5_000, 5_000]);
        assert_eq!(rebuilt[0].source_offsets, [40, 41]);
    }

    #[test]
    fn magic_0_lz4_with_the_old_descriptor_checksum_and_absolute_offsets() {
        let inner = [
            legacy_entry(300, 0, 0, -1, Some(b"k"), Some(b"v1")),
            legacy_entry(301, 0, 0, -1, Some(b"k"), Some(b"v2")),
        ];
        let mut frame = compression::compress(Compression::Lz4, &inner.concat()).unwrap();
        frame[6] = frame[6].wrapping_add(1); // a descriptor checksum old writers got wrong
        let entry = legacy_entry(301, 0, Compression::Lz4.id(), -1, None, Some(&frame));
        let rebuilt = convert_legacy(&legacy_run(&[entry]), 0, NO_LIMIT).unwrap();
        assert_eq!(rebuilt[0].source_offsets, [300, 301]);
        assert_eq!(
            oracle_view(&rebuilt[0].batch),
            [
                (0, -1, some(b"k"), some(b"v1")),
                (1, -1, some(b"k"), some(b"v2"))
            ]
        );
    }

    #[test]
    fn a_zero_wrapper_offset_from_librdkafka_means_relative_from_zero() {
        let inner = [
            legacy_entry(0, 1, 0, 1, None, Some(b"a")),
            legacy_entry(1, 1, 0, 2, None, Some(b"b")),
        ];
        let run = legacy_run(&[wrapper(0, 1, 0, 3, Compression::Snappy, &inner)]);
        assert_eq!(
            convert_legacy(&run, 0, NO_LIMIT).unwrap()[0].source_offsets,
            [0, 1]
        );
    }

    #[test]
    fn a_run_changing_codec_gives_one_batch_per_codec_and_honours_keep_from() {
        let inner = [
            legacy_entry(0, 1, 0, 7, None, Some(b"z1")),
            legacy_entry(1, 1, 0, 8, None, Some(b"z2")),
        ];
        let run = legacy_run(&[
            legacy_entry(10, 1, 0, 5, None, Some(b"p1")),
            legacy_entry(11, 1, 0, 6, None, Some(b"p2")),
            wrapper(13, 1, 0, 8, Compression::Gzip, &inner),
            legacy_entry(14, 1, 0, 9, None, Some(b"p3")),
        ]);
        let rebuilt = convert_legacy(&run, 11, NO_LIMIT).unwrap();
        let shape: Vec<_> = rebuilt
            .iter()
            .map(|r| (r.batch.compression().unwrap(), r.source_offsets.clone()))
            .collect();
        assert_eq!(
            shape,
            [
                (Compression::None, vec![11]),
                (Compression::Gzip, vec![12, 13]),
                (Compression::None, vec![14]),
            ]
        );
    }

    #[test]
    fn a_legacy_message_with_a_bad_crc_is_refused() {
        let mut entry = legacy_entry(8, 1, 0, 5, None, Some(b"value"));
        let last = entry.len() - 1;
        entry[last] ^= 0x20;
        let err = convert_legacy(&legacy_run(&[entry]), 0, NO_LIMIT).unwrap_err();
        assert!(
            matches!(err, BatchError::CrcMismatch { base_offset: 8, .. }),
            "{err}"
        );
    }

    #[test]
    fn legacy_conversion_splits_at_the_limit_too() {
        let run = legacy_run(
            &(0..20)
                .map(|i| legacy_entry(i, 1, 0, i, None, Some(&noise(500, i as u32))))
                .collect::<Vec<_>>(),
        );
        let rebuilt = convert_legacy(&run, 0, 2_000).unwrap();
        assert!(rebuilt.len() >= 5);
        assert!(rebuilt.iter().all(|r| r.batch.len() <= 2_000));
        let offsets: Vec<i64> = rebuilt
            .iter()
            .flat_map(|r| r.source_offsets.clone())
            .collect();
        assert_eq!(offsets, (0..20).collect::<Vec<_>>());
    }
}

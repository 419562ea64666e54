//! Turns the records of one fetched partition into what the target will receive:
//! whole v2 batches in source order, with control batches, aborted transactions and
//! empty batches dropped, and the slow path taken only where the fast path can't go.
//! Pure: no I/O.

use bytes::Bytes;

use crate::batch::{
    convert_legacy, rebuild, slow_reason, split_records, AbortedTransactions, BatchError,
    LegacyEntry, RawEntry, RebuiltBatch, RecordBatch, SlowPathCounts, SlowReason, VerifiedBatch,
};

use super::partition::Fetched;

/// The outcome of one partition's fetch data.
#[derive(Debug, Default)]
pub struct Ingested {
    pub items: Vec<Fetched>,
    /// Where the next fetch of this partition starts.
    pub next_fetch_position: i64,
    /// A batch was cut off by the fetch size limit and nothing whole came before it:
    /// the next fetch must allow a larger response for this partition.
    pub needs_larger_fetch: bool,
    pub slow_path: SlowPathCounts,
    pub dropped_control: u64,
    pub dropped_aborted: u64,
    /// Bytes of whole entries before the fetch position: fetched twice.
    pub bytes_before_position: u64,
    /// Bytes of a last entry cut off by the fetch size limit.
    pub truncated_tail_bytes: usize,
}

/// Failure of one partition's data; the partition stops, the others go on.
#[derive(Debug, thiserror::Error)]
#[error("at source offset {offset}: {source}")]
pub struct IngestError {
    pub offset: i64,
    #[source]
    pub source: BatchError,
}

/// `aborted` is the fetch response's aborted-transaction list for this partition
/// (None when the fetch was read_uncommitted).
pub fn ingest(
    records: Bytes,
    fetch_position: i64,
    aborted: Option<&mut AbortedTransactions>,
    max_batch_bytes: usize,
) -> Result<Ingested, IngestError> {
    let split = split_records(records).map_err(|source| IngestError {
        offset: fetch_position,
        source,
    })?;
    let mut out = Ingested {
        next_fetch_position: fetch_position,
        ..Ingested::default()
    };
    let mut aborted = aborted;
    let mut legacy_run: Vec<LegacyEntry> = Vec::new();
    let whole_entries = split.entries.len();

    for entry in split.entries {
        match entry {
            RawEntry::Legacy(legacy) => {
                if legacy.offset() >= fetch_position {
                    legacy_run.push(legacy);
                } else {
                    out.bytes_before_position += legacy.as_bytes().len() as u64;
                }
            }
            RawEntry::V2(batch) => {
                flush_legacy(&mut legacy_run, &mut out, max_batch_bytes)?;
                take_v2(batch, &mut out, aborted.as_deref_mut(), max_batch_bytes)?;
            }
        }
    }
    flush_legacy(&mut legacy_run, &mut out, max_batch_bytes)?;

    out.truncated_tail_bytes = split.truncated_tail_bytes;
    // Only an answer whose very first entry was cut says the limit is too small: one
    // that came from an earlier offset (read ahead, or stale) was cut by its own length.
    out.needs_larger_fetch = whole_entries == 0 && split.truncated_tail_bytes > 0;
    Ok(out)
}

fn take_v2(
    batch: RecordBatch,
    out: &mut Ingested,
    aborted: Option<&mut AbortedTransactions>,
    max_batch_bytes: usize,
) -> Result<(), IngestError> {
    // The aborted set follows every batch in order, also those before the position.
    let aborted_or_control = match aborted {
        Some(aborted) => aborted.should_drop(&batch),
        None => batch.is_control(),
    };
    let position = out.next_fetch_position;
    let last_offset = batch.last_offset();
    if last_offset < position {
        // Whole batches come back from an offset inside them; this one is done.
        out.bytes_before_position += batch.len() as u64;
        return Ok(());
    }
    let resume_at = last_offset + 1;
    out.next_fetch_position = resume_at;
    let failed_at = |source| IngestError {
        offset: batch.base_offset(),
        source,
    };

    if batch.is_control() || aborted_or_control || batch.is_empty() {
        batch.verify_crc().map_err(failed_at)?;
        if batch.is_control() {
            out.dropped_control += 1;
        } else if aborted_or_control {
            out.dropped_aborted += 1;
        }
        out.items.push(Fetched::Skip { resume_at });
        return Ok(());
    }

    match slow_reason(&batch, position, max_batch_bytes) {
        None => {
            let first_source_offset = batch.base_offset();
            let verified = VerifiedBatch::verify(batch).map_err(|source| IngestError {
                offset: first_source_offset,
                source,
            })?;
            out.items.push(Fetched::Batch {
                batch: verified,
                first_source_offset,
                source_offsets: None,
                resume_at,
            });
        }
        Some(reason) => {
            let rebuilt = rebuild(&batch, position, max_batch_bytes).map_err(failed_at)?;
            out.slow_path.count(reason);
            out.items
                .extend(rebuilt_items(rebuilt, resume_at).map_err(failed_at)?);
        }
    }
    Ok(())
}

fn flush_legacy(
    run: &mut Vec<LegacyEntry>,
    out: &mut Ingested,
    max_batch_bytes: usize,
) -> Result<(), IngestError> {
    if run.is_empty() {
        return Ok(());
    }
    let first_offset = run[0].offset();
    let resume_at = run.last().expect("non-empty run").next_offset();
    let rebuilt =
        convert_legacy(run, out.next_fetch_position, max_batch_bytes).map_err(|source| {
            IngestError {
                offset: first_offset,
                source,
            }
        })?;
    run.clear();
    out.slow_path.count(SlowReason::Legacy);
    out.next_fetch_position = out.next_fetch_position.max(resume_at);
    out.items.extend(
        rebuilt_items(rebuilt, resume_at).map_err(|source| IngestError {
            offset: first_offset,
            source,
        })?,
    );
    Ok(())
}

/// The items of rebuilt batches: they carry their own source offsets, and the last one
/// also covers offsets that compaction removed after its last surviving record (up to
/// `resume_at`); none at all leaves a skip to `resume_at`.
pub fn rebuilt_items(
    rebuilt: Vec<RebuiltBatch>,
    resume_at: i64,
) -> Result<Vec<Fetched>, BatchError> {
    let count = rebuilt.len();
    let mut items = Vec::with_capacity(count.max(1));
    for (index, piece) in rebuilt.into_iter().enumerate() {
        let (Some(&first), Some(&last)) =
            (piece.source_offsets.first(), piece.source_offsets.last())
        else {
            continue;
        };
        let piece_resume = if index + 1 == count {
            resume_at
        } else {
            last + 1
        };
        items.push(Fetched::Batch {
            batch: VerifiedBatch::verify(piece.batch)?,
            first_source_offset: first,
            source_offsets: Some(piece.source_offsets.into()),
            resume_at: piece_resume,
        });
    }
    if count == 0 {
        items.push(Fetched::Skip { resume_at });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{encode_batch, Compression, Record};

    /// `count` one-record batches at offsets `base..`, as a broker stores them.
    fn log(base: i64, count: i64) -> Vec<u8> {
        let mut blob = Vec::new();
        for offset in base..base + count {
            let record = Record {
                offset,
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(Bytes::from(vec![b'v'; 200])),
                headers: Vec::new(),
            };
            let batch = encode_batch(&[record], Compression::None).unwrap();
            let at = blob.len();
            blob.extend_from_slice(batch.as_bytes());
            blob[at..at + 8].copy_from_slice(&offset.to_be_bytes());
        }
        blob
    }

    #[test]
    fn only_a_cut_first_entry_asks_for_a_larger_fetch() {
        let whole = log(10, 3);
        let cut_first = Bytes::copy_from_slice(&whole[..100]);
        let ingested = ingest(cut_first, 10, None, usize::MAX).unwrap();
        assert!(ingested.needs_larger_fetch);
        assert!(ingested.items.is_empty());

        // An answer from offset 10 cut inside its last batch, taken at position 12 (its
        // whole batches were already had): nothing new, and no reason to fetch larger.
        let cut_last = Bytes::copy_from_slice(&whole[..whole.len() - 10]);
        let stale = ingest(cut_last, 12, None, usize::MAX).unwrap();
        assert!(stale.items.is_empty());
        assert!(!stale.needs_larger_fetch);
        assert_eq!(stale.next_fetch_position, 12);
        let one_batch = whole.len() as u64 / 3;
        assert_eq!(stale.bytes_before_position, 2 * one_batch);
        assert_eq!(stale.truncated_tail_bytes, one_batch as usize - 10);
    }
}

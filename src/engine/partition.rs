//! Replication state of one source partition: what was fetched, what is on its way to
//! the target, and how far the target has acknowledged. Pure; the flow driver feeds it
//! fetch results and produce outcomes.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::batch::{coalesce, BatchError, RecordBatch, VerifiedBatch};

use super::ingest::rebuilt_items;

/// The broker remembers the last five batches of a producer per partition, so at most
/// five sequenced-but-unsettled batches keep retries deduplicated and ordering exact.
pub const MAX_UNSETTLED_BATCHES: usize = 5;

/// Kafka wraps producer sequence numbers at i32::MAX back to zero.
fn advance_sequence(sequence: i32, records: i32) -> i32 {
    ((sequence as i64 + records as i64) % (i32::MAX as i64 + 1)) as i32
}

/// One thing fetched from the source, in source order.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// A v2 batch ready to be patched and produced; `resume_at` is the source offset to
    /// continue from once it is on the target.
    Batch {
        batch: VerifiedBatch,
        first_source_offset: i64,
        /// The source offset of each record when they are not consecutive (a rebuilt
        /// batch from a compacted topic); None: consecutive from `first_source_offset`.
        source_offsets: Option<Arc<[i64]>>,
        resume_at: i64,
    },
    /// Source offsets that produce nothing on the target (control batches, aborted
    /// transactions, empty batches): progress may pass them once everything before
    /// them is acknowledged.
    Skip { resume_at: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Queued,
    Sent,
    Acked,
    /// Sent but the outcome is not success; resent with the same sequence once every
    /// earlier send of this partition has settled.
    Failed,
}

#[derive(Debug, Clone)]
struct Entry {
    batch: Option<VerifiedBatch>,
    first_source_offset: i64,
    source_offsets: Option<Arc<[i64]>>,
    resume_at: i64,
    target_base_offset: i64,
    sequence: Option<i32>,
    status: Status,
}

impl Entry {
    /// A fetched batch waiting to be sent; None for a skip.
    fn queued(item: Fetched) -> Option<Entry> {
        match item {
            Fetched::Batch {
                batch,
                first_source_offset,
                source_offsets,
                resume_at,
            } => Some(Entry {
                batch: Some(batch),
                first_source_offset,
                source_offsets,
                resume_at,
                target_base_offset: -1,
                sequence: None,
                status: Status::Queued,
            }),
            Fetched::Skip { .. } => None,
        }
    }

    fn bytes(&self) -> usize {
        self.batch.as_ref().map_or(0, |b| b.len())
    }
    fn holds_sequence(&self) -> bool {
        self.sequence.is_some()
    }
}

/// A batch handed to the driver for sending.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub batch: VerifiedBatch,
    pub sequence: i32,
    pub first_source_offset: i64,
}

/// Where one batch landed on the target, reported in source order once every batch
/// before it has landed too: what an offset map is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedBatch {
    pub first_source_offset: i64,
    /// -1 when the broker answered a duplicate without the original offset.
    pub target_base_offset: i64,
    pub records: i32,
    pub source_offsets: Option<Arc<[i64]>>,
    /// The next source offset after this batch and any dropped offsets behind it.
    pub resume_at: i64,
}

/// What an acknowledgement settled, for statistics and the offset map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub records: u64,
    pub bytes: u64,
    pub mapped: Vec<MappedBatch>,
}

#[derive(Debug)]
pub struct PartitionState {
    fetch_position: i64,
    progress: i64,
    next_sequence: i32,
    window: VecDeque<Entry>,
    buffered_bytes: usize,
    high_watermark: Option<i64>,
    /// The target acknowledged a batch of this producer identity since the last failure.
    /// Until then a broker may hold no state for the producer on this partition, and then
    /// it takes any sequence as the first: a later batch could land before an earlier one
    /// that failed. So an unconfirmed partition sends one batch at a time.
    confirmed: bool,
}

impl PartitionState {
    /// `start_offset` is both where fetching begins and the progress already on the
    /// target.
    pub fn new(start_offset: i64) -> Self {
        PartitionState {
            fetch_position: start_offset,
            progress: start_offset,
            next_sequence: 0,
            window: VecDeque::new(),
            buffered_bytes: 0,
            high_watermark: None,
            confirmed: false,
        }
    }

    /// Next source offset to fetch.
    pub fn fetch_position(&self) -> i64 {
        self.fetch_position
    }

    /// Next source offset not yet on the target: everything before it is acknowledged.
    pub fn progress(&self) -> i64 {
        self.progress
    }

    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    pub fn set_high_watermark(&mut self, high_watermark: i64) {
        self.high_watermark = Some(high_watermark);
    }

    /// The source log's end as last reported (last stable offset for read_committed).
    pub fn high_watermark(&self) -> Option<i64> {
        self.high_watermark
    }

    /// Records (offsets) on the source not yet acknowledged by the target.
    pub fn lag(&self) -> Option<i64> {
        self.high_watermark.map(|hw| (hw - self.progress).max(0))
    }

    /// True when nothing is buffered or in flight.
    pub fn is_idle(&self) -> bool {
        self.window.is_empty()
    }

    /// Takes what one fetch returned and the position the next fetch starts from.
    pub fn accept(&mut self, fetched: Vec<Fetched>, next_fetch_position: i64) {
        for item in fetched {
            match item {
                Fetched::Batch { .. } => {
                    if let Some(entry) = Entry::queued(item) {
                        self.buffered_bytes += entry.bytes();
                        self.window.push_back(entry);
                    }
                }
                Fetched::Skip { resume_at } => {
                    if let Some(last) = self.window.back_mut() {
                        last.resume_at = last.resume_at.max(resume_at);
                    } else {
                        self.progress = self.progress.max(resume_at);
                    }
                }
            }
        }
        self.fetch_position = self.fetch_position.max(next_fetch_position);
    }

    /// Moves progress over offsets that produce nothing, e.g. a fetch that returned
    /// only dropped batches when nothing was pending.
    fn settle_prefix(&mut self) -> Settled {
        let mut settled = Settled::default();
        while let Some(front) = self.window.front() {
            if front.status != Status::Acked {
                break;
            }
            let entry = self.window.pop_front().expect("front exists");
            self.progress = self.progress.max(entry.resume_at);
            let bytes = entry.bytes();
            self.buffered_bytes -= bytes;
            settled.bytes += bytes as u64;
            let records = entry.batch.as_ref().map_or(0, |b| b.records_count());
            settled.records += records as u64;
            settled.mapped.push(MappedBatch {
                first_source_offset: entry.first_source_offset,
                target_base_offset: entry.target_base_offset,
                records,
                source_offsets: entry.source_offsets,
                resume_at: entry.resume_at,
            });
        }
        settled
    }

    fn unsettled_with_sequence(&self) -> usize {
        self.window.iter().filter(|e| e.holds_sequence()).count()
    }

    fn has_failed(&self) -> bool {
        self.window.iter().any(|e| e.status == Status::Failed)
    }

    /// Failed sends wait for the rest to settle; an unconfirmed partition has one send
    /// in flight at most.
    fn may_send_more(&self) -> bool {
        !self.has_failed() && (self.confirmed || self.in_flight() == 0)
    }

    /// The next batch to send, if ordering and the dedup window allow one now.
    pub fn next_outgoing(&mut self) -> Option<Outgoing> {
        if !self.may_send_more() {
            return None;
        }
        let index = self
            .window
            .iter()
            .position(|e| e.status == Status::Queued)?;
        let entry = &self.window[index];
        if entry.sequence.is_none() && self.unsettled_with_sequence() >= MAX_UNSETTLED_BATCHES {
            return None;
        }
        let next_sequence = self.next_sequence;
        let entry = &mut self.window[index];
        let batch = entry.batch.clone().expect("queued entries carry a batch");
        let sequence = match entry.sequence {
            Some(sequence) => sequence,
            None => {
                entry.sequence = Some(next_sequence);
                self.next_sequence = advance_sequence(next_sequence, batch.records_count());
                next_sequence
            }
        };
        entry.status = Status::Sent;
        Some(Outgoing {
            batch,
            sequence,
            first_source_offset: entry.first_source_offset,
        })
    }

    /// Whether a send is possible right now (used to pick partitions for a request).
    pub fn has_outgoing(&self) -> bool {
        if !self.may_send_more() {
            return false;
        }
        match self.window.iter().find(|e| e.status == Status::Queued) {
            Some(entry) => {
                entry.sequence.is_some() || self.unsettled_with_sequence() < MAX_UNSETTLED_BATCHES
            }
            None => false,
        }
    }

    fn entry_mut(&mut self, sequence: i32) -> Option<&mut Entry> {
        self.window
            .iter_mut()
            .find(|e| e.sequence == Some(sequence) && e.status == Status::Sent)
    }

    /// The target acknowledged the batch with this sequence at `target_base_offset`.
    pub fn on_acked(&mut self, sequence: i32, target_base_offset: i64) -> Settled {
        let Some(entry) = self.entry_mut(sequence) else {
            return Settled::default();
        };
        entry.status = Status::Acked;
        entry.target_base_offset = target_base_offset;
        self.confirmed = true;
        let settled = self.settle_prefix();
        self.requeue_failed_when_settled();
        settled
    }

    /// The send with this sequence did not succeed but may be retried.
    pub fn on_retriable_failure(&mut self, sequence: i32) {
        if let Some(entry) = self.entry_mut(sequence) {
            entry.status = Status::Failed;
        }
        self.confirmed = false;
        self.requeue_failed_when_settled();
    }

    /// Once no send of this partition is outstanding, failed ones go back to the queue
    /// in order with their sequence numbers, so the broker deduplicates any that did land.
    fn requeue_failed_when_settled(&mut self) {
        if self.window.iter().any(|e| e.status == Status::Sent) {
            return;
        }
        for entry in self.window.iter_mut() {
            if entry.status == Status::Failed {
                entry.status = Status::Queued;
            }
        }
    }

    /// Whether the batch with this sequence is the oldest one not yet acknowledged: an
    /// out-of-order answer for it means the broker lost this producer's state, while
    /// for a later one it only means an earlier send failed.
    pub fn is_first_unsettled(&self, sequence: i32) -> bool {
        self.window
            .iter()
            .find(|e| e.status != Status::Acked)
            .is_some_and(|e| e.sequence == Some(sequence))
    }

    /// Merges the batches queued and never sent, from the first of them on, while each
    /// is stored as the source wrote it, with record timestamps of its own (not
    /// LogAppendTime) and the first one's codec, into one batch of up to
    /// `max_batch_bytes`. Across a long link to the target a partition has at most
    /// `MAX_UNSETTLED_BATCHES` batches on their way, one per produce request (the
    /// idempotent producer's limits), so it moves five of the source's batches per round
    /// trip: at 300 ms 17 a second, or 4.3 MB/s of W1's 256 KiB ones. Merged, each of
    /// the five carries what queued meanwhile, up to the target's batch limit. Returns
    /// how many batches were merged.
    pub fn merge_queued(&mut self, max_batch_bytes: usize) -> Result<usize, BatchError> {
        let Some(start) = self
            .window
            .iter()
            .position(|e| e.status == Status::Queued && e.sequence.is_none())
        else {
            return Ok(0);
        };
        let mut codec = None;
        let mut bytes = 0;
        let mut end = start;
        for entry in self.window.iter().skip(start) {
            let Some(batch) = entry.batch.as_ref().filter(|b| {
                entry.source_offsets.is_none()
                    && b.batch().base_offset() == entry.first_source_offset
            }) else {
                break;
            };
            let this_codec = batch.batch().compression().ok();
            let fits = bytes + batch.len() <= max_batch_bytes;
            if batch.batch().has_log_append_time()
                || this_codec.is_none()
                || codec.is_some_and(|c| Some(c) != this_codec)
                || !fits
            {
                break;
            }
            codec = this_codec;
            bytes += batch.len();
            end += 1;
        }
        if end - start < 2 {
            return Ok(0);
        }
        let batches: Vec<&RecordBatch> = self
            .window
            .range(start..end)
            .filter_map(|e| e.batch.as_ref().map(VerifiedBatch::batch))
            .collect();
        let merged = coalesce(&batches, max_batch_bytes)?;
        let resume_at = self.window[end - 1].resume_at;
        let entries: Vec<Entry> = rebuilt_items(merged, resume_at)?
            .into_iter()
            .filter_map(Entry::queued)
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        let merged_away: usize = self.window.drain(start..end).map(|e| e.bytes()).sum();
        self.buffered_bytes -= merged_away;
        self.buffered_bytes += entries.iter().map(Entry::bytes).sum::<usize>();
        for (offset, entry) in entries.into_iter().enumerate() {
            self.window.insert(start + offset, entry);
        }
        Ok(end - start)
    }

    /// Sends in flight (for draining at shutdown).
    pub fn in_flight(&self) -> usize {
        self.window
            .iter()
            .filter(|e| e.status == Status::Sent)
            .count()
    }

    /// Drops the batches never sent (no sequence yet) of a partition that sends no more
    /// (stopped for bad data, or its source topic deleted), so that they stop counting
    /// against the memory budget; a restart fetches them again from `progress`. Batches
    /// sent are kept: their answers still settle them. Returns the bytes released.
    pub fn release_unsent(&mut self) -> usize {
        let before = self.buffered_bytes;
        self.window.retain(|entry| entry.holds_sequence());
        self.buffered_bytes = self.window.iter().map(Entry::bytes).sum();
        before - self.buffered_bytes
    }

    /// Starts over with a new producer identity: every unacknowledged batch is queued
    /// again without a sequence. Only valid when nothing is in flight.
    pub fn reset_sequences(&mut self) {
        debug_assert_eq!(self.in_flight(), 0);
        self.next_sequence = 0;
        self.confirmed = false;
        for entry in self.window.iter_mut() {
            if entry.status != Status::Acked {
                entry.status = Status::Queued;
                entry.sequence = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{encode_batch, Compression, Record};
    use bytes::Bytes;

    /// A real v2 batch of `records` records at source offsets `base..`.
    fn batch_with(base: i64, records: i32) -> VerifiedBatch {
        let records: Vec<Record> = (0..records)
            .map(|i| Record {
                offset: base + i as i64,
                timestamp: 1_700_000_000_000 + i as i64,
                key: None,
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Vec::new(),
            })
            .collect();
        let batch: RecordBatch = encode_batch(&records, Compression::None).unwrap();
        VerifiedBatch::verify(batch).unwrap()
    }

    fn fetched(base: i64, records: i32) -> Fetched {
        Fetched::Batch {
            batch: batch_with(base, records),
            first_source_offset: base,
            source_offsets: None,
            resume_at: base + records as i64,
        }
    }

    /// Sends and acknowledges one batch so the partition may pipeline.
    fn confirmed_at(offset: i64) -> PartitionState {
        let mut state = PartitionState::new(offset);
        state.accept(vec![fetched(offset, 1)], offset + 1);
        let first = state.next_outgoing().unwrap();
        state.on_acked(first.sequence, 0);
        state
    }

    /// `records` records from source offset `base` of `value_len` bytes each, as the
    /// source stored them (its base offset in the batch), as ingest hands them over.
    fn stored(base: i64, records: i64, value_len: usize) -> Fetched {
        let records: Vec<Record> = (base..base + records)
            .map(|offset| Record {
                offset,
                timestamp: 1_700_000_000_000 + offset,
                key: None,
                value: Some(Bytes::from(vec![b'v'; value_len])),
                headers: Vec::new(),
            })
            .collect();
        let encoded = encode_batch(&records, Compression::None).unwrap();
        let mut bytes = encoded.as_bytes().to_vec();
        bytes[..8].copy_from_slice(&base.to_be_bytes());
        let batch = VerifiedBatch::verify(RecordBatch::new(Bytes::from(bytes)).unwrap()).unwrap();
        Fetched::Batch {
            batch,
            first_source_offset: base,
            source_offsets: None,
            resume_at: base + records.len() as i64,
        }
    }

    #[test]
    fn small_batches_queued_behind_a_long_link_go_out_merged_and_map_back_to_their_offsets() {
        let mut state = confirmed_at(9);
        state.accept(
            vec![
                stored(10, 1, 100),
                stored(11, 1, 100),
                stored(12, 2, 100),
                // Over the batch limit below with the others: goes as it is, ends the run.
                stored(14, 100, 200),
                stored(114, 1, 100),
            ],
            115,
        );
        let buffered = state.buffered_bytes();
        assert_eq!(state.merge_queued(8 << 10).unwrap(), 3);
        assert!(state.buffered_bytes() < buffered);
        let merged = state.next_outgoing().unwrap();
        assert_eq!(merged.first_source_offset, 10);
        assert_eq!(merged.batch.records_count(), 4);
        // Nothing sent is merged again; the large batch stays whole, the last is alone.
        assert_eq!(state.merge_queued(8 << 10).unwrap(), 0);
        let large = state.next_outgoing().unwrap();
        assert_eq!(
            (large.first_source_offset, large.sequence),
            (14, merged.sequence + 4)
        );
        let last = state.next_outgoing().unwrap();
        assert_eq!(last.first_source_offset, 114);

        let mut mapped = state.on_acked(merged.sequence, 500).mapped;
        mapped.extend(state.on_acked(large.sequence, 504).mapped);
        mapped.extend(state.on_acked(last.sequence, 604).mapped);
        assert_eq!(state.progress(), 115);
        let summary: Vec<_> = mapped
            .iter()
            .map(|m| {
                (
                    m.first_source_offset,
                    m.target_base_offset,
                    m.records,
                    m.source_offsets.as_deref().map(<[i64]>::to_vec),
                    m.resume_at,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (10, 500, 4, Some(vec![10, 11, 12, 13]), 14),
                (14, 504, 100, None, 114),
                (114, 604, 1, None, 115),
            ]
        );
    }

    #[test]
    fn merging_stops_at_the_size_limit_and_keeps_offsets_skipped_behind_the_run() {
        let mut state = confirmed_at(9);
        // A control batch after offset 12 leaves a gap the merged batch must cover.
        state.accept(
            vec![
                stored(10, 1, 100),
                stored(11, 1, 100),
                stored(12, 1, 100),
                Fetched::Skip { resume_at: 14 },
            ],
            14,
        );
        let one = state.window[1].bytes();
        // Room for two of the three.
        assert_eq!(state.merge_queued(2 * one + one / 2).unwrap(), 2);
        assert_eq!(state.merge_queued(2 * one + one / 2).unwrap(), 0);
        let merged = state.next_outgoing().unwrap();
        let alone = state.next_outgoing().unwrap();
        assert_eq!(merged.batch.records_count(), 2);
        state.on_acked(merged.sequence, 0);
        state.on_acked(alone.sequence, 2);
        assert_eq!(state.progress(), 14);
    }

    #[test]
    fn sequences_advance_by_record_count_and_progress_follows_acks_in_order() {
        let mut state = confirmed_at(99);
        state.accept(vec![fetched(100, 3), fetched(103, 2)], 105);
        assert_eq!(state.fetch_position(), 105);
        let first = state.next_outgoing().unwrap();
        let second = state.next_outgoing().unwrap();
        assert_eq!((first.sequence, second.sequence), (1, 4));
        assert!(state.next_outgoing().is_none());

        // The second ack arrives first: progress must wait for the first.
        state.on_acked(4, 53);
        assert_eq!(state.progress(), 100);
        let settled = state.on_acked(1, 50);
        assert_eq!(state.progress(), 105);
        let mapped: Vec<_> = settled
            .mapped
            .iter()
            .map(|m| {
                (
                    m.first_source_offset,
                    m.target_base_offset,
                    m.records,
                    m.resume_at,
                )
            })
            .collect();
        assert_eq!(
            mapped,
            vec![(100, 50, 3, 103), (103, 53, 2, 105)],
            "in source order"
        );
        assert_eq!(settled.records, 5);
        assert!(state.is_idle());
        assert_eq!(state.buffered_bytes(), 0);
    }

    #[test]
    fn until_the_target_acknowledges_one_batch_only_one_is_in_flight() {
        let mut state = PartitionState::new(0);
        state.accept(vec![fetched(0, 1), fetched(1, 1), fetched(2, 1)], 3);
        let first = state.next_outgoing().unwrap();
        assert!(
            !state.has_outgoing(),
            "a broker without our state would take any sequence"
        );
        assert!(state.next_outgoing().is_none());
        state.on_acked(first.sequence, 0);
        let second = state.next_outgoing().unwrap();
        assert!(state.next_outgoing().is_some(), "confirmed: pipelined");
        state.on_retriable_failure(second.sequence);
        assert!(state.next_outgoing().is_none(), "the third is still out");
    }

    #[test]
    fn skips_advance_progress_only_behind_acknowledged_batches() {
        let mut state = PartitionState::new(0);
        state.accept(vec![Fetched::Skip { resume_at: 4 }], 4);
        assert_eq!(
            state.progress(),
            4,
            "nothing pending: a skip settles at once"
        );

        state.accept(vec![fetched(4, 2), Fetched::Skip { resume_at: 10 }], 10);
        assert_eq!(state.progress(), 4);
        let out = state.next_outgoing().unwrap();
        state.on_acked(out.sequence, 0);
        assert_eq!(
            state.progress(),
            10,
            "the control batch after it is passed too"
        );
    }

    #[test]
    fn at_most_five_batches_hold_sequences() {
        let mut state = confirmed_at(0);
        state.accept((1..8).map(|i| fetched(i, 1)).collect(), 8);
        let sent: Vec<_> = std::iter::from_fn(|| state.next_outgoing()).collect();
        assert_eq!(sent.len(), MAX_UNSETTLED_BATCHES);
        assert!(!state.has_outgoing());
        state.on_acked(sent[0].sequence, 0);
        assert!(state.has_outgoing());
    }

    #[test]
    fn failed_sends_are_retried_in_order_with_their_sequences_after_the_rest_settle() {
        let mut state = confirmed_at(0);
        state.accept(vec![fetched(1, 1), fetched(2, 1), fetched(3, 1)], 4);
        let a = state.next_outgoing().unwrap();
        let b = state.next_outgoing().unwrap();
        let c = state.next_outgoing().unwrap();
        state.on_retriable_failure(a.sequence);
        assert!(state.next_outgoing().is_none(), "b and c still outstanding");
        state.on_acked(b.sequence, 11); // landed although a's outcome is unknown
        state.on_retriable_failure(c.sequence);

        let retry_a = state.next_outgoing().unwrap();
        assert_eq!(retry_a.sequence, a.sequence);
        assert!(
            state.next_outgoing().is_none(),
            "after a failure, one at a time until the target confirms"
        );
        assert!(!state.is_first_unsettled(c.sequence));
        state.on_acked(retry_a.sequence, 10);
        assert_eq!(state.progress(), 3);
        let retry_c = state.next_outgoing().unwrap();
        assert_eq!(
            retry_c.sequence, c.sequence,
            "b is acked and not sent again"
        );
        assert!(state.is_first_unsettled(retry_c.sequence));
        state.on_acked(retry_c.sequence, 12);
        assert_eq!(state.progress(), 4);
    }

    #[test]
    fn acknowledgements_for_unknown_sequences_change_nothing() {
        let mut state = PartitionState::new(0);
        state.accept(vec![fetched(0, 1)], 1);
        assert_eq!(state.on_acked(42, 0), Settled::default());
        assert_eq!(state.progress(), 0);
    }

    #[test]
    fn sequence_numbers_wrap_like_kafka() {
        assert_eq!(advance_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(advance_sequence(5, 3), 8);
    }

    #[test]
    fn reset_sequences_requeues_unacked_batches_from_zero() {
        let mut state = PartitionState::new(0);
        state.accept(vec![fetched(0, 2), fetched(2, 2)], 4);
        let a = state.next_outgoing().unwrap();
        state.on_acked(a.sequence, 0);
        let b = state.next_outgoing().unwrap();
        state.on_retriable_failure(b.sequence);
        state.reset_sequences();
        let again = state.next_outgoing().unwrap();
        assert_eq!(again.sequence, 0);
        assert_eq!(again.first_source_offset, 2);
    }

    #[test]
    fn a_partition_that_sends_no_more_releases_its_unsent_batches_and_settles_the_sent() {
        let mut state = PartitionState::new(0);
        state.accept(vec![fetched(0, 2), fetched(2, 2), fetched(4, 2)], 6);
        let held = state.buffered_bytes();
        let sent = state.next_outgoing().unwrap();
        let one_batch = held - state.window.iter().skip(1).map(Entry::bytes).sum::<usize>();
        assert_eq!(state.release_unsent(), held - one_batch);
        assert_eq!(state.buffered_bytes(), one_batch);
        assert!(!state.has_outgoing());
        let settled = state.on_acked(sent.sequence, 100);
        assert_eq!(settled.records, 2);
        assert_eq!(state.buffered_bytes(), 0);
        assert!(state.is_idle());
        assert_eq!(
            state.progress(),
            2,
            "a restart fetches from the first batch released"
        );
    }

    #[test]
    fn lag_counts_offsets_not_yet_acknowledged() {
        let mut state = PartitionState::new(10);
        assert_eq!(state.lag(), None);
        state.set_high_watermark(25);
        assert_eq!(state.lag(), Some(15));
    }
}

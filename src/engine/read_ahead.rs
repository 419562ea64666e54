//! Reading one partition ahead of itself. Across a long link one TCP connection moves
//! at most its window per round trip, and the sending host's default ceiling (4 MiB of
//! tcp_wmem) caps it at ~9 MiB/s over 300 ms. A flow with fewer partitions than the link
//! needs connections therefore fetches each partition on several connections at once:
//! one fetch at the partition's position, the others at offsets estimated from the bytes
//! per offset seen so far. An answer that starts beyond the position is held until the
//! data before it has arrived; what two answers both hold is dropped by offset when the
//! later one is ingested, and a gap between them is fetched on its own. Pure: the driver
//! reports fetches sent and answered, and hands held answers to ingest in offset order.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::batch::header::next_offset_of_partial;
use crate::batch::{split_records, RawEntry};

/// A gap is fetched with room for its offsets and this many batches more: it starts
/// where an answer's last whole batch ended, and what the bytes per offset miss over a
/// few hundred KiB is far less than a batch.
const GAP_SLACK_BATCHES: f64 = 1.0;
/// The margin covers this share of the recent shortfalls: about one fetch in five
/// leaves a gap. Every byte of margin beyond an answer's actual shortfall crosses the
/// link twice, on every fetch, while a gap costs one small fetch of the missing offsets
/// (and that partition a round trip, which the data held behind it covers): covering
/// nineteen in twenty spent 7-12 % of a full link on overlap. Taken from the shortfalls
/// themselves, not from their mean and spread: over a long log they are skewed and
/// drift.
const SHORTFALL_COVERED: f64 = 0.8;
/// How many of the newest shortfalls the margin is taken from.
const SHORTFALLS_KEPT: usize = 20;
/// The margin never takes more than this share of a fetch: a partition whose answers
/// wander further is still read ahead, with gaps to fetch.
const MAX_MARGIN_SHARE: f64 = 0.25;
/// The margin until answers have shown how far fetches reach: the bytes per offset of
/// the first answer, or the partition's average over its whole log (see `seed_shape`),
/// may be off by a few percent for the part fetched next. Across a long link the first
/// answers take seconds, so this margin places a large share of a short copy's fetches
/// (an eighth placed 44 % of a 906 MiB copy's at 300 ms, 61 MiB of overlap); a fetch
/// that lands in the batch the one before it is cut in costs nothing (see
/// `margin_bytes`), so a small margin suffices.
const UNMEASURED_MARGIN_SHARE: f64 = 1.0 / 32.0;
/// Before a partition's first answer, its fetches ahead start at this size and double
/// with each one on its way, up to the full size. They all go out at once, each on its
/// own connection, and across a long link every connection carries its share at the same
/// pace: equal sizes would all end together, seconds in, and leave the target idle until
/// then; growing ones end in offset order, the first within a few round trips (at 300 ms
/// the target idled 1.3 s after the first record while 147 MiB crossed the link).
const FIRST_ROUND_FETCH_BYTES: usize = 512 * 1024;
/// Weight of the newest answer in the running estimates.
const NEWEST_WEIGHT: f64 = 0.25;
/// A fetch that answers read ahead wait for is sent again on another connection once it
/// has taken this many times as long as this partition's fetches usually take: one slow
/// connection (a loss and its retransmission timeout across a long link) would hold the
/// partition's whole read-ahead behind it.
const HEDGE_AFTER_TYPICAL: f64 = 2.5;

/// An answer that starts beyond the partition's position, kept until the position
/// reaches it.
#[derive(Debug, Clone)]
pub struct HeldAnswer {
    /// The first offset this answer holds (the fetch's offset, or the first batch when
    /// it starts inside a batch).
    pub start: i64,
    /// The offset after its last whole entry.
    pub end: i64,
    pub records: Bytes,
    /// `(producer_id, first_offset)` of the aborted transactions the broker listed, None
    /// when the fetch read uncommitted data.
    pub aborted: Option<Vec<(i64, i64)>>,
}

/// A fetch on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outstanding {
    offset: i64,
    estimated_end: i64,
    /// Where the answer would end if `max_bytes` from the offset on were all whole
    /// entries (no margin), when the partition's shape was known.
    expected_end: Option<i64>,
    max_bytes: usize,
    sent_at: Instant,
    /// Sent again elsewhere, or itself a second sending: not sent again.
    hedged: bool,
    /// Itself a second sending.
    resent: bool,
    /// The other sending of the same fetch was answered: this one no longer counts as
    /// covering its offsets (see `ReadAhead::on_answered`).
    superseded: bool,
}

impl Outstanding {
    /// The offsets this fetch is taken to cover, `batch_offsets` (a batch's worth) before
    /// its own included: sent into the batch an answer was cut in, it brings that batch
    /// whole. Gap-finding, slowness and second sendings all count covering this way.
    fn covered(&self, batch_offsets: i64) -> std::ops::Range<i64> {
        self.offset - batch_offsets..self.estimated_end
    }
}

/// A fetch that was answered or failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answered {
    pub took: Duration,
    /// See `Outstanding::expected_end`.
    pub expected_end: Option<i64>,
}

/// The next fetch one partition should send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextFetch {
    pub offset: i64,
    pub max_bytes: usize,
    /// The fetch starts beyond the partition's position: its answer may have to wait.
    pub ahead: bool,
    /// A second sending of a slow fetch at the position that answers read ahead wait for.
    pub hedge: bool,
    /// Fills a gap two fetches left between them.
    pub gap: bool,
}

#[derive(Debug, Default, Clone)]
pub struct ReadAhead {
    /// In the order sent.
    outstanding: Vec<Outstanding>,
    held: BTreeMap<i64, HeldAnswer>,
    held_bytes: usize,
    bytes_per_offset: Option<f64>,
    bytes_per_batch: Option<f64>,
    /// `bytes_per_offset` is the log's average, not yet from data that arrived.
    seeded: bool,
    /// How many bytes short of its expected end the batch each of the newest answers was
    /// cut in ended (negative when beyond): start inside a batch and the error of the
    /// bytes-per-offset estimate together. Oldest first.
    shortfalls: VecDeque<f64>,
    /// How long this partition's fetches that brought data took, typically.
    fetch_seconds: Option<f64>,
    /// Bytes of held answers dropped because the position had passed them, not yet
    /// reported.
    passed_bytes: u64,
}

impl ReadAhead {
    /// Bytes of answers held for later.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// A slow fetch of this partition is on its way a second time.
    pub fn resending(&self) -> bool {
        self.outstanding.iter().any(|o| o.resent)
    }

    /// The offset of the slow fetch that `next_fetch` would send again now, so that the
    /// caller can ask first whether its connection fell behind the others.
    pub fn slow_fetch_offset(&self, position: i64, now: Instant) -> Option<i64> {
        self.slow_fetch_at(position, now).map(|o| o.offset)
    }

    /// Bytes the fetches on their way may bring.
    pub fn outstanding_bytes(&self) -> usize {
        self.outstanding.iter().map(|o| o.max_bytes).sum()
    }

    /// Learns the partition's shape from data that arrived: `bytes` over `offsets`
    /// offsets in `batches` entries.
    pub fn observe(&mut self, bytes: usize, offsets: i64, batches: usize) {
        if offsets <= 0 || batches == 0 || bytes == 0 {
            return;
        }
        if std::mem::take(&mut self.seeded) {
            self.bytes_per_offset = None;
        }
        self.bytes_per_offset = blend(self.bytes_per_offset, bytes as f64 / offsets as f64);
        self.bytes_per_batch = blend(self.bytes_per_batch, bytes as f64 / batches as f64);
    }

    /// Takes the partition's bytes per offset over its whole log as the estimate until
    /// data arrives, so that it is read ahead from its first fetch on.
    pub fn seed_shape(&mut self, bytes_per_offset: f64) {
        if self.bytes_per_offset.is_none() && bytes_per_offset.is_finite() && bytes_per_offset > 0.0
        {
            self.bytes_per_offset = Some(bytes_per_offset);
            self.seeded = true;
        }
    }

    /// Whether offsets of this partition can be estimated: data of it was seen, or its
    /// log's average is known.
    pub fn knows_shape(&self) -> bool {
        self.bytes_per_offset.is_some()
    }

    /// An answer to a fetch expected to end at `expected_end` (see `Answered`) was cut by
    /// its size limit in a batch that ends at `cut_off_end` (see `cut_off_end`).
    fn observe_reach(&mut self, expected_end: i64, cut_off_end: i64) {
        let Some(per_offset) = self.bytes_per_offset else {
            return;
        };
        if self.shortfalls.len() == SHORTFALLS_KEPT {
            self.shortfalls.pop_front();
        }
        self.shortfalls
            .push_back((expected_end - cut_off_end) as f64 * per_offset);
    }

    /// An answer to a fetch expected to end at `expected_end`, whose whole entries end at
    /// `end`: when its size limit cut it inside a batch (`truncated_tail_bytes` of that
    /// batch at the end of `records`), how far short of the expectation that batch ended.
    pub fn observe_answer_end(
        &mut self,
        expected_end: Option<i64>,
        records: &[u8],
        truncated_tail_bytes: usize,
        end: i64,
    ) {
        if let (Some(expected_end), true) = (expected_end, truncated_tail_bytes > 0) {
            let cut_off_end = self.cut_off_end(records, truncated_tail_bytes, end);
            self.observe_reach(expected_end, cut_off_end);
        }
    }

    /// The offset after the batch an answer ending in `truncated_tail_bytes` of an
    /// incomplete batch was cut in: from that batch's header when the tail holds it, else
    /// estimated from `end`, the offset after the answer's last whole entry.
    fn cut_off_end(&self, records: &[u8], truncated_tail_bytes: usize, end: i64) -> i64 {
        let tail = &records[records.len().saturating_sub(truncated_tail_bytes)..];
        if let Some(batch_end) = next_offset_of_partial(tail) {
            if batch_end > end {
                return batch_end;
            }
        }
        end + self.batch_offsets().max(1)
    }

    /// Bytes a fetch ahead leaves between its offset plus its size and the offset the
    /// next fetch ahead is sent at (negative: beyond). The next answer starts with the
    /// batch holding its offset, and the answer before it ends with the start of the batch
    /// it was cut in: a fetch sent at any offset of that batch continues it exactly, with
    /// only the cut-off part fetched twice. So the margin covers how far short of its
    /// expected end that batch ended, for all but about one in five of the newest answers
    /// (with fewer than five, the largest).
    fn margin_bytes(&self, max_bytes: usize) -> Option<f64> {
        let unmeasured = UNMEASURED_MARGIN_SHARE * max_bytes as f64;
        if self.bytes_per_batch.is_none() {
            return self.seeded.then_some(unmeasured);
        }
        if self.shortfalls.is_empty() {
            return Some(unmeasured);
        }
        let mut sorted: Vec<f64> = self.shortfalls.iter().copied().collect();
        sorted.sort_unstable_by(f64::total_cmp);
        let covered = (SHORTFALL_COVERED * sorted.len() as f64).ceil() as usize;
        Some(sorted[covered.clamp(1, sorted.len()) - 1])
    }

    /// The margin fetches ahead of `max_bytes` are placed with, within a quarter of them
    /// either way.
    fn placement_margin(&self, max_bytes: usize) -> Option<f64> {
        let most = MAX_MARGIN_SHARE * max_bytes as f64;
        Some(self.margin_bytes(max_bytes)?.clamp(-most, most))
    }

    /// The margin fetches of `max_bytes` are placed with now, in bytes (for the logs).
    pub fn margin(&self, max_bytes: usize) -> Option<i64> {
        self.placement_margin(max_bytes).map(|margin| margin as i64)
    }

    /// Offsets one batch spans, typically.
    fn batch_offsets(&self) -> i64 {
        match (self.bytes_per_batch, self.bytes_per_offset) {
            (Some(per_batch), Some(per_offset)) => (per_batch / per_offset) as i64,
            _ => 0,
        }
    }

    /// Offsets a fetch of `max_bytes` is expected to cover for sure, None before any data
    /// was seen.
    fn reach(&self, max_bytes: usize) -> Option<i64> {
        let (per_offset, margin) = (self.bytes_per_offset?, self.placement_margin(max_bytes)?);
        let sure = max_bytes as f64 - margin;
        (sure >= per_offset).then(|| (sure / per_offset) as i64)
    }

    /// The first offset at or after `position` that no fetch on its way and no held
    /// answer covers, and where the next covered range starts after it. A fetch on its way
    /// is taken to cover the batch before its offset too: sent into the batch an answer
    /// was cut in, it continues that answer (see `margin_bytes`); when it does not, the
    /// gap shows once it is answered.
    fn first_uncovered(&self, position: i64) -> (i64, Option<i64>) {
        let batch_offsets = self.batch_offsets();
        let mut ranges: Vec<(i64, i64)> = self
            .outstanding
            .iter()
            .filter(|o| !o.superseded)
            .map(|o| {
                let covered = o.covered(batch_offsets);
                (covered.start, covered.end)
            })
            .chain(self.held.values().map(|h| (h.start, h.end)))
            .collect();
        ranges.sort_unstable();
        let mut uncovered = position;
        for (start, end) in ranges {
            if start > uncovered {
                return (uncovered, Some(start));
            }
            uncovered = uncovered.max(end);
        }
        (uncovered, None)
    }

    /// What to fetch next for a partition at `position` whose source log ends (as far as
    /// it may be read) at `log_end`, with fetches of `max_bytes`. A fetch ahead of the
    /// position needs an estimate of the partition's bytes per offset and data beyond it
    /// on the source; a fetch at the position is always possible (it waits for data).
    /// A slow fetch is sent again only when `may_hedge`.
    pub fn next_fetch(
        &self,
        position: i64,
        log_end: Option<i64>,
        max_bytes: usize,
        now: Instant,
        may_hedge: bool,
    ) -> Option<NextFetch> {
        if let Some(slow) = self.slow_fetch_at(position, now).filter(|_| may_hedge) {
            return Some(NextFetch {
                offset: position,
                max_bytes: slow.max_bytes,
                ahead: false,
                hedge: true,
                gap: false,
            });
        }
        let (offset, next_covered) = self.first_uncovered(position);
        let ahead = offset > position;
        let max_bytes = if ahead && self.seeded {
            let doublings = self.outstanding.len().saturating_sub(1).min(16) as u32;
            (FIRST_ROUND_FETCH_BYTES << doublings).min(max_bytes)
        } else {
            max_bytes
        };
        if ahead && log_end.is_none_or(|end| offset >= end) {
            return None;
        }
        if ahead && self.reach(max_bytes).is_none() {
            return None;
        }
        // A gap before a range already covered is fetched with just enough room for it
        // and some slack.
        let slack = self
            .bytes_per_batch
            .map(|per_batch| GAP_SLACK_BATCHES * per_batch)
            .or_else(|| self.margin_bytes(max_bytes));
        let gap_bytes = match (next_covered, self.bytes_per_offset, slack) {
            (Some(next), Some(per_offset), Some(slack)) => {
                let gap = (next - offset) as f64 * per_offset + slack;
                Some((gap.ceil() as usize).clamp(1, max_bytes))
            }
            _ => None,
        };
        Some(NextFetch {
            offset,
            max_bytes: gap_bytes.unwrap_or(max_bytes),
            ahead,
            hedge: false,
            gap: gap_bytes.is_some(),
        })
    }

    /// The fetch covering `position`, when answers read ahead wait for it and it takes
    /// far longer than this partition's fetches usually do. Covering as
    /// `first_uncovered` counts it: a fetch sent just past the position, into the batch
    /// an answer was cut in, is the one the partition waits for.
    fn slow_fetch_at(&self, position: i64, now: Instant) -> Option<&Outstanding> {
        let typical = self.fetch_seconds?;
        if self.held.is_empty() {
            return None;
        }
        let batch_offsets = self.batch_offsets();
        self.outstanding.iter().find(|o| {
            !o.hedged
                && o.covered(batch_offsets).contains(&position)
                && now.saturating_duration_since(o.sent_at).as_secs_f64()
                    > HEDGE_AFTER_TYPICAL * typical
        })
    }

    /// A fetch at `offset` for up to `max_bytes` was sent; `full_size` when it has the
    /// size fetches ahead are placed with. One at an offset a slow fetch covers is its
    /// second sending: neither is sent a third time.
    pub fn on_sent(&mut self, offset: i64, max_bytes: usize, full_size: bool, now: Instant) {
        let reach = self.reach(max_bytes).unwrap_or(1).max(1);
        // Only answers to fetches of the size placed ahead show how far those reach: the
        // error of the bytes per offset grows with the size, and gap fetches, a few
        // hundred KiB, would hide it. Nor does an answer to a fetch placed by the log's
        // average say how far answers wander once the shape is learnt.
        let expected_end = self
            .bytes_per_offset
            .filter(|_| full_size && !self.seeded)
            .map(|per_offset| offset.saturating_add((max_bytes as f64 / per_offset) as i64));
        // A second sending at the position is one of the fetch sent into the position's
        // batch too, or it would go out again on every lane of every round while that
        // fetch stays slow.
        let batch_offsets = self.batch_offsets();
        let mut hedged = false;
        for covering in self
            .outstanding
            .iter_mut()
            .filter(|o| o.covered(batch_offsets).contains(&offset))
        {
            covering.hedged = true;
            hedged = true;
        }
        self.outstanding.push(Outstanding {
            offset,
            estimated_end: offset.saturating_add(reach),
            expected_end,
            max_bytes,
            sent_at: now,
            hedged,
            resent: hedged,
            superseded: false,
        });
    }

    /// The fetch at `offset` sent first was answered or failed. When it was sent twice,
    /// the other sending stops counting as covering anything: the answer that came ends
    /// where its size limit cut it, and what lies beyond is fetched as a gap at once
    /// rather than awaited from a sending that was slow (at 300 ms a partition's last
    /// 0.6 MB waited 7 s for the first sending, on a connection replaced for trickling,
    /// after the second had brought the rest).
    pub fn on_answered(&mut self, offset: i64, now: Instant) -> Option<Answered> {
        let at = self.outstanding.iter().position(|o| o.offset == offset)?;
        let answered = self.outstanding.remove(at);
        if answered.hedged {
            let batch_offsets = self.batch_offsets();
            let answered_covers = answered.covered(batch_offsets);
            for other in self.outstanding.iter_mut().filter(|o| {
                o.hedged
                    && (o.covered(batch_offsets).contains(&answered.offset)
                        || answered_covers.contains(&o.offset))
            }) {
                other.superseded = true;
            }
        }
        Some(Answered {
            took: now.saturating_duration_since(answered.sent_at),
            expected_end: answered.expected_end,
        })
    }

    /// A fetch that brought data took `took`.
    pub fn observe_fetch_time(&mut self, took: Duration) {
        self.fetch_seconds = blend(self.fetch_seconds, took.as_secs_f64());
    }

    /// Keeps an answer to a fetch at `offset` (expected to end at `expected_end`) that
    /// starts beyond the position. Answers without one whole entry, or that cannot be
    /// read, are dropped: the fetch at the position will meet the same data and report it.
    pub fn hold(
        &mut self,
        offset: i64,
        expected_end: Option<i64>,
        records: Bytes,
        aborted: Option<Vec<(i64, i64)>>,
    ) {
        let Ok(split) = split_records(records.clone()) else {
            return;
        };
        let bounds = |entry: &RawEntry| match entry {
            RawEntry::V2(batch) => (batch.base_offset(), batch.last_offset() + 1),
            RawEntry::Legacy(legacy) => (legacy.offset(), legacy.next_offset()),
        };
        let (Some(first), Some(last)) = (split.entries.first(), split.entries.last()) else {
            return;
        };
        let start = bounds(first).0.min(offset);
        let end = bounds(last).1;
        if end <= offset {
            return;
        }
        self.observe_answer_end(expected_end, &records, split.truncated_tail_bytes, end);
        let whole = records.len() - split.truncated_tail_bytes;
        self.observe(whole, end - start, split.entries.len());
        // Two answers can start in the same batch (a gap fetch and the fetch after it):
        // the one reaching further is kept, the other was fetched for nothing.
        if let Some(held) = self.held.get(&start) {
            if held.end >= end {
                self.passed_bytes += records.len() as u64;
                return;
            }
            self.passed_bytes += held.records.len() as u64;
            self.held_bytes -= held.records.len();
        }
        self.held_bytes += records.len();
        self.held.insert(
            start,
            HeldAnswer {
                start,
                end,
                records,
                aborted,
            },
        );
    }

    /// The held answer the partition at `position` can take now: the first that starts
    /// at or before it. Answers wholly behind the position are dropped on the way.
    pub fn take_ready(&mut self, position: i64) -> Option<HeldAnswer> {
        loop {
            let (&start, answer) = self.held.iter().next()?;
            if start > position {
                return None;
            }
            let end = answer.end;
            let answer = self.held.remove(&start).expect("first key exists");
            self.held_bytes -= answer.records.len();
            if end > position {
                return Some(answer);
            }
            self.passed_bytes += answer.records.len() as u64;
        }
    }

    /// Bytes of held answers dropped since the last call because the position had
    /// passed them: fetched twice.
    pub fn take_passed_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.passed_bytes)
    }

    /// Drops every held answer (the partition stopped or starts over elsewhere); fetches
    /// on their way are still reported when they end.
    pub fn clear_held(&mut self) {
        self.held.clear();
        self.held_bytes = 0;
    }
}

/// A running estimate with the newest value weighed in.
fn blend(old: Option<f64>, new: f64) -> Option<f64> {
    Some(old.map_or(new, |old| old + NEWEST_WEIGHT * (new - old)))
}

/// What one partition may hold read ahead: answers held plus fetches on their way.
///
/// Up to twice what its lanes carry at once (`lane_fetches` fetches of `fetch_bytes`), so
/// that while its answers wait for a gap to be fetched (behind another answer on a long
/// link's connection, a second or more) its lanes go on instead of falling idle; within its
/// share of half the budget (beyond, a partition waiting for its position stops the others);
/// and at least its lanes' fetches and one more. The share follows what is left to read
/// (`left` of `left_all`, in records), never below an equal one of `partitions`: a partition
/// that fell behind takes more of the link, so that a backlog's partitions finish together
/// instead of the last one crawling alone on a link the others left (at 300 ms, the last
/// 10 % of a copy took up to 4.5 s with the slowest partition at 65 % when the copy was at
/// 90 %).
pub fn read_ahead_cap(
    lane_fetches: usize,
    fetch_bytes: usize,
    budget: usize,
    partitions: usize,
    left: u64,
    left_all: u64,
) -> usize {
    let half = budget / 2;
    let equal = half / partitions.max(1);
    let by_what_is_left = if left_all == 0 {
        0
    } else {
        (half as u128 * u128::from(left.min(left_all)) / u128::from(left_all)) as usize
    };
    (2 * lane_fetches * fetch_bytes)
        .min(equal.max(by_what_is_left))
        .max((lane_fetches + 1) * fetch_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{encode_batch, Compression, Record};

    /// `batches` batches of `per_batch` records with 100-byte values, from `base`.
    fn log_from(base: i64, batches: usize, per_batch: usize) -> Bytes {
        let mut blob = Vec::new();
        for b in 0..batches {
            let records: Vec<Record> = (0..per_batch)
                .map(|i| Record {
                    offset: base + (b * per_batch + i) as i64,
                    timestamp: 1_700_000_000_000,
                    key: None,
                    value: Some(Bytes::from(vec![b'x'; 100])),
                    headers: Vec::new(),
                })
                .collect();
            let batch = encode_batch(&records, Compression::None).unwrap();
            // The base offset is outside the CRC: what a broker writes on append.
            let at = blob.len();
            blob.extend_from_slice(batch.as_bytes());
            let base_offset = base + (b * per_batch) as i64;
            blob[at..at + 8].copy_from_slice(&base_offset.to_be_bytes());
        }
        Bytes::from(blob)
    }

    fn shaped() -> ReadAhead {
        let mut read_ahead = ReadAhead::default();
        // 100 bytes per offset, 1,000 per batch.
        read_ahead.observe(100_000, 1_000, 100);
        // An answer cut in a batch that ended one batch short of the estimate.
        read_ahead.observe_reach(1_000, 990);
        read_ahead
    }

    #[test]
    fn until_answers_show_their_reach_fetches_ahead_leave_a_thirty_second_of_margin() {
        let mut read_ahead = ReadAhead::default();
        read_ahead.observe(100_000, 1_000, 100);
        assert_eq!(second_fetch_reach(&read_ahead), 968);
        read_ahead.observe_reach(1_000, 990);
        assert_eq!(
            second_fetch_reach(&read_ahead),
            990,
            "then what answers show"
        );
    }

    #[test]
    fn the_batch_an_answer_was_cut_in_ends_where_its_header_says() {
        let shaped = shaped();
        // Three batches of ten offsets from 0; the third cut after its first 40 bytes.
        let whole = log_from(0, 3, 10);
        let third = whole.len() / 3 * 2;
        let cut = whole.slice(..third + 40);
        assert_eq!(shaped.cut_off_end(&cut, 40, 20), 30);
        // A tail too short to hold the last offset delta: a typical batch after the end.
        let cut = whole.slice(..third + 20);
        assert_eq!(shaped.cut_off_end(&cut, 20, 20), 30);
        let mut wide = ReadAhead::default();
        wide.observe(100_000, 1_000, 10);
        assert_eq!(
            wide.cut_off_end(&cut, 20, 20),
            120,
            "batches of 100 offsets"
        );
        assert_eq!(ReadAhead::default().cut_off_end(&cut, 20, 20), 21);
    }

    #[test]
    fn a_fetch_sent_into_the_batch_an_answer_was_cut_in_leaves_no_gap() {
        let t0 = Instant::now();
        let mut read_ahead = shaped();
        // The position is at 1,000; a fetch ahead went to 1,005, inside the batch the
        // answer before it was cut in (batches of ten offsets): its answer starts at
        // 1,000, so the next fetch goes beyond it rather than fill a gap.
        read_ahead.on_sent(1_005, 100_000, true, t0);
        let next = read_ahead
            .next_fetch(1_000, Some(1_000_000), 100_000, t0, true)
            .unwrap();
        assert_eq!((next.offset, next.ahead, next.gap), (1_995, true, false));
        // One batch further on, the offsets before it are a gap.
        let mut read_ahead = shaped();
        read_ahead.on_sent(1_015, 100_000, true, t0);
        let next = read_ahead
            .next_fetch(1_000, Some(1_000_000), 100_000, t0, true)
            .unwrap();
        assert_eq!((next.offset, next.gap), (1_000, true));
    }

    #[test]
    fn nothing_is_read_ahead_before_the_partition_shows_its_shape() {
        let t0 = Instant::now();
        let mut read_ahead = ReadAhead::default();
        let at_position = read_ahead
            .next_fetch(0, Some(1_000_000), 1 << 20, t0, true)
            .unwrap();
        assert_eq!(
            at_position,
            NextFetch {
                offset: 0,
                max_bytes: 1 << 20,
                ahead: false,
                hedge: false,
                gap: false
            }
        );
        read_ahead.on_sent(0, 1 << 20, true, t0);
        assert_eq!(
            read_ahead.next_fetch(0, Some(1_000_000), 1 << 20, t0, true),
            None
        );
    }

    #[test]
    fn before_the_first_answer_fetches_ahead_grow_so_that_the_nearest_end_first() {
        let t0 = Instant::now();
        let full = 4 << 20;
        let mut read_ahead = ReadAhead::default();
        read_ahead.seed_shape(100.0);
        read_ahead.on_sent(0, 256 << 10, true, t0);
        let mut sizes = Vec::new();
        let mut previous_offset = 0;
        for _ in 0..5 {
            let next = read_ahead
                .next_fetch(0, Some(1_000_000), full, t0, true)
                .unwrap();
            assert!(next.ahead && !next.gap, "{next:?}");
            assert!(next.offset > previous_offset, "placed after the one before");
            previous_offset = next.offset;
            sizes.push(next.max_bytes);
            read_ahead.on_sent(next.offset, next.max_bytes, next.max_bytes == full, t0);
        }
        assert_eq!(sizes, [512 << 10, 1 << 20, 2 << 20, full, full]);
        // Once data arrived, fetches ahead have the full size.
        read_ahead.observe(100_000, 1_000, 100);
        let next = read_ahead
            .next_fetch(0, Some(1_000_000), full, t0, true)
            .unwrap();
        assert_eq!((next.ahead, next.max_bytes), (true, full));
    }

    #[test]
    fn a_partition_seeded_with_its_log_average_reads_ahead_before_its_first_answer() {
        let t0 = Instant::now();
        let mut read_ahead = ReadAhead::default();
        read_ahead.seed_shape(f64::NAN);
        assert!(!read_ahead.knows_shape());
        read_ahead.seed_shape(100.0);
        assert!(read_ahead.knows_shape());
        read_ahead.on_sent(0, 80_000, true, t0);
        let ahead = read_ahead
            .next_fetch(0, Some(1_000_000), 80_000, t0, true)
            .unwrap();
        // 80,000 bytes less a thirty-second of margin, at 100 bytes per offset.
        assert_eq!((ahead.offset, ahead.ahead), (775, true));
        // The first data replaces the average rather than blending with it.
        read_ahead.observe(50_000, 1_000, 10);
        assert_eq!(read_ahead.bytes_per_offset, Some(50.0));
        assert_eq!(read_ahead.bytes_per_batch, Some(5_000.0));
        read_ahead.seed_shape(100.0);
        assert_eq!(
            read_ahead.bytes_per_offset,
            Some(50.0),
            "a seed never overrides data"
        );
        assert_eq!(
            read_ahead.on_answered(0, t0).unwrap().expected_end,
            None,
            "a fetch placed by the average does not teach the margin"
        );
        read_ahead.on_sent(5_000, 80_000, true, t0);
        read_ahead.on_sent(9_000, 8_000, false, t0);
        assert_eq!(
            read_ahead.on_answered(5_000, t0).unwrap().expected_end,
            Some(5_000 + 80_000 / 50),
            "a fetch of the size placed ahead shows how far those reach"
        );
        assert_eq!(
            read_ahead.on_answered(9_000, t0).unwrap().expected_end,
            None,
            "a smaller one, a gap's, does not"
        );
    }

    #[test]
    fn fetches_leapfrog_with_a_margin_and_stop_at_the_log_end() {
        let t0 = Instant::now();
        let mut read_ahead = shaped();
        let first = read_ahead
            .next_fetch(500, Some(30_000), 100_000, t0, true)
            .unwrap();
        assert_eq!((first.offset, first.ahead), (500, false));
        read_ahead.on_sent(first.offset, first.max_bytes, true, t0);
        // 100,000 bytes less a batch of margin: 990 offsets for sure.
        let second = read_ahead
            .next_fetch(500, Some(30_000), 100_000, t0, true)
            .unwrap();
        assert_eq!(
            second,
            NextFetch {
                offset: 1_490,
                max_bytes: 100_000,
                ahead: true,
                hedge: false,
                gap: false
            }
        );
        read_ahead.on_sent(second.offset, second.max_bytes, true, t0);
        assert_eq!(read_ahead.outstanding_bytes(), 200_000);
        let third = read_ahead
            .next_fetch(500, Some(30_000), 100_000, t0, true)
            .unwrap();
        assert_eq!(third.offset, 2_480);
        assert_eq!(
            read_ahead.next_fetch(500, Some(2_480), 100_000, t0, true),
            None,
            "nothing beyond the log end is fetched ahead"
        );
        assert_eq!(
            read_ahead.next_fetch(500, None, 100_000, t0, true),
            None,
            "nor when the end is unknown"
        );
    }

    /// How far ahead of the position the second fetch of 100,000 bytes goes.
    fn second_fetch_reach(read_ahead: &ReadAhead) -> i64 {
        let mut read_ahead_copy = read_ahead.clone();
        read_ahead_copy.outstanding.clear();
        read_ahead_copy.clear_held();
        let t0 = Instant::now();
        read_ahead_copy.on_sent(0, 100_000, true, t0);
        read_ahead_copy
            .next_fetch(0, Some(1_000_000), 100_000, t0, true)
            .unwrap()
            .offset
    }

    #[test]
    fn the_margin_follows_the_spread_of_shortfalls_either_way() {
        let mut steady = shaped();
        // Answers always cut in a batch that ends one batch short of the estimate.
        for _ in 0..50 {
            steady.observe_reach(1_000, 990);
        }
        assert_eq!(second_fetch_reach(&steady), 990, "a batch of margin");

        let mut beyond = shaped();
        // Answers cut in a batch that ends beyond the estimate: the next fetch may start
        // beyond it too.
        for _ in 0..20 {
            beyond.observe_reach(1_000, 1_005);
        }
        assert_eq!(second_fetch_reach(&beyond), 1_005);

        let mut wandering = shaped();
        // Bytes per offset wander: answers end anywhere from on their estimate to six
        // batches short.
        for i in 0..50 {
            wandering.observe_reach(1_000, if i % 2 == 0 { 1_000 } else { 940 });
        }
        let reach = second_fetch_reach(&wandering);
        assert!(
            (900..960).contains(&reach),
            "the margin covers most shortfalls: reach {reach}"
        );

        let mut skewed = shaped();
        // Most answers a batch short, one in four twenty batches short: the margin covers
        // those too, and forgets them once twenty newer answers came back.
        for i in 0..20 {
            skewed.observe_reach(1_000, if i % 4 == 3 { 800 } else { 990 });
        }
        assert_eq!(second_fetch_reach(&skewed), 800);
        for _ in 0..20 {
            skewed.observe_reach(1_000, 990);
        }
        assert_eq!(second_fetch_reach(&skewed), 990);

        let mut rare = shaped();
        // One in ten twenty batches short: cheaper fetched as gaps than as a margin that
        // every fetch pays.
        for i in 0..20 {
            rare.observe_reach(1_000, if i % 10 == 3 { 800 } else { 990 });
        }
        assert_eq!(second_fetch_reach(&rare), 990);

        let mut erratic = shaped();
        erratic.observe_reach(1_000, 100_000);
        erratic.observe_reach(1_000, -100_000);
        assert_eq!(
            second_fetch_reach(&erratic),
            750,
            "the margin takes a quarter of the fetch at most"
        );
        let mut far_beyond = shaped();
        for _ in 0..20 {
            far_beyond.observe_reach(1_000, 100_000);
        }
        assert_eq!(
            second_fetch_reach(&far_beyond),
            1_250,
            "and gives a quarter at most"
        );

        let mut unshaped = ReadAhead::default();
        unshaped.observe_reach(1_000, 900);
        assert!(
            unshaped.shortfalls.is_empty(),
            "nothing to weigh offsets by"
        );
    }

    #[test]
    fn a_gap_is_fetched_with_room_for_it_and_one_batch_of_slack() {
        let t0 = Instant::now();
        let mut read_ahead = shaped();
        read_ahead.on_sent(2_000, 100_000, true, t0);
        let gap = read_ahead
            .next_fetch(1_900, Some(10_000), 100_000, t0, true)
            .unwrap();
        // The fetch at 2,000 answers from the batch holding it, from 1,990 at the
        // earliest: 90 offsets of 100 bytes and a batch of slack.
        assert_eq!(
            gap,
            NextFetch {
                offset: 1_900,
                max_bytes: 10_000,
                ahead: false,
                hedge: false,
                gap: true
            }
        );
        // Answers that wander widen the margin of fetches ahead, not the slack of a gap.
        for _ in 0..20 {
            read_ahead.observe_reach(1_000, 900);
        }
        assert_eq!(second_fetch_reach(&read_ahead), 900);
        let gap = read_ahead
            .next_fetch(1_900, Some(10_000), 100_000, t0, true)
            .unwrap();
        assert_eq!((gap.offset, gap.max_bytes, gap.gap), (1_900, 10_000, true));
    }

    #[test]
    fn an_answer_ahead_waits_until_the_position_reaches_it() {
        let t0 = Instant::now();
        let mut read_ahead = shaped();
        read_ahead.on_sent(1_000, 50_000, true, t0);
        // The broker answers from the batch holding offset 1,000, which starts at 990.
        let answer = log_from(990, 3, 10);
        read_ahead.on_answered(1_000, t0);
        read_ahead.hold(1_000, None, answer.clone(), Some(vec![(7, 995)]));
        assert_eq!(read_ahead.held_bytes(), answer.len());
        assert!(read_ahead.take_ready(989).is_none());
        let ready = read_ahead.take_ready(990).unwrap();
        assert_eq!((ready.start, ready.end), (990, 1_020));
        assert_eq!(ready.aborted, Some(vec![(7, 995)]));
        assert_eq!(read_ahead.held_bytes(), 0);
        // A held answer counts as covered: the next fetch goes past it.
        read_ahead.hold(1_000, None, answer, None);
        let beyond = read_ahead
            .next_fetch(990, Some(5_000), 100_000, t0, true)
            .unwrap();
        assert_eq!((beyond.offset, beyond.ahead), (1_020, true));
        // Before it, only the gap is fetched: ten offsets and a batch of margin.
        let gap = read_ahead
            .next_fetch(980, Some(5_000), 100_000, t0, true)
            .unwrap();
        assert_eq!((gap.offset, gap.ahead), (980, false));
        assert!(gap.max_bytes < 5_000, "{gap:?}");
    }

    /// Sends a fetch at `offset` at `t0` and answers it `took` later, so that the
    /// partition's fetches typically take that long; returns the time it measured.
    fn learn_fetch_time(
        read_ahead: &mut ReadAhead,
        offset: i64,
        t0: Instant,
        took: Duration,
    ) -> Duration {
        read_ahead.on_sent(offset, 100_000, true, t0);
        let measured = read_ahead.on_answered(offset, t0 + took).unwrap().took;
        read_ahead.observe_fetch_time(measured);
        measured
    }

    #[test]
    fn a_slow_fetch_that_answers_wait_for_is_sent_once_more() {
        let t0 = Instant::now();
        let mut read_ahead = shaped();
        let second = Duration::from_secs(1);
        // Fetches of this partition take a second.
        read_ahead.on_sent(0, 100_000, true, t0);
        assert_eq!(learn_fetch_time(&mut read_ahead, 990, t0, second), second);
        let slow = |read_ahead: &ReadAhead, after: Duration| {
            read_ahead
                .next_fetch(0, Some(10_000), 100_000, t0 + after, true)
                .filter(|next| next.hedge)
        };
        assert_eq!(slow(&read_ahead, 4 * second), None, "nothing waits for it");
        read_ahead.hold(990, None, log_from(990, 3, 10), None);
        assert_eq!(slow(&read_ahead, 2 * second), None, "not slow yet");
        let held_back = read_ahead
            .next_fetch(0, Some(10_000), 100_000, t0 + 3 * second, false)
            .unwrap();
        assert!(
            !held_back.hedge,
            "other partitions are sent again: {held_back:?}"
        );
        assert!(!read_ahead.resending());
        assert_eq!(read_ahead.slow_fetch_offset(0, t0 + 2 * second), None);
        assert_eq!(read_ahead.slow_fetch_offset(0, t0 + 3 * second), Some(0));
        let hedge = slow(&read_ahead, 3 * second).unwrap();
        assert_eq!(
            (hedge.offset, hedge.max_bytes, hedge.ahead),
            (0, 100_000, false)
        );
        read_ahead.on_sent(hedge.offset, hedge.max_bytes, true, t0 + 3 * second);
        assert!(read_ahead.resending());
        assert_eq!(slow(&read_ahead, 9 * second), None, "sent twice at most");
        // Whichever answers first is the one reported; the other follows.
        assert!(read_ahead.on_answered(0, t0 + 4 * second).is_some());
        assert!(read_ahead.on_answered(0, t0 + 5 * second).is_some());
        assert_eq!(read_ahead.outstanding_bytes(), 0);
    }

    #[test]
    fn a_slow_fetch_sent_into_the_batch_at_the_position_is_sent_once_more() {
        let t0 = Instant::now();
        let mut read_ahead = shaped();
        let second = Duration::from_secs(1);
        learn_fetch_time(&mut read_ahead, 5_000, t0, second);
        // An answer was cut at 985, inside the batch of ten that the fetch at 990 was
        // placed in: that fetch brings the position's batch, and answers behind it wait.
        read_ahead.on_sent(990, 100_000, true, t0);
        read_ahead.hold(3_000, None, log_from(3_000, 3, 10), None);
        let next = |read_ahead: &ReadAhead, after: Duration| {
            read_ahead
                .next_fetch(985, Some(10_000), 100_000, t0 + after, true)
                .unwrap()
        };
        assert!(!next(&read_ahead, 2 * second).hedge, "not slow yet");
        // The caller asks about the connection of the fetch at 990, the one it waits for.
        assert_eq!(
            read_ahead.slow_fetch_offset(985, t0 + 3 * second),
            Some(990)
        );
        let hedge = next(&read_ahead, 3 * second);
        assert!(hedge.hedge, "{hedge:?}");
        assert_eq!(
            (hedge.offset, hedge.max_bytes, hedge.ahead),
            (985, 100_000, false)
        );
        read_ahead.on_sent(hedge.offset, hedge.max_bytes, true, t0 + 3 * second);
        assert!(read_ahead.resending());
        assert_eq!(read_ahead.slow_fetch_offset(985, t0 + 9 * second), None);
        assert!(!next(&read_ahead, 9 * second).hedge, "sent twice at most");
        // While both sendings are out, the offsets after the position are covered.
        let (uncovered, _) = read_ahead.first_uncovered(1_500);
        assert!(uncovered > 1_500, "{uncovered}");
        // The second sending is answered; its answer, cut by its size, took the position
        // to 1,500. The rest of the slow first sending's range is fetched as a gap now,
        // not awaited.
        assert!(read_ahead.on_answered(985, t0 + 4 * second).is_some());
        let gap = read_ahead
            .next_fetch(1_500, Some(10_000), 100_000, t0 + 4 * second, true)
            .unwrap();
        assert_eq!((gap.offset, gap.hedge), (1_500, false), "{gap:?}");
        // The first sending's answer still arrives and is taken as any other.
        assert!(read_ahead.on_answered(990, t0 + 9 * second).is_some());
        assert_eq!(read_ahead.outstanding_bytes(), 0);
    }

    #[test]
    fn answers_behind_the_position_or_without_a_whole_batch_are_dropped() {
        let mut read_ahead = shaped();
        let behind = log_from(100, 2, 10);
        let later = log_from(200, 2, 10);
        read_ahead.hold(100, None, behind, None);
        read_ahead.hold(200, None, later.clone(), None);
        assert!(
            read_ahead.take_ready(150).is_none(),
            "100..120 is behind 150, and 200.. is not reached"
        );
        assert_eq!(
            read_ahead.take_passed_bytes(),
            log_from(100, 2, 10).len() as u64
        );
        assert_eq!(read_ahead.take_passed_bytes(), 0);
        assert_eq!(read_ahead.held_bytes(), later.len());
        let ready = read_ahead.take_ready(205).unwrap();
        assert_eq!((ready.start, ready.end), (200, 220));

        // Two answers from the same batch on: the one reaching further is kept.
        let shorter = log_from(400, 1, 10);
        let longer = log_from(400, 3, 10);
        read_ahead.hold(405, None, longer.clone(), None);
        read_ahead.hold(400, None, shorter.clone(), None);
        assert_eq!(read_ahead.held_bytes(), longer.len());
        assert_eq!(read_ahead.take_passed_bytes(), shorter.len() as u64);
        let kept = read_ahead.take_ready(400).unwrap();
        assert_eq!((kept.start, kept.end), (400, 430));

        let cut = log_from(300, 1, 10);
        read_ahead.hold(300, None, cut.slice(..cut.len() - 1), None);
        assert_eq!(read_ahead.held_bytes(), 0, "no whole batch: nothing held");
        assert!(read_ahead.take_ready(300).is_none());
    }

    #[test]
    fn a_partition_behind_the_others_may_read_further_ahead() {
        const MIB: usize = 1 << 20;
        let budget = 512 * MIB;
        // 8 partitions with 20 fetches of 1 MiB at once on their lanes each.
        let cap = |left, left_all| read_ahead_cap(20, MIB, budget, 8, left, left_all);
        // Alike: an equal share of half the budget, as before the share followed the lag.
        assert_eq!(cap(100, 800), 32 * MIB);
        // Further behind: a share by what is left, up to what its lanes carry twice over.
        assert_eq!(cap(150, 1000), (256 * MIB as u128 * 150 / 1000) as usize);
        assert_eq!(cap(700, 1400), 40 * MIB);
        // Ahead of the others: still an equal share.
        assert_eq!(cap(10, 710), 32 * MIB);
        // Nothing left anywhere (a live mirror at its end): an equal share.
        assert_eq!(cap(0, 0), 32 * MIB);
        // The last partition of a copy, with every lane (32 fetches of 4 MiB): half the budget.
        assert_eq!(read_ahead_cap(32, 4 * MIB, budget, 8, 500, 500), 256 * MIB);
        // Never below its lanes' fetches and one more.
        assert_eq!(read_ahead_cap(8, 4 * MIB, 16 * MIB, 8, 1, 8), 36 * MIB);
    }
}

//! The exact source-to-target offset map of one mirrored partition, built from the
//! batches the target acknowledged, in source order. Pure.
//!
//! The map is a list of segments. A segment is a run of records consecutive on both
//! clusters, together with the source offsets dropped just before it (control
//! records, aborted transactions, records compacted away): a consumer positioned
//! anywhere in those dropped offsets has nothing left to read before the run, so it
//! resumes at the run's first record. Segments are contiguous on the source: each
//! starts where the previous one's records end, so every source offset from
//! [`OffsetMap::start`] to [`OffsetMap::end`] belongs to exactly one of them (or to the
//! dropped offsets after the last run).

use std::collections::VecDeque;

use super::error::OffsetMapError;

/// Segments kept per partition unless configured otherwise: 32 KiB at most. A
/// partition needs a new segment only at a discontinuity (a transaction marker, an
/// aborted transaction, compacted-away records, a target offset jump), so a plain
/// topic stays at one segment.
pub const DEFAULT_MAX_SEGMENTS: usize = 1024;

/// Records consecutive on both clusters: record `i` of the run has source offset
/// `source + i` and target offset `target + i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub source: i64,
    pub target: i64,
    pub records: i64,
}

impl Run {
    /// A run of `records` records, refused when an offset is negative, the run is
    /// empty or its end does not fit an i64.
    pub fn new(source: i64, target: i64, records: i64) -> Result<Self, OffsetMapError> {
        let fits = |offset: i64| offset >= 0 && offset.checked_add(records).is_some();
        if records < 1 || !fits(source) || !fits(target) {
            return Err(OffsetMapError::InvalidRun {
                source_offset: source,
                target_offset: target,
                records,
            });
        }
        Ok(Run {
            source,
            target,
            records,
        })
    }

    /// The runs of a batch the slow path rebuilt: its records carry the source
    /// offsets `source_offsets` (increasing, as in `RebuiltBatch::source_offsets`)
    /// and land at consecutive target offsets from `target_base`.
    pub fn split_sparse(
        source_offsets: &[i64],
        target_base: i64,
    ) -> Result<Vec<Run>, OffsetMapError> {
        let mut runs: Vec<Run> = Vec::new();
        for (index, &source) in source_offsets.iter().enumerate() {
            // Each record is checked on its own, so the runs' ends fit an i64.
            let record = Run::new(source, target_base.saturating_add(index as i64), 1)?;
            match runs.last_mut() {
                Some(run) if source < run.source_end() => {
                    return Err(OffsetMapError::NotIncreasing {
                        index,
                        previous: run.source_end() - 1,
                        offset: source,
                    })
                }
                Some(run) if source == run.source_end() => run.records += 1,
                _ => runs.push(record),
            }
        }
        Ok(runs)
    }

    /// The source offset after the run's last record.
    pub fn source_end(&self) -> i64 {
        self.source + self.records
    }

    /// The target offset after the run's last record.
    pub fn target_end(&self) -> i64 {
        self.target + self.records
    }
}

/// Where a consumer of the target resumes, given the next source offset it would
/// read (its committed offset on the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// The target offset of the first mirrored record whose source offset is at or
    /// after the given one; when no such record is mirrored yet but everything before
    /// the offset is, the target offset after the last mirrored record. Resuming here
    /// re-reads nothing and skips nothing.
    Exact(i64),
    /// The offset is past what is mirrored: the consumer has read source records the
    /// target does not hold yet. `target_end`, after the last mirrored record, is the
    /// safe answer: the consumer reads those records again when they arrive
    /// (duplicates, never a gap). It becomes exact once the mirror catches up.
    Ahead { target_end: i64 },
    /// Older than anything the map knows: mirroring began after this offset, or the
    /// segments covering it were dropped to bound memory. No target offset is safe,
    /// so there is no answer (as MM2, which gives no checkpoint either).
    BeforeMap { start: i64 },
    /// No record is mirrored yet, so no target offset is known.
    NotMirrored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    /// First source offset the segment answers for: the first of the dropped offsets
    /// before its run, or the run's first record.
    pub covers_from: i64,
    pub run: Run,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMap {
    segments: VecDeque<Segment>,
    /// The lowest source offset the map answers for; the first segment's
    /// `covers_from` when there is one.
    start: i64,
    /// Every source offset below it is accounted for, mirrored or dropped.
    end: i64,
    max_segments: usize,
}

impl OffsetMap {
    /// An empty map for a partition mirrored from source offset `start` on, keeping
    /// at most `max_segments` segments (at least one).
    pub fn new(start: i64, max_segments: usize) -> Result<Self, OffsetMapError> {
        if start < 0 {
            return Err(OffsetMapError::NegativeOffset { offset: start });
        }
        Ok(OffsetMap {
            segments: VecDeque::new(),
            start,
            end: start,
            max_segments: max_segments.max(1),
        })
    }

    /// Rebuilds a map from its parts, trimming the oldest segments beyond
    /// `max_segments`. The caller (the decoder) guarantees contiguity.
    pub(super) fn from_parts(
        segments: VecDeque<Segment>,
        start: i64,
        end: i64,
        max_segments: usize,
    ) -> Self {
        let mut map = OffsetMap {
            segments,
            start,
            end,
            max_segments: max_segments.max(1),
        };
        map.evict();
        map
    }

    pub(super) fn segment_list(&self) -> &VecDeque<Segment> {
        &self.segments
    }

    /// The lowest source offset the map answers for.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The source offset after everything recorded: mirrored or dropped.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// The target offset after the last mirrored record, once there is one.
    pub fn target_end(&self) -> Option<i64> {
        self.segments.back().map(|s| s.run.target_end())
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// A batch the target acknowledged: `records` records from source offset
    /// `first_source` on, consecutive, written from target offset `target_base` on.
    /// See [`OffsetMap::record_run`] for ordering rules.
    pub fn record_batch(
        &mut self,
        first_source: i64,
        target_base: i64,
        records: i64,
    ) -> Result<(), OffsetMapError> {
        self.record_run(Run::new(first_source, target_base, records)?)
    }

    /// A batch the slow path rebuilt: record `i` has source offset
    /// `source_offsets[i]` and target offset `target_base + i`. Offsets skipped
    /// between its records were compacted away.
    pub fn record_sparse(
        &mut self,
        source_offsets: &[i64],
        target_base: i64,
    ) -> Result<(), OffsetMapError> {
        let runs = Run::split_sparse(source_offsets, target_base)?;
        // Later runs follow the first on both clusters: only the first can be refused,
        // and it is checked before anything changes.
        if let Some(&first) = runs.first() {
            self.check_target(first)?;
        }
        for run in runs {
            self.record_run(run)?;
        }
        Ok(())
    }

    /// Source offsets `from..to` gave nothing to the target. Offsets between the
    /// map's end and `from` are dropped as well: whatever the caller does not
    /// record never reached the target.
    pub fn record_gap(&mut self, from: i64, to: i64) -> Result<(), OffsetMapError> {
        if from < 0 || to < from {
            return Err(OffsetMapError::InvalidGap { from, to });
        }
        if from == to {
            return Ok(());
        }
        self.truncate(from);
        self.end = self.end.max(to);
        Ok(())
    }

    /// Records a run. Calls come in source order; the source offsets between the
    /// map's end and the run's first record were dropped. A run that starts below
    /// the map's end supersedes what the map knew from there on: after a restart
    /// without exactly-once the same records are written again, later on the target,
    /// and the new copy is where a consumer must resume. Target offsets never go
    /// back: a run written below a record the map keeps means the target partition
    /// is not the one the map describes, and is refused.
    pub fn record_run(&mut self, run: Run) -> Result<(), OffsetMapError> {
        self.check_target(run)?;
        self.truncate(run.source);
        let end = self.end;
        let previous_end = match self.segments.back_mut() {
            Some(last) => {
                let contiguous = end == last.run.source_end()
                    && run.source == end
                    && run.target == last.run.target_end();
                if contiguous {
                    last.run.records += run.records;
                    self.end = run.source_end();
                    return Ok(());
                }
                last.run.source_end()
            }
            None => self.start,
        };
        self.segments.push_back(Segment {
            covers_from: previous_end,
            run,
        });
        self.end = run.source_end();
        self.evict();
        Ok(())
    }

    /// Where a consumer whose next source offset is `source` resumes on the target.
    pub fn translate(&self, source: i64) -> Translation {
        if source < self.start {
            return Translation::BeforeMap { start: self.start };
        }
        let index = self.segments.partition_point(|s| s.covers_from <= source);
        let Some(segment) = index.checked_sub(1).and_then(|i| self.segments.get(i)) else {
            return Translation::NotMirrored;
        };
        let run = segment.run;
        if source <= run.source {
            Translation::Exact(run.target)
        } else if source < run.source_end() {
            Translation::Exact(run.target + (source - run.source))
        } else if source <= self.end {
            // Only the last segment is followed by dropped offsets with no segment.
            Translation::Exact(run.target_end())
        } else {
            Translation::Ahead {
                target_end: run.target_end(),
            }
        }
    }

    /// Refuses a run written below the target offset of a record the map keeps
    /// before that run's source offset.
    fn check_target(&self, run: Run) -> Result<(), OffsetMapError> {
        let kept = self.segments.partition_point(|s| s.run.source < run.source);
        let Some(segment) = kept.checked_sub(1).and_then(|i| self.segments.get(i)) else {
            return Ok(());
        };
        let kept_records = segment.run.records.min(run.source - segment.run.source);
        let kept_target_end = segment.run.target + kept_records;
        if run.target < kept_target_end {
            return Err(OffsetMapError::TargetWentBack {
                source_offset: run.source,
                target_offset: run.target,
                target_end: kept_target_end,
            });
        }
        Ok(())
    }

    /// Forgets everything from source offset `from` on.
    fn truncate(&mut self, from: i64) {
        if from >= self.end {
            return;
        }
        self.end = from;
        if from <= self.start {
            self.segments.clear();
            self.start = from;
            return;
        }
        while self.segments.back().is_some_and(|s| s.covers_from >= from) {
            self.segments.pop_back();
        }
        if let Some(last) = self.segments.back_mut() {
            if from <= last.run.source {
                // Only dropped offsets remain of it: they trail the segment before.
                self.segments.pop_back();
            } else if from < last.run.source_end() {
                last.run.records = from - last.run.source;
            }
        }
    }

    fn evict(&mut self) {
        while self.segments.len() > self.max_segments {
            self.segments.pop_front();
        }
        if let Some(first) = self.segments.front() {
            self.start = first.covers_from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_from(start: i64) -> OffsetMap {
        OffsetMap::new(start, DEFAULT_MAX_SEGMENTS).unwrap()
    }

    /// The reference answer, straight from the definition: the target offset of the
    /// first mirrored record at or after `source`, else the end of the target.
    fn first_record_at_or_after(records: &[(i64, i64)], source: i64) -> Option<i64> {
        records
            .iter()
            .find(|(s, _)| *s >= source)
            .or(records.last())
            .map(|&(s, t)| if s >= source { t } else { t + 1 })
    }

    #[test]
    fn a_plain_topic_is_one_segment_and_translates_record_by_record() {
        let mut map = map_from(0);
        map.record_batch(0, 500, 10).unwrap();
        map.record_batch(10, 510, 5).unwrap();
        assert_eq!(map.segment_count(), 1);
        assert_eq!(map.translate(0), Translation::Exact(500));
        assert_eq!(map.translate(7), Translation::Exact(507));
        assert_eq!(map.translate(14), Translation::Exact(514));
        // Everything read: resume after the last mirrored record.
        assert_eq!(map.translate(15), Translation::Exact(515));
        assert_eq!(map.end(), 15);
        assert_eq!(map.target_end(), Some(515));
    }

    #[test]
    fn a_consumer_inside_a_transaction_marker_resumes_at_the_next_record() {
        // Records 0..=9, commit marker at 10, records 11..=20.
        let mut map = map_from(0);
        map.record_batch(0, 0, 10).unwrap();
        map.record_gap(10, 11).unwrap();
        map.record_batch(11, 10, 10).unwrap();
        assert_eq!(map.translate(9), Translation::Exact(9));
        assert_eq!(map.translate(10), Translation::Exact(10));
        assert_eq!(map.translate(11), Translation::Exact(10));
        assert_eq!(map.translate(12), Translation::Exact(11));
        assert_eq!(map.segment_count(), 2);
    }

    #[test]
    fn an_aborted_transaction_is_skipped_without_duplicates_or_gaps() {
        // 0..=4 kept, 5..=9 aborted, marker at 10, 11..=12 kept; the target also has
        // a marker of its own at 5 (a transactional producer on the target).
        let mut map = map_from(0);
        map.record_batch(0, 0, 5).unwrap();
        map.record_gap(5, 11).unwrap();
        map.record_batch(11, 6, 2).unwrap();
        for source in 5..=11 {
            assert_eq!(map.translate(source), Translation::Exact(6), "{source}");
        }
        assert_eq!(map.translate(12), Translation::Exact(7));
        assert_eq!(map.translate(13), Translation::Exact(8));
    }

    #[test]
    fn compacted_records_translate_to_the_next_surviving_record() {
        let mut map = map_from(100);
        map.record_sparse(&[100, 101, 104, 108], 0).unwrap();
        let records = [(100, 0), (101, 1), (104, 2), (108, 3)];
        for source in 100..=109 {
            assert_eq!(
                map.translate(source),
                Translation::Exact(first_record_at_or_after(&records, source).unwrap()),
                "{source}"
            );
        }
        assert_eq!(map.segment_count(), 3);
    }

    #[test]
    fn unreported_offsets_between_batches_count_as_dropped() {
        let mut map = map_from(0);
        map.record_batch(0, 0, 3).unwrap();
        map.record_batch(8, 3, 2).unwrap();
        assert_eq!(map.translate(3), Translation::Exact(3));
        assert_eq!(map.translate(7), Translation::Exact(3));
        assert_eq!(map.translate(9), Translation::Exact(4));
    }

    #[test]
    fn dropped_offsets_at_the_end_translate_exactly_once_recorded() {
        let mut map = map_from(0);
        map.record_batch(0, 40, 3).unwrap();
        // Before the gap is known the consumer looks ahead of the mirror.
        assert_eq!(map.translate(5), Translation::Ahead { target_end: 43 });
        map.record_gap(3, 6).unwrap();
        assert_eq!(map.translate(5), Translation::Exact(43));
        assert_eq!(map.translate(6), Translation::Exact(43));
        assert_eq!(map.translate(7), Translation::Ahead { target_end: 43 });
        // The next record, wherever it lands, becomes the answer for the gap.
        map.record_batch(6, 45, 1).unwrap();
        assert_eq!(map.translate(4), Translation::Exact(45));
    }

    #[test]
    fn offsets_before_the_start_and_before_any_record_have_no_answer() {
        let mut map = map_from(50);
        assert_eq!(map.translate(10), Translation::BeforeMap { start: 50 });
        assert_eq!(map.translate(50), Translation::NotMirrored);
        map.record_gap(50, 60).unwrap();
        assert_eq!(map.translate(55), Translation::NotMirrored);
        assert_eq!(map.translate(70), Translation::NotMirrored);
        map.record_batch(60, 7, 1).unwrap();
        // The leading dropped offsets belong to the first record.
        assert_eq!(map.translate(50), Translation::Exact(7));
        assert_eq!(map.translate(49), Translation::BeforeMap { start: 50 });
    }

    #[test]
    fn memory_is_bounded_by_dropping_the_oldest_segments() {
        let mut map = OffsetMap::new(0, 3).unwrap();
        // One record per transaction, each followed by its commit marker.
        for n in 0..10 {
            map.record_batch(2 * n, n, 1).unwrap();
            map.record_gap(2 * n + 1, 2 * n + 2).unwrap();
        }
        assert_eq!(map.segment_count(), 3);
        // Kept: records 14, 16, 18; the oldest covers from 13 (after record 12).
        assert_eq!(map.start(), 13);
        assert_eq!(map.translate(12), Translation::BeforeMap { start: 13 });
        assert_eq!(map.translate(13), Translation::Exact(7));
        assert_eq!(map.translate(19), Translation::Exact(10));
        assert_eq!(map.translate(20), Translation::Exact(10));
    }

    #[test]
    fn a_target_offset_jump_starts_a_segment() {
        let mut map = map_from(0);
        map.record_batch(0, 0, 2).unwrap();
        map.record_batch(2, 3, 2).unwrap();
        assert_eq!(map.segment_count(), 2);
        assert_eq!(map.translate(2), Translation::Exact(3));
        assert_eq!(map.translate(1), Translation::Exact(1));
    }

    #[test]
    fn records_written_again_after_a_restart_supersede_the_first_copy() {
        let mut map = map_from(0);
        map.record_batch(0, 0, 10).unwrap();
        map.record_gap(10, 12).unwrap();
        map.record_batch(12, 10, 5).unwrap();
        // Progress was saved at 6: source 6.. is written again from target 15.
        map.record_batch(6, 15, 4).unwrap();
        assert_eq!(map.end(), 10);
        assert_eq!(map.translate(5), Translation::Exact(5));
        assert_eq!(map.translate(6), Translation::Exact(15));
        assert_eq!(map.translate(9), Translation::Exact(18));
        assert_eq!(map.translate(12), Translation::Ahead { target_end: 19 });
    }

    #[test]
    fn a_rewind_into_dropped_offsets_keeps_the_records_before_them() {
        let mut map = map_from(0);
        map.record_batch(0, 0, 3).unwrap();
        map.record_batch(8, 3, 2).unwrap();
        map.record_batch(5, 20, 1).unwrap();
        assert_eq!(map.translate(2), Translation::Exact(2));
        assert_eq!(map.translate(4), Translation::Exact(20));
        assert_eq!(map.translate(6), Translation::Exact(21));
        assert_eq!(map.segment_count(), 2);
    }

    #[test]
    fn a_rewind_before_the_start_empties_the_map() {
        let mut map = map_from(10);
        map.record_batch(10, 0, 5).unwrap();
        map.record_batch(4, 9, 1).unwrap();
        assert_eq!(map.start(), 4);
        assert_eq!(map.translate(4), Translation::Exact(9));
        assert_eq!(map.translate(5), Translation::Exact(10));
        assert_eq!(map.translate(12), Translation::Ahead { target_end: 10 });
    }

    #[test]
    fn target_offsets_going_back_are_refused_and_leave_the_map_unchanged() {
        let mut map = map_from(0);
        map.record_batch(0, 100, 10).unwrap();
        let before = map.clone();
        assert!(matches!(
            map.record_batch(10, 105, 1),
            Err(OffsetMapError::TargetWentBack {
                source_offset: 10,
                target_offset: 105,
                target_end: 110
            })
        ));
        // A rewind to source 4 must land after the records 0..4 it keeps.
        assert!(map.record_batch(4, 103, 1).is_err());
        assert!(map.record_sparse(&[4, 5], 103).is_err());
        assert_eq!(map, before);
        map.record_batch(4, 104, 1).unwrap();
        assert_eq!(map.translate(4), Translation::Exact(104));
    }

    #[test]
    fn malformed_input_is_refused() {
        let mut map = map_from(0);
        assert!(matches!(
            map.record_batch(0, 0, 0),
            Err(OffsetMapError::InvalidRun { .. })
        ));
        assert!(map.record_batch(-1, 0, 1).is_err());
        assert!(map.record_batch(i64::MAX, 0, 1).is_err());
        assert!(matches!(
            map.record_sparse(&[3, 3], 0),
            Err(OffsetMapError::NotIncreasing { index: 1, .. })
        ));
        assert!(matches!(
            map.record_gap(5, 4),
            Err(OffsetMapError::InvalidGap { from: 5, to: 4 })
        ));
        assert!(OffsetMap::new(-1, 1).is_err());
        assert_eq!(map, map_from(0));
    }

    #[test]
    fn sparse_offsets_split_into_runs_of_consecutive_records() {
        assert_eq!(
            Run::split_sparse(&[10, 11, 12, 15, 17, 18], 40).unwrap(),
            [
                Run::new(10, 40, 3).unwrap(),
                Run::new(15, 43, 1).unwrap(),
                Run::new(17, 44, 2).unwrap()
            ]
        );
        assert!(Run::split_sparse(&[], 0).unwrap().is_empty());
    }

    /// A random walk over batches, sparse batches and gaps, checked against the
    /// definition for every source offset.
    #[test]
    fn translation_matches_the_definition_on_a_random_history() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut map = map_from(0);
            let mut records: Vec<(i64, i64)> = Vec::new();
            let (mut source, mut target) = (0i64, 0i64);
            for _ in 0..40 {
                match rng.random_range(0..3) {
                    0 => {
                        let count = rng.random_range(1..6);
                        map.record_batch(source, target, count).unwrap();
                        records.extend((0..count).map(|i| (source + i, target + i)));
                        source += count;
                        target += count;
                    }
                    1 => {
                        let mut offsets = Vec::new();
                        for _ in 0..rng.random_range(1..5) {
                            source += rng.random_range(0..3);
                            offsets.push(source);
                            source += 1;
                        }
                        map.record_sparse(&offsets, target).unwrap();
                        records.extend(
                            offsets
                                .iter()
                                .enumerate()
                                .map(|(i, &s)| (s, target + i as i64)),
                        );
                        target += offsets.len() as i64;
                    }
                    _ => {
                        let to = source + rng.random_range(1..4);
                        map.record_gap(source, to).unwrap();
                        source = to;
                    }
                }
                target += rng.random_range(0..2);
            }
            for offset in 0..=map.end() {
                let expected = first_record_at_or_after(&records, offset)
                    .map_or(Translation::NotMirrored, Translation::Exact);
                assert_eq!(
                    map.translate(offset),
                    expected,
                    "seed {seed} offset {offset}"
                );
            }
        }
    }
}

//! When to write an MM2 offset sync for a partition. Pure.
//!
//! MM2's tools translate a group's source offset `u` with the latest sync at or
//! below it: the sync's target offset when the sync is at `u`, else one past it.
//! That answer is exact for a consumer sitting on a synced record or just after one,
//! and conservative (it re-reads) elsewhere. So strait writes, like MM2's
//! `OffsetSyncWriter`, a sync for the first record it mirrors, for the first record
//! after every discontinuity, and whenever the target has moved `offset.lag.max`
//! records past the last sync's next offset; the latest record's sync is otherwise
//! held back until the caller's periodic flush (MM2 sends it on each offset commit),
//! so an idle partition ends up exactly translated.
//!
//! Beyond MM2: a discontinuity is also a target offset that is not the previous one
//! plus one (MM2 looks only at the source), and at a discontinuity the held-back
//! sync of the last record before it is written too, so that a group positioned in
//! the dropped offsets (say on a transaction marker) translates exactly with MM2's
//! rule as well.

use super::map::Run;

/// The source record at `upstream` is the target record at `downstream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPoint {
    pub upstream: i64,
    pub downstream: i64,
}

/// The sync decisions of one partition, fed the runs the map records, in order.
#[derive(Debug, Clone)]
pub struct OffsetSyncPolicy {
    offset_lag_max: i64,
    /// The last record seen.
    previous: Option<SyncPoint>,
    /// The target offset of the last sync decided.
    last_synced: i64,
    /// The last record seen, when no sync was decided for it.
    held_back: Option<SyncPoint>,
}

impl OffsetSyncPolicy {
    /// `offset_lag_max` as MM2's `offset.lag.max` (default 100; 0 syncs every
    /// record).
    pub fn new(offset_lag_max: u64) -> Self {
        OffsetSyncPolicy {
            offset_lag_max: i64::try_from(offset_lag_max).unwrap_or(i64::MAX),
            previous: None,
            last_synced: -1,
            held_back: None,
        }
    }

    /// The syncs to write now for a run the target acknowledged, in order.
    pub fn on_run(&mut self, run: Run) -> Vec<SyncPoint> {
        let mut syncs = Vec::new();
        let continues = self.previous.is_some_and(|previous| {
            run.source == previous.upstream + 1 && run.target == previous.downstream + 1
        });
        if !continues {
            syncs.extend(self.held_back.take());
            syncs.push(SyncPoint {
                upstream: run.source,
                downstream: run.target,
            });
            self.last_synced = run.target;
        }
        let last_target = run.target_end() - 1;
        // MM2 syncs a record once `downstream - (last synced + 1) >= offset.lag.max`.
        let mut due = self.next_due();
        while due <= last_target {
            syncs.push(SyncPoint {
                upstream: run.source + (due - run.target),
                downstream: due,
            });
            self.last_synced = due;
            due = self.next_due();
        }
        let last = SyncPoint {
            upstream: run.source_end() - 1,
            downstream: last_target,
        };
        self.held_back = (self.last_synced != last_target).then_some(last);
        self.previous = Some(last);
        syncs
    }

    /// The latest record's sync, if it was held back; call it periodically (on each
    /// progress commit, as MM2 does on each offset commit).
    pub fn take_held_back(&mut self) -> Option<SyncPoint> {
        let held_back = self.held_back.take();
        if let Some(sync) = held_back {
            self.last_synced = sync.downstream;
        }
        held_back
    }

    fn next_due(&self) -> i64 {
        self.last_synced
            .saturating_add(1)
            .saturating_add(self.offset_lag_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: i64, target: i64, records: i64) -> Run {
        Run::new(source, target, records).unwrap()
    }

    fn point(upstream: i64, downstream: i64) -> SyncPoint {
        SyncPoint {
            upstream,
            downstream,
        }
    }

    /// MM2's `OffsetSyncWriter.PartitionState.update`, record by record, as its
    /// source describes it: true when the record's sync is sent at once.
    struct Mm2PartitionState {
        previous_upstream: i64,
        previous_downstream: i64,
        last_sync_downstream: i64,
        max_offset_lag: i64,
    }

    impl Mm2PartitionState {
        fn update(&mut self, upstream: i64, downstream: i64) -> bool {
            let sync = self.last_sync_downstream == -1
                || downstream - (self.last_sync_downstream + 1) >= self.max_offset_lag
                || upstream - self.previous_upstream != 1
                || downstream < self.previous_downstream;
            if sync {
                self.last_sync_downstream = downstream;
            }
            self.previous_upstream = upstream;
            self.previous_downstream = downstream;
            sync
        }
    }

    #[test]
    fn the_first_record_and_every_lag_max_records_are_synced() {
        let mut policy = OffsetSyncPolicy::new(3);
        assert_eq!(
            policy.on_run(run(100, 0, 10)),
            [point(100, 0), point(104, 4), point(108, 8)]
        );
        assert_eq!(policy.on_run(run(110, 10, 2)), []);
        assert_eq!(policy.on_run(run(112, 12, 1)), [point(112, 12)]);
    }

    #[test]
    fn the_latest_record_is_held_back_until_the_flush() {
        let mut policy = OffsetSyncPolicy::new(100);
        assert_eq!(policy.on_run(run(0, 0, 5)), [point(0, 0)]);
        assert_eq!(policy.take_held_back(), Some(point(4, 4)));
        assert_eq!(policy.take_held_back(), None);
        // The flushed sync counts as the last one for the lag: next due at 4 + 1 + 100.
        assert_eq!(policy.on_run(run(5, 5, 101)), [point(105, 105)]);
        assert_eq!(policy.take_held_back(), None);
    }

    #[test]
    fn a_dropped_range_syncs_both_of_its_sides() {
        let mut policy = OffsetSyncPolicy::new(100);
        policy.on_run(run(0, 0, 10));
        // Commit marker at source 10.
        assert_eq!(policy.on_run(run(11, 10, 5)), [point(9, 9), point(11, 10)]);
        // A consumer on the marker (10) resumes at 9 + 1 = 10 with MM2's rule: exact.
        assert_eq!(policy.take_held_back(), Some(point(15, 14)));
    }

    #[test]
    fn a_target_jump_is_a_discontinuity_too() {
        let mut policy = OffsetSyncPolicy::new(100);
        policy.on_run(run(0, 0, 3));
        assert_eq!(policy.on_run(run(3, 4, 1)), [point(2, 2), point(3, 4)]);
    }

    #[test]
    fn records_written_again_resync_from_their_first() {
        let mut policy = OffsetSyncPolicy::new(100);
        policy.on_run(run(0, 0, 10));
        assert_eq!(policy.on_run(run(5, 10, 2)), [point(9, 9), point(5, 10)]);
    }

    /// MM2's `OffsetSyncStore.translateDownstream` over all syncs (MM2 thins old
    /// syncs out, which only makes old translations coarser).
    fn mm2_translate(syncs: &[SyncPoint], upstream: i64) -> Option<i64> {
        syncs
            .iter()
            .filter(|s| s.upstream <= upstream)
            .max_by_key(|s| s.upstream)
            .map(|s| s.downstream + i64::from(s.upstream != upstream))
    }

    /// With strait's syncs, MM2's rule never skips a record, is exact in dropped
    /// offsets and after the flush, and re-reads fewer than `offset.lag.max`
    /// records elsewhere.
    #[test]
    fn mm2_translates_strait_syncs_safely_and_closely() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        for seed in 0..30 {
            let mut rng = StdRng::seed_from_u64(seed);
            let lag = rng.random_range(0..6);
            let mut policy = OffsetSyncPolicy::new(lag as u64);
            let mut syncs = Vec::new();
            let mut records: Vec<(i64, i64)> = Vec::new();
            let (mut source, mut target) = (0i64, 0i64);
            for _ in 0..30 {
                source += rng.random_range(0..3);
                let records_in_run = rng.random_range(1..12);
                syncs.extend(policy.on_run(run(source, target, records_in_run)));
                records.extend((0..records_in_run).map(|i| (source + i, target + i)));
                source += records_in_run;
                target += records_in_run;
            }
            syncs.extend(policy.take_held_back());
            for upstream in records[0].0..=source {
                let exact = records
                    .iter()
                    .find(|(s, _)| *s >= upstream)
                    .map_or(target, |&(_, t)| t);
                let mm2 = mm2_translate(&syncs, upstream).expect("the first record is synced");
                let is_record = records.iter().any(|(s, _)| *s == upstream);
                let context = format!("seed {seed} lag {lag} upstream {upstream}");
                assert!(mm2 <= exact, "{context}: skips records");
                assert!(
                    exact - mm2 < lag.max(1),
                    "{context}: re-reads {}",
                    exact - mm2
                );
                if !is_record {
                    assert_eq!(mm2, exact, "{context}: in dropped offsets");
                }
            }
        }
    }

    /// The syncs of every record MM2 would send at once are written at once by
    /// strait too, for runs cut anywhere.
    #[test]
    fn immediate_syncs_are_mm2s_on_contiguous_and_gapped_input() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        for seed in 0..30 {
            let mut rng = StdRng::seed_from_u64(seed);
            let lag = rng.random_range(0..8);
            let mut policy = OffsetSyncPolicy::new(lag as u64);
            let mut mm2 = Mm2PartitionState {
                previous_upstream: -1,
                previous_downstream: -1,
                last_sync_downstream: -1,
                max_offset_lag: lag,
            };
            let (mut source, mut target) = (0i64, 0i64);
            for _ in 0..30 {
                source += rng.random_range(0..2);
                let records = rng.random_range(1..12);
                let ours = policy.on_run(run(source, target, records));
                let expected: Vec<SyncPoint> = (0..records)
                    .filter(|i| mm2.update(source + i, target + i))
                    .map(|i| point(source + i, target + i))
                    .collect();
                let ours_without_held_back: Vec<SyncPoint> = ours
                    .iter()
                    .copied()
                    .filter(|p| p.upstream >= source)
                    .collect();
                assert_eq!(ours_without_held_back, expected, "seed {seed}");
                source += records;
                target += records;
            }
        }
    }
}

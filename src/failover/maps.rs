//! The offset maps of a flow's partitions, fed by the flow's events, with the MM2
//! offset syncs they call for. Pure; the task writes what it returns.

use std::collections::{BTreeSet, HashMap};

use crate::engine::MappedBatch;
use crate::offsets::{
    MirroredPartition, OffsetMap, OffsetSync, OffsetSyncPolicy, Run, TopicPartition,
    DEFAULT_MAX_SEGMENTS,
};

struct Tracked {
    target_topic: String,
    map: OffsetMap,
    policy: OffsetSyncPolicy,
}

/// The maps of one flow, by source partition.
pub struct FlowMaps {
    offset_lag_max: u64,
    partitions: HashMap<TopicPartition, Tracked>,
    /// Partitions whose map changed since it was last persisted.
    dirty: BTreeSet<TopicPartition>,
}

impl FlowMaps {
    pub fn new(offset_lag_max: u64) -> Self {
        FlowMaps {
            offset_lag_max,
            partitions: HashMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// A map read back from the offset-maps topic. Its syncs were written when it
    /// was built, so the sync policy starts afresh: the next run syncs again.
    pub fn load(&mut self, partition: TopicPartition, target_topic: String, map: OffsetMap) {
        self.partitions.insert(
            partition,
            Tracked {
                target_topic,
                map,
                policy: OffsetSyncPolicy::new(self.offset_lag_max),
            },
        );
    }

    /// Batches the target acknowledged for a source partition, in source order;
    /// returns the offset syncs due now.
    pub fn on_mapped(
        &mut self,
        partition: &TopicPartition,
        target_topic: &str,
        batches: &[MappedBatch],
    ) -> Vec<OffsetSync> {
        let mut syncs = Vec::new();
        let offset_lag_max = self.offset_lag_max;
        for batch in batches {
            let runs = match (&batch.source_offsets, batch.records) {
                _ if batch.target_base_offset < 0 => {
                    tracing::warn!(topic = %partition.topic, partition = partition.partition,
                        offset = batch.first_source_offset,
                        "the target took a batch as a duplicate without its offset: consumer offsets in it translate to the next batch");
                    Vec::new()
                }
                (Some(offsets), _) => {
                    Run::split_sparse(offsets, batch.target_base_offset).unwrap_or_default()
                }
                (None, records) if records > 0 => Run::new(
                    batch.first_source_offset,
                    batch.target_base_offset,
                    i64::from(records),
                )
                .into_iter()
                .collect(),
                (None, _) => Vec::new(),
            };
            let tracked = self.tracked(partition, target_topic, batch.first_source_offset);
            for run in runs {
                if let Err(error) = tracked.map.record_run(run) {
                    tracing::warn!(topic = %partition.topic, partition = partition.partition, %error,
                        "offset map restarts: the target partition is not the one the map describes");
                    tracked.map = OffsetMap::new(run.source, DEFAULT_MAX_SEGMENTS)
                        .expect("run offsets are not negative");
                    tracked.policy = OffsetSyncPolicy::new(offset_lag_max);
                    tracked
                        .map
                        .record_run(run)
                        .expect("an empty map takes any run");
                }
                syncs.extend(
                    tracked
                        .policy
                        .on_run(run)
                        .into_iter()
                        .map(|point| OffsetSync {
                            topic_partition: partition.clone(),
                            upstream_offset: point.upstream,
                            downstream_offset: point.downstream,
                        }),
                );
            }
            let end = tracked.map.end();
            if batch.resume_at > end {
                tracked
                    .map
                    .record_gap(end, batch.resume_at)
                    .expect("a gap from the end forward is valid");
            }
            self.dirty.insert(partition.clone());
        }
        syncs
    }

    fn tracked(
        &mut self,
        partition: &TopicPartition,
        target_topic: &str,
        start: i64,
    ) -> &mut Tracked {
        let offset_lag_max = self.offset_lag_max;
        self.partitions
            .entry(partition.clone())
            .or_insert_with(|| Tracked {
                target_topic: target_topic.to_string(),
                map: OffsetMap::new(start.max(0), DEFAULT_MAX_SEGMENTS)
                    .expect("start is not negative"),
                policy: OffsetSyncPolicy::new(offset_lag_max),
            })
    }

    /// The partition's progress is committed: its map to persist (when it changed)
    /// and its held-back offset sync.
    pub fn on_committed(
        &mut self,
        partition: &TopicPartition,
    ) -> (Option<Vec<u8>>, Option<OffsetSync>) {
        let Some(tracked) = self.partitions.get_mut(partition) else {
            return (None, None);
        };
        let sync = tracked.policy.take_held_back().map(|point| OffsetSync {
            topic_partition: partition.clone(),
            upstream_offset: point.upstream,
            downstream_offset: point.downstream,
        });
        let map = self.dirty.remove(partition).then(|| tracked.map.encode());
        (map, sync)
    }

    /// Where a source partition is mirrored, for checkpoints.
    pub fn mirrored(&self, partition: &TopicPartition) -> Option<MirroredPartition<'_>> {
        self.partitions.get(partition).map(|t| MirroredPartition {
            target_topic: &t.target_topic,
            map: &t.map,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::offsets::Translation;

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "orders".into(),
            partition: 0,
        }
    }

    fn batch(first: i64, target: i64, records: i32, resume_at: i64) -> MappedBatch {
        MappedBatch {
            first_source_offset: first,
            target_base_offset: target,
            records,
            source_offsets: None,
            resume_at,
        }
    }

    #[test]
    fn dropped_offsets_and_compacted_batches_translate_exactly() {
        let mut maps = FlowMaps::new(100);
        // 0..=4 copied, a commit marker at 5, then a compacted batch of 6, 8, 9.
        let mut compacted = batch(6, 5, 3, 10);
        compacted.source_offsets = Some(Arc::from(vec![6, 8, 9]));
        let syncs = maps.on_mapped(&tp(), "src.orders", &[batch(0, 0, 5, 6), compacted]);
        let map = maps.mirrored(&tp()).unwrap().map;
        assert_eq!(map.translate(5), Translation::Exact(5));
        assert_eq!(map.translate(7), Translation::Exact(6));
        assert_eq!(map.translate(10), Translation::Exact(8));
        let upstream: Vec<i64> = syncs.iter().map(|s| s.upstream_offset).collect();
        assert_eq!(upstream, vec![0, 4, 6, 8]);
        let (persisted, held_back) = maps.on_committed(&tp());
        let restored = OffsetMap::decode(&persisted.unwrap(), DEFAULT_MAX_SEGMENTS).unwrap();
        assert_eq!(restored.translate(10), Translation::Exact(8));
        assert_eq!(
            held_back.map(|s| (s.upstream_offset, s.downstream_offset)),
            Some((9, 7))
        );
        assert_eq!(
            maps.on_committed(&tp()),
            (None, None),
            "nothing new to persist"
        );
    }

    #[test]
    fn a_batch_written_below_the_map_restarts_it() {
        let mut maps = FlowMaps::new(100);
        maps.on_mapped(&tp(), "src.orders", &[batch(0, 10, 5, 5)]);
        maps.on_mapped(&tp(), "src.orders", &[batch(5, 0, 5, 10)]);
        let map = maps.mirrored(&tp()).unwrap().map;
        assert_eq!(map.start(), 5);
        assert_eq!(map.translate(7), Translation::Exact(2));
    }
}

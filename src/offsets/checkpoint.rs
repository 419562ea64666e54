//! Checkpoints of source consumer groups, translated exactly with the offset maps,
//! and the group offsets they let strait commit on the target
//! (`sync.group.offsets.enabled`). Pure; the caller lists the groups' offsets on the
//! source, describes the groups on the target and writes what this returns.
//!
//! As MM2's `MirrorCheckpointTask`: a partition gets a checkpoint when its group
//! has a committed offset there that translates, and only when it is the first for
//! that group and partition, the group moved back on the source, or the target
//! offset moved forward. Offsets are committed on the target only for groups with no
//! active member there, and only forward.

use std::collections::{BTreeMap, HashMap};

use super::map::{OffsetMap, Translation};
use super::mm2_records::Checkpoint;
use super::TopicPartition;

/// A group's committed position on a source partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The partition on the source.
    pub topic_partition: TopicPartition,
    /// The next offset the group reads.
    pub offset: i64,
    pub metadata: String,
}

/// Where a source partition is mirrored, and how its offsets translate.
#[derive(Debug, Clone, Copy)]
pub struct MirroredPartition<'a> {
    /// The topic's name on the target; partitions keep their number.
    pub target_topic: &'a str,
    pub map: &'a OffsetMap,
}

/// A group's state on the target, as the caller found it.
#[derive(Debug, Clone, Copy)]
pub enum TargetGroup<'a> {
    /// Members are consuming on the target: the group's offsets are theirs.
    Active,
    /// No active member (the group is empty, or does not exist yet): the offsets
    /// it has committed on the target.
    Inactive {
        committed: &'a HashMap<TopicPartition, i64>,
    },
}

/// An offset to commit for a group on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The partition on the target.
    pub topic_partition: TopicPartition,
    pub offset: i64,
    pub metadata: String,
}

/// The latest checkpoint per group and target partition: those read back from the
/// checkpoints topic at start, then those emitted.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStore {
    latest: HashMap<String, BTreeMap<TopicPartition, Checkpoint>>,
}

impl CheckpointStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A checkpoint on the checkpoints topic: read back at start (in order, the later
    /// one for a group and partition wins), or just written.
    pub fn load(&mut self, checkpoint: Checkpoint) {
        self.latest
            .entry(checkpoint.group.clone())
            .or_default()
            .insert(checkpoint.topic_partition.clone(), checkpoint);
    }

    /// The latest checkpoints of `group`, by target partition.
    pub fn latest(&self, group: &str) -> impl Iterator<Item = &Checkpoint> {
        self.latest.get(group).into_iter().flat_map(|c| c.values())
    }

    /// The checkpoints to write for `group` given its committed offsets on the
    /// source; `mirrored` says where a source partition goes (None: not mirrored by
    /// this flow). A group ahead of the mirror gets the conservative target end
    /// (it re-reads what it read on the source but is not mirrored yet) and an exact
    /// checkpoint once the mirror passes it; offsets older than a map answers for
    /// give none. Load the returned checkpoints once they are written: until then
    /// they are returned again, so a failed write is retried.
    pub fn checkpoints_for_group<'a>(
        &self,
        group: &str,
        committed: &[CommittedOffset],
        mirrored: impl Fn(&TopicPartition) -> Option<MirroredPartition<'a>>,
    ) -> Vec<Checkpoint> {
        let mut emitted = Vec::new();
        for position in committed.iter().filter(|c| c.offset >= 0) {
            let Some(partition) = mirrored(&position.topic_partition) else {
                continue;
            };
            let downstream_offset = match partition.map.translate(position.offset) {
                Translation::Exact(target) => target,
                Translation::Ahead { target_end } => target_end,
                Translation::BeforeMap { .. } | Translation::NotMirrored => continue,
            };
            let checkpoint = Checkpoint {
                group: group.to_owned(),
                topic_partition: TopicPartition {
                    topic: partition.target_topic.to_owned(),
                    partition: position.topic_partition.partition,
                },
                upstream_offset: position.offset,
                downstream_offset,
                metadata: position.metadata.clone(),
            };
            if self.is_news(&checkpoint) {
                emitted.push(checkpoint);
            }
        }
        emitted
    }

    /// The offsets to commit for `group` on the target, from its latest checkpoints:
    /// none while it has active members there, and for each partition only when the
    /// target has no offset for it or a smaller one.
    pub fn offsets_to_sync(&self, group: &str, target: TargetGroup<'_>) -> Vec<GroupOffset> {
        let TargetGroup::Inactive { committed } = target else {
            return Vec::new();
        };
        self.latest(group)
            .filter(|checkpoint| {
                committed
                    .get(&checkpoint.topic_partition)
                    .is_none_or(|&offset| offset < checkpoint.downstream_offset)
            })
            .map(|checkpoint| GroupOffset {
                topic_partition: checkpoint.topic_partition.clone(),
                offset: checkpoint.downstream_offset,
                metadata: checkpoint.metadata.clone(),
            })
            .collect()
    }

    /// MM2's `checkpointIsMoreRecent`: checkpoints move forward on the target unless
    /// the group itself moved back on the source.
    fn is_news(&self, checkpoint: &Checkpoint) -> bool {
        let last = self
            .latest
            .get(&checkpoint.group)
            .and_then(|c| c.get(&checkpoint.topic_partition));
        match last {
            None => true,
            Some(last) => {
                checkpoint.upstream_offset < last.upstream_offset
                    || checkpoint.downstream_offset > last.downstream_offset
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::map::DEFAULT_MAX_SEGMENTS;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    fn committed(topic: &str, partition: i32, offset: i64) -> CommittedOffset {
        CommittedOffset {
            topic_partition: tp(topic, partition),
            offset,
            metadata: format!("m{offset}"),
        }
    }

    /// Source `orders-0`: records 0..=9 at target 0..=9, marker at 10, records
    /// 11..=20 at target 10..=19. `orders-1` starts mirroring at source 100.
    fn maps() -> HashMap<TopicPartition, OffsetMap> {
        let mut first = OffsetMap::new(0, DEFAULT_MAX_SEGMENTS).unwrap();
        first.record_batch(0, 0, 10).unwrap();
        first.record_gap(10, 11).unwrap();
        first.record_batch(11, 10, 10).unwrap();
        let mut second = OffsetMap::new(100, DEFAULT_MAX_SEGMENTS).unwrap();
        second.record_batch(100, 0, 5).unwrap();
        HashMap::from([(tp("orders", 0), first), (tp("orders", 1), second)])
    }

    fn checkpoints(
        store: &mut CheckpointStore,
        maps: &HashMap<TopicPartition, OffsetMap>,
        positions: &[CommittedOffset],
    ) -> Vec<(TopicPartition, i64, i64)> {
        let emitted = store.checkpoints_for_group("g", positions, |source| {
            maps.get(source).map(|map| MirroredPartition {
                target_topic: "A.orders",
                map,
            })
        });
        // Written, as the failover task does before it loads them.
        for checkpoint in &emitted {
            store.load(checkpoint.clone());
        }
        emitted
            .into_iter()
            .map(|c| (c.topic_partition, c.upstream_offset, c.downstream_offset))
            .collect()
    }

    #[test]
    fn committed_offsets_translate_exactly_to_the_target_topic() {
        let maps = maps();
        let store = CheckpointStore::new();
        let emitted = store.checkpoints_for_group(
            "g",
            &[committed("orders", 0, 10), committed("orders", 1, 103)],
            |source| {
                maps.get(source).map(|map| MirroredPartition {
                    target_topic: "A.orders",
                    map,
                })
            },
        );
        assert_eq!(
            emitted,
            [
                Checkpoint {
                    group: "g".into(),
                    topic_partition: tp("A.orders", 0),
                    upstream_offset: 10,
                    downstream_offset: 10,
                    metadata: "m10".into(),
                },
                Checkpoint {
                    group: "g".into(),
                    topic_partition: tp("A.orders", 1),
                    upstream_offset: 103,
                    downstream_offset: 3,
                    metadata: "m103".into(),
                },
            ]
        );
        assert_eq!(store.latest("g").count(), 0, "nothing written yet");
    }

    #[test]
    fn a_checkpoint_not_written_is_emitted_again() {
        let maps = maps();
        let mut store = CheckpointStore::new();
        let position = [committed("orders", 0, 15)];
        let mirrored = |source: &TopicPartition| {
            maps.get(source).map(|map| MirroredPartition {
                target_topic: "A.orders",
                map,
            })
        };
        let first = store.checkpoints_for_group("g", &position, mirrored);
        assert_eq!(first.len(), 1);
        // The write failed: nothing loaded, so the next round has it again.
        assert_eq!(store.checkpoints_for_group("g", &position, mirrored), first);
        store.load(first[0].clone());
        assert_eq!(store.checkpoints_for_group("g", &position, mirrored), []);
    }

    #[test]
    fn untranslatable_and_unmirrored_positions_give_no_checkpoint() {
        let maps = maps();
        let mut store = CheckpointStore::new();
        let emitted = checkpoints(
            &mut store,
            &maps,
            &[
                committed("orders", 1, 50),
                committed("orders", 0, -1),
                committed("other", 0, 5),
            ],
        );
        assert_eq!(emitted, []);
    }

    #[test]
    fn a_group_ahead_of_the_mirror_gets_the_target_end_then_the_exact_offset() {
        let mut maps = maps();
        let mut store = CheckpointStore::new();
        let ahead = [committed("orders", 0, 25)];
        assert_eq!(
            checkpoints(&mut store, &maps, &ahead),
            [(tp("A.orders", 0), 25, 20)]
        );
        let map = maps.get_mut(&tp("orders", 0)).unwrap();
        map.record_gap(21, 23).unwrap();
        map.record_batch(23, 20, 5).unwrap();
        assert_eq!(
            checkpoints(&mut store, &maps, &ahead),
            [(tp("A.orders", 0), 25, 22)]
        );
    }

    #[test]
    fn checkpoints_repeat_only_when_they_move_as_mm2_allows() {
        let maps = maps();
        let mut store = CheckpointStore::new();
        assert_eq!(
            checkpoints(&mut store, &maps, &[committed("orders", 0, 15)]).len(),
            1
        );
        // Same position: nothing new.
        assert_eq!(
            checkpoints(&mut store, &maps, &[committed("orders", 0, 15)]),
            []
        );
        // The group rewound on the source: the target offset goes back as well.
        assert_eq!(
            checkpoints(&mut store, &maps, &[committed("orders", 0, 10)]),
            [(tp("A.orders", 0), 10, 10)]
        );
        // The marker (10) and the record after it (11) translate alike: not newer.
        assert_eq!(
            checkpoints(&mut store, &maps, &[committed("orders", 0, 11)]),
            []
        );
        store.load(Checkpoint {
            group: "g".into(),
            topic_partition: tp("A.orders", 0),
            upstream_offset: 12,
            downstream_offset: 11,
            metadata: String::new(),
        });
        // Moving forward on the source and on the target.
        assert_eq!(
            checkpoints(&mut store, &maps, &[committed("orders", 0, 14)]),
            [(tp("A.orders", 0), 14, 13)]
        );
        assert_eq!(
            checkpoints(&mut store, &maps, &[committed("orders", 0, 2)]),
            [(tp("A.orders", 0), 2, 2)]
        );
    }

    #[test]
    fn group_offsets_are_committed_only_forward_and_only_for_inactive_groups() {
        let maps = maps();
        let mut store = CheckpointStore::new();
        checkpoints(
            &mut store,
            &maps,
            &[committed("orders", 0, 15), committed("orders", 1, 104)],
        );
        assert_eq!(store.offsets_to_sync("g", TargetGroup::Active), []);

        let nothing_on_target = HashMap::new();
        let all = store.offsets_to_sync(
            "g",
            TargetGroup::Inactive {
                committed: &nothing_on_target,
            },
        );
        assert_eq!(
            all,
            [
                GroupOffset {
                    topic_partition: tp("A.orders", 0),
                    offset: 14,
                    metadata: "m15".into(),
                },
                GroupOffset {
                    topic_partition: tp("A.orders", 1),
                    offset: 4,
                    metadata: "m104".into(),
                },
            ]
        );

        let on_target = HashMap::from([(tp("A.orders", 0), 14), (tp("A.orders", 1), 3)]);
        let forward = store.offsets_to_sync(
            "g",
            TargetGroup::Inactive {
                committed: &on_target,
            },
        );
        assert_eq!(
            forward
                .iter()
                .map(|o| (o.topic_partition.clone(), o.offset))
                .collect::<Vec<_>>(),
            [(tp("A.orders", 1), 4)]
        );
        assert_eq!(store.offsets_to_sync("other", TargetGroup::Active), []);
    }
}

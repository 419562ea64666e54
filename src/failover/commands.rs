//! What `strait offsets` shows and does: a group's positions on both clusters,
//! exact translation with the persisted offset maps, and committing the translated
//! offsets to the target for a switch-over.

use std::collections::HashMap;

use crate::engine::ClusterEndpoint;
use crate::offsets::{GroupOffset, OffsetMap, TopicPartition, Translation};
use crate::wire::ClusterClient;

use super::error::FailoverError;
use super::groups;
use super::task::load_maps;

/// A group's position on one mirrored source partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPosition {
    pub source: TopicPartition,
    /// The next source offset the group reads.
    pub source_offset: i64,
    /// The partition on the target.
    pub target: TopicPartition,
    pub translation: Translation,
    /// The group's committed offset on the target, if any.
    pub target_committed: Option<i64>,
}

impl GroupPosition {
    /// Where the group resumes on the target: exact, or the target's end when the
    /// group is ahead of the mirror (it re-reads what is not mirrored yet).
    pub fn target_offset(&self) -> Option<i64> {
        match self.translation {
            Translation::Exact(offset) => Some(offset),
            Translation::Ahead { target_end } => Some(target_end),
            Translation::BeforeMap { .. } | Translation::NotMirrored => None,
        }
    }

    /// Records the target group is behind its translated position (negative: ahead).
    pub fn target_lag(&self) -> Option<i64> {
        Some(self.target_offset()? - self.target_committed?)
    }
}

/// The two clusters of a flow and its persisted offset maps.
pub struct OffsetsView {
    source: ClusterClient,
    target: ClusterClient,
    maps: HashMap<TopicPartition, OffsetMap>,
    remote_topic: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl OffsetsView {
    pub async fn connect(
        source: &ClusterEndpoint,
        target: &ClusterEndpoint,
        remote_topic: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Result<OffsetsView, FailoverError> {
        let client = |e: &ClusterEndpoint| {
            ClusterClient::new(&e.alias, e.bootstrap.clone(), e.connection.clone())
        };
        let source = client(source);
        let target = client(target);
        let maps = load_maps(&target, source.name())
            .await?
            .into_iter()
            .collect();
        Ok(OffsetsView {
            source,
            target,
            maps,
            remote_topic: Box::new(remote_topic),
        })
    }

    /// The target partition and translation of a source offset; None when strait
    /// has no map for the partition.
    pub fn translate(
        &self,
        source: &TopicPartition,
        offset: i64,
    ) -> Option<(TopicPartition, Translation)> {
        let map = self.maps.get(source)?;
        Some((self.remote(source), map.translate(offset)))
    }

    fn remote(&self, source: &TopicPartition) -> TopicPartition {
        TopicPartition {
            topic: (self.remote_topic)(&source.topic),
            partition: source.partition,
        }
    }

    /// The group's committed offsets on the source that strait mirrors, translated,
    /// next to its offsets on the target.
    pub async fn group_positions(&self, group: &str) -> Result<Vec<GroupPosition>, FailoverError> {
        let committed = groups::committed_offsets(&self.source, group).await?;
        let on_target = groups::committed_map(&self.target, group).await?;
        let mut positions: Vec<GroupPosition> = committed
            .into_iter()
            .filter_map(|c| {
                let (target, translation) = self.translate(&c.topic_partition, c.offset)?;
                Some(GroupPosition {
                    target_committed: on_target.get(&target).copied(),
                    source: c.topic_partition,
                    source_offset: c.offset,
                    target,
                    translation,
                })
            })
            .collect();
        positions.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(positions)
    }

    /// The offsets a failover commits for `group` on the target; with `apply`, commits
    /// them (refused while the group has members on the target).
    pub async fn failover(
        &self,
        group: &str,
        apply: bool,
    ) -> Result<Vec<GroupOffset>, FailoverError> {
        let offsets: Vec<GroupOffset> = self
            .group_positions(group)
            .await?
            .into_iter()
            .filter_map(|p| {
                Some(GroupOffset {
                    offset: p.target_offset()?,
                    topic_partition: p.target,
                    metadata: String::new(),
                })
            })
            .collect();
        if apply {
            if groups::has_active_members(&self.target, group).await? {
                return Err(FailoverError::GroupActive {
                    cluster: self.target.name().to_string(),
                    group: group.to_string(),
                });
            }
            groups::commit_offsets(&self.target, group, &offsets).await?;
        }
        Ok(offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(translation: Translation, target_committed: Option<i64>) -> GroupPosition {
        let partition = TopicPartition {
            topic: "orders".into(),
            partition: 0,
        };
        GroupPosition {
            source: partition.clone(),
            source_offset: 10,
            target: partition,
            translation,
            target_committed,
        }
    }

    #[test]
    fn a_group_ahead_of_the_mirror_resumes_at_the_targets_end() {
        assert_eq!(
            position(Translation::Exact(7), None).target_offset(),
            Some(7)
        );
        let ahead = position(Translation::Ahead { target_end: 5 }, Some(2));
        assert_eq!(
            (ahead.target_offset(), ahead.target_lag()),
            (Some(5), Some(3))
        );
        let before = position(Translation::BeforeMap { start: 20 }, Some(2));
        assert_eq!((before.target_offset(), before.target_lag()), (None, None));
        assert_eq!(
            position(Translation::NotMirrored, None).target_offset(),
            None
        );
        assert_eq!(position(Translation::Exact(7), None).target_lag(), None);
    }
}

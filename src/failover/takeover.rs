//! Taking a flow over from MM2: partitions strait has no progress for yet start where
//! MM2 stopped, read from MM2's offsets topic on the target, by seeding strait's
//! progress group before the flow starts.

use std::collections::HashMap;

use crate::offsets::{GroupOffset, Mm2SourceOffset, TopicPartition};
use crate::wire::ClusterClient;

use super::error::FailoverError;
use super::groups;
use super::internal_topic::read_all;

/// MM2's progress on the partitions of `source_alias`: the next source offset MM2
/// would copy, by source partition.
pub async fn mm2_progress(
    target: &ClusterClient,
    mm2_offsets_topic: &str,
    source_alias: &str,
) -> Result<HashMap<TopicPartition, i64>, FailoverError> {
    let mut progress = HashMap::new();
    for record in read_all(target, mm2_offsets_topic).await? {
        let decoded = Mm2SourceOffset::decode(&record.key, record.value.as_deref());
        let offset = match decoded {
            Ok(Some(offset)) if offset.cluster == source_alias => offset,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(topic = mm2_offsets_topic, %error, "skipping an unreadable record of MM2's offsets topic");
                continue;
            }
        };
        match offset.resume_at() {
            Some(next) => progress.insert(offset.topic_partition, next),
            None => progress.remove(&offset.topic_partition),
        };
    }
    Ok(progress)
}

/// Seeds `progress_group` (target partition -> next source offset) with MM2's
/// progress for the partitions of `routes` (source topic, target topic) that have no
/// strait progress. Returns the partitions taken over.
pub async fn take_over_from_mm2(
    target: &ClusterClient,
    mm2_offsets_topic: &str,
    source_alias: &str,
    progress_group: &str,
    routes: &[(String, String)],
) -> Result<Vec<GroupOffset>, FailoverError> {
    let mm2 = mm2_progress(target, mm2_offsets_topic, source_alias).await?;
    if mm2.is_empty() {
        return Ok(Vec::new());
    }
    let strait = groups::committed_map(target, progress_group).await?;
    let mut seeds: Vec<GroupOffset> = mm2
        .iter()
        .filter_map(|(source, &next)| {
            let (_, remote) = routes.iter().find(|(s, _)| *s == source.topic)?;
            let on_target = TopicPartition {
                topic: remote.clone(),
                partition: source.partition,
            };
            (!strait.contains_key(&on_target)).then(|| GroupOffset {
                topic_partition: on_target,
                offset: next,
                metadata: "strait progress: next source offset (taken over from MM2)".into(),
            })
        })
        .collect();
    seeds.sort_by(|a, b| a.topic_partition.cmp(&b.topic_partition));
    groups::commit_offsets(target, progress_group, &seeds).await?;
    Ok(seeds)
}

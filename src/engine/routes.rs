//! Getting topics ready to mirror: target topics created or grown to the source's
//! partition count, their size limits, and each new partition's start offset. Used at
//! start-up and whenever discovery finds new topics or partitions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::StartPosition;
use crate::config::{ConfigPropertyFilter, TopicConfigDefaults};
use crate::topology::admin::{create_partitions, describe_topic_configs};
use crate::topology::configs_for_new_topic;
use crate::topology::partitions::PartitionIncrease;
use crate::wire::{ClusterClient, MetadataSnapshot};

use super::error::EngineError;
use super::setup::{self, NewTopic};
use super::spec::{list_offsets_timestamp, TopicRoute};

/// What preparation needs; cheap to clone into a task.
#[derive(Clone)]
pub struct RouteSetup {
    pub flow: String,
    pub source: ClusterClient,
    pub target: ClusterClient,
    pub progress_group: String,
    pub replication_factor: Option<i16>,
    /// Which source configs new target topics take (MM2's rules); None: only
    /// compression.type=producer.
    pub new_topic_configs: Option<(ConfigPropertyFilter, TopicConfigDefaults)>,
}

/// A topic ready to mirror.
#[derive(Debug, Clone)]
pub struct PreparedRoute {
    pub source: String,
    pub target: String,
    pub source_id: Uuid,
    pub target_id: Uuid,
    pub max_batch_bytes: usize,
}

/// A partition ready to mirror from `start`.
#[derive(Debug, Clone)]
pub struct PreparedPartition {
    pub source_topic: String,
    pub partition: i32,
    pub start: i64,
    /// The source's last stable offset when the partition was prepared, if it could be
    /// read: the lag is known before the first fetch returns.
    pub log_end: Option<i64>,
    pub source_leader: Option<i32>,
    pub target_leader: Option<i32>,
}

#[derive(Debug, Default)]
pub struct Prepared {
    pub routes: Vec<PreparedRoute>,
    pub partitions: Vec<PreparedPartition>,
    /// Source topics that were not on the source cluster any more.
    pub vanished: Vec<String>,
}

impl RouteSetup {
    /// Prepares `routes`, skipping the partitions in `running`. Partitions without
    /// committed progress start at `start`.
    pub async fn prepare(
        &self,
        routes: &[TopicRoute],
        running: &HashSet<(String, i32)>,
        start: StartPosition,
    ) -> Result<Prepared, EngineError> {
        let source_topics: Vec<String> = routes.iter().map(|t| t.source.clone()).collect();
        let target_topics: Vec<String> = routes.iter().map(|t| t.target.clone()).collect();
        if routes.is_empty() {
            return Ok(Prepared::default());
        }
        let source_meta = self.source.refresh_metadata(Some(source_topics)).await?;

        let mut prepared = Prepared::default();
        let mut present = Vec::new();
        for route in routes {
            match source_meta
                .topics
                .get(&route.source)
                .filter(|t| t.error.is_none())
            {
                Some(_) => present.push(route.clone()),
                None => prepared.vanished.push(route.source.clone()),
            }
        }
        let partitions_of = |topic: &str| source_meta.topics[topic].partitions.len() as i32;

        let target_meta = self
            .target
            .refresh_metadata(Some(target_topics.clone()))
            .await?;
        let mut missing = Vec::new();
        let mut grow = Vec::new();
        for route in &present {
            let wanted = partitions_of(&route.source);
            match target_meta
                .topics
                .get(&route.target)
                .filter(|t| t.error.is_none())
            {
                None => missing.push((route.source.clone(), route.target.clone(), wanted)),
                Some(existing) => {
                    let have = existing.partitions.len() as i32;
                    if have < wanted {
                        tracing::info!(flow = %self.flow, topic = %route.target, from = have, to = wanted,
                            "adding partitions to the target topic to match the source");
                        grow.push(PartitionIncrease {
                            topic: route.target.clone(),
                            from: have,
                            to: wanted,
                        });
                    } else if have > wanted {
                        tracing::warn!(flow = %self.flow, topic = %route.target, target_partitions = have, source_partitions = wanted,
                            "the target topic has more partitions than the source; partitions {wanted}..{} receive nothing", have - 1);
                    }
                }
            }
        }
        let new_topics = self.new_topics(missing.clone()).await;
        setup::create_missing_topics(&self.target, &new_topics, self.replication_factor).await?;
        if !grow.is_empty() {
            for (topic, result) in create_partitions(&self.target, &grow).await? {
                result.map_err(|source| EngineError::GrowTopic { topic, source })?;
            }
        }
        let present_targets: Vec<String> = present.iter().map(|r| r.target.clone()).collect();
        let target_meta = if missing.is_empty() && grow.is_empty() {
            target_meta
        } else {
            wait_for_partitions(&self.target, &present, &source_meta).await?
        };
        let limits = if present_targets.is_empty() {
            HashMap::new()
        } else {
            setup::max_message_bytes(&self.target, &present_targets).await?
        };

        let mut wanted_progress: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for route in &present {
            let partitions: Vec<i32> = source_meta.topics[&route.source]
                .partitions
                .keys()
                .copied()
                .filter(|p| !running.contains(&(route.source.clone(), *p)))
                .collect();
            if !partitions.is_empty() {
                wanted_progress.insert(route.target.clone(), partitions);
            }
        }
        let progress = if wanted_progress.is_empty() {
            HashMap::new()
        } else {
            setup::fetch_progress(&self.target, &self.progress_group, &wanted_progress).await?
        };

        let mut need_start: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
        for route in &present {
            for partition in wanted_progress.get(&route.target).into_iter().flatten() {
                if !progress.contains_key(&(route.target.clone(), *partition)) {
                    let leader = source_meta.topics[&route.source].partitions[partition].leader;
                    need_start
                        .entry(leader)
                        .or_default()
                        .push((route.source.clone(), *partition));
                }
            }
        }
        // Side by side: across a long link each is a round trip.
        let (starts, log_ends) = tokio::join!(
            start_offsets(&self.source, &source_meta, &need_start, start),
            self.log_ends(&source_meta, &wanted_progress, &present)
        );
        let starts = starts?;

        for route in &present {
            prepared.routes.push(PreparedRoute {
                source: route.source.clone(),
                target: route.target.clone(),
                source_id: source_meta.topics[&route.source].topic_id,
                target_id: target_meta.topics[&route.target].topic_id,
                max_batch_bytes: limits
                    .get(&route.target)
                    .copied()
                    .unwrap_or(setup::DEFAULT_MAX_MESSAGE_BYTES),
            });
            for partition in wanted_progress.get(&route.target).into_iter().flatten() {
                let start = progress
                    .get(&(route.target.clone(), *partition))
                    .copied()
                    .or_else(|| starts.get(&(route.source.clone(), *partition)).copied())
                    .unwrap_or(0);
                prepared.partitions.push(PreparedPartition {
                    source_topic: route.source.clone(),
                    partition: *partition,
                    start,
                    log_end: log_ends.get(&(route.source.clone(), *partition)).copied(),
                    source_leader: source_meta.leader(&route.source, *partition),
                    target_leader: target_meta.leader(&route.target, *partition),
                });
            }
        }
        Ok(prepared)
    }
}

impl RouteSetup {
    /// The log ends of the partitions about to start. Only an early estimate of the lag
    /// (on a long link it opens the fetch connections a backlog needs seconds before the
    /// first fetch returns), so a failure is logged and leaves the lag unknown until then.
    async fn log_ends(
        &self,
        source_meta: &MetadataSnapshot,
        wanted_progress: &BTreeMap<String, Vec<i32>>,
        present: &[TopicRoute],
    ) -> HashMap<(String, i32), i64> {
        let mut by_leader: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
        for route in present {
            for partition in wanted_progress.get(&route.target).into_iter().flatten() {
                let leader = source_meta.topics[&route.source].partitions[partition].leader;
                if leader >= 0 {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((route.source.clone(), *partition));
                }
            }
        }
        if by_leader.is_empty() {
            return HashMap::new();
        }
        setup::list_offsets(&self.source, &by_leader, -1)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(flow = %self.flow, %error,
                    "could not read the source's log ends; the lag shows once the first fetches return");
                HashMap::new()
            })
    }

    /// The topics to create with their source's configs, as MM2 creates them. A source
    /// whose configs can't be read gets only compression.type=producer (config sync, when
    /// on, copies the rest later).
    async fn new_topics(&self, missing: Vec<(String, String, i32)>) -> Vec<NewTopic> {
        let Some((filter, defaults)) = &self.new_topic_configs else {
            return missing
                .into_iter()
                .map(|(_, target, partitions)| NewTopic::plain(target, partitions))
                .collect();
        };
        let sources: Vec<String> = missing
            .iter()
            .map(|(source, _, _)| source.clone())
            .collect();
        let described = match describe_topic_configs(&self.source, &sources).await {
            Ok(described) => described,
            Err(error) => {
                tracing::warn!(flow = %self.flow, %error,
                    "could not read the source topics' configs; creating target topics with compression.type=producer only");
                Default::default()
            }
        };
        missing
            .into_iter()
            .map(
                |(source, target, partitions)| match described.get(&source) {
                    Some(Ok(entries)) => NewTopic {
                        name: target,
                        partitions,
                        configs: configs_for_new_topic(entries, filter, *defaults),
                    },
                    _ => NewTopic::plain(target, partitions),
                },
            )
            .collect()
    }
}

/// ListOffsets at the start position; a timestamp after the last record means the log end.
async fn start_offsets(
    source: &ClusterClient,
    source_meta: &MetadataSnapshot,
    need_start: &HashMap<i32, Vec<(String, i32)>>,
    start: StartPosition,
) -> Result<HashMap<(String, i32), i64>, EngineError> {
    if need_start.is_empty() {
        return Ok(HashMap::new());
    }
    let mut starts = setup::list_offsets(source, need_start, list_offsets_timestamp(start)).await?;
    let mut beyond_end: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
    for ((topic, partition), offset) in &starts {
        if setup::needs_log_end(*offset) {
            let leader = source_meta.topics[topic].partitions[partition].leader;
            beyond_end
                .entry(leader)
                .or_default()
                .push((topic.clone(), *partition));
        }
    }
    if !beyond_end.is_empty() {
        starts.extend(setup::list_offsets(source, &beyond_end, -1).await?);
    }
    Ok(starts)
}

/// Waits until the target shows a leader for every partition the source has.
async fn wait_for_partitions(
    target: &ClusterClient,
    routes: &[TopicRoute],
    source_meta: &MetadataSnapshot,
) -> Result<Arc<MetadataSnapshot>, EngineError> {
    let topics: Vec<String> = routes.iter().map(|r| r.target.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let meta = target.refresh_metadata(Some(topics.clone())).await?;
        let ready = routes.iter().all(|route| {
            let wanted = source_meta.topics[&route.source].partitions.len();
            meta.topics.get(&route.target).is_some_and(|m| {
                m.error.is_none()
                    && m.partitions.len() >= wanted
                    && m.partitions.values().all(|p| p.leader >= 0)
            })
        });
        if ready || Instant::now() > deadline {
            return Ok(meta);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

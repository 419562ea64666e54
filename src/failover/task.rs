//! The failover task beside a running flow: keeps the offset maps from the flow's
//! events, persists them on the target at each progress commit, writes MM2's offset
//! syncs, checkpoints and heartbeats, and syncs group offsets to the target.
//!
//! The maps persist in a compacted topic on the target
//! ([`super::offset_maps_topic`]), one record per source partition holding its whole
//! (bounded) map, rewritten whenever the flow commits progress for it, so a restart
//! reads them back and translation stays exact. Rebuilding from the offset syncs
//! would not do: MM2's syncs are sparse by design (`offset.lag.max`).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{interval, Interval, MissedTickBehavior};

use crate::config::{FlowConfig, GroupFilter, OffsetSyncsTopicLocation};
use crate::engine::{ClusterEndpoint, FlowEvent};
use crate::offsets::{
    Checkpoint, CheckpointStore, Heartbeat, OffsetMap, OffsetSync, TargetGroup, TopicPartition,
    DEFAULT_MAX_SEGMENTS,
};
use crate::wire::ClusterClient;

use super::error::FailoverError;
use super::groups;
use super::internal_topic::{append, ensure_compacted_topic, now_millis, read_all, KeyValue};
use super::map_key::{decode_map_key, encode_map_key, offset_maps_topic};
use super::maps::FlowMaps;

/// What the failover task of a flow does, from the flow's configuration.
#[derive(Debug, Clone)]
pub struct FailoverSettings {
    pub source_alias: String,
    pub target_alias: String,
    pub groups: GroupFilter,
    pub checkpoints: Option<Duration>,
    pub heartbeats: Option<Duration>,
    pub sync_group_offsets: bool,
    /// None: no offset syncs (`emit.offset-syncs.enabled=false`).
    pub offset_syncs: Option<(OffsetSyncsTopicLocation, String)>,
    pub offset_lag_max: u64,
    pub checkpoints_topic: String,
    pub heartbeats_topic: String,
    pub checkpoints_replication_factor: i16,
    pub heartbeats_replication_factor: i16,
    pub offset_syncs_replication_factor: i16,
    /// For strait's own offset-maps topic.
    pub replication_factor: i16,
}

impl FailoverSettings {
    pub fn from_flow(flow: &FlowConfig) -> Self {
        FailoverSettings {
            source_alias: flow.source.clone(),
            target_alias: flow.target.clone(),
            groups: flow.groups.clone(),
            checkpoints: flow.emit_checkpoints,
            heartbeats: flow.emit_heartbeats,
            sync_group_offsets: flow.sync_group_offsets.is_some(),
            offset_syncs: flow
                .emit_offset_syncs
                .then(|| (flow.offset_syncs_topic_location, flow.offset_syncs_topic())),
            offset_lag_max: flow.offset_lag_max,
            checkpoints_topic: flow.checkpoints_topic(),
            heartbeats_topic: flow.policy.heartbeats_topic().to_string(),
            checkpoints_replication_factor: flow.checkpoints_topic_replication_factor,
            heartbeats_replication_factor: flow.heartbeats_topic_replication_factor,
            offset_syncs_replication_factor: flow.offset_syncs_topic_replication_factor,
            replication_factor: if flow.replication_factor > 0 {
                flow.replication_factor
            } else {
                -1
            },
        }
    }
}

fn client(endpoint: &ClusterEndpoint) -> ClusterClient {
    ClusterClient::new(
        &endpoint.alias,
        endpoint.bootstrap.clone(),
        endpoint.connection.clone(),
    )
}

/// A replication factor the cluster can honour: MM2's default of 3 on a smaller
/// cluster becomes the cluster's size.
async fn feasible_replication(client: &ClusterClient, wanted: i16) -> Result<i16, FailoverError> {
    if wanted <= 0 {
        return Ok(-1);
    }
    let brokers = client
        .refresh_metadata(Some(Vec::new()))
        .await?
        .brokers
        .len();
    let brokers = i16::try_from(brokers).unwrap_or(i16::MAX).max(1);
    if wanted > brokers {
        tracing::warn!(
            cluster = client.name(),
            wanted,
            brokers,
            "internal topic replication factor exceeds the cluster's brokers; using {brokers}"
        );
    }
    Ok(wanted.min(brokers))
}

/// Reads the persisted offset maps of the flows from `source_alias`.
pub async fn load_maps(
    target: &ClusterClient,
    source_alias: &str,
) -> Result<Vec<(TopicPartition, OffsetMap)>, FailoverError> {
    let topic = offset_maps_topic(source_alias);
    let mut latest = std::collections::BTreeMap::new();
    for record in read_all(target, &topic).await? {
        let Some(partition) = decode_map_key(&record.key) else {
            continue;
        };
        match record.value {
            None => {
                latest.remove(&partition);
            }
            Some(value) => {
                latest.insert(partition, value);
            }
        }
    }
    latest
        .into_iter()
        .map(|(partition, value)| {
            let map = OffsetMap::decode(&value, DEFAULT_MAX_SEGMENTS).map_err(|source| {
                FailoverError::OffsetMap {
                    cluster: target.name().to_string(),
                    topic: topic.clone(),
                    partition: format!("{}-{}", partition.topic, partition.partition),
                    source,
                }
            })?;
            Ok((partition, map))
        })
        .collect()
}

/// How long one step of the task (a write, listing groups, one group's checkpoint)
/// may take. Each request has its own timeout, but a step that stalls anyway would
/// hold up everything behind it: the offset maps, the other groups, the flow's stop.
/// Every map write carries a partition's whole map, so all but the newest per key are
/// garbage; with the broker's default week-long segments a quiet flow's topic would never
/// be compacted and each start would read its whole history.
const OFFSET_MAPS_TOPIC_CONFIGS: &[(&str, &str)] = &[("segment.ms", "3600000")];

const STEP_LIMIT: Duration = Duration::from_secs(30);

/// `step`, or [`FailoverError::Stalled`] once it has taken `limit`.
async fn bounded<T>(
    limit: Duration,
    what: impl Fn() -> String,
    step: impl Future<Output = Result<T, FailoverError>>,
) -> Result<T, FailoverError> {
    tokio::time::timeout(limit, step).await.unwrap_or_else(|_| {
        Err(FailoverError::Stalled {
            step: what(),
            after: limit,
        })
    })
}

/// The failover task of one flow.
pub struct FailoverTask {
    settings: FailoverSettings,
    source: ClusterClient,
    target: ClusterClient,
    maps: FlowMaps,
    checkpoints: CheckpointStore,
    pending_maps: Vec<KeyValue>,
    pending_syncs: Vec<OffsetSync>,
}

impl FailoverTask {
    /// Creates the internal topics and reads the persisted maps back; `remote_topic`
    /// names a source topic on the target.
    pub async fn prepare(
        settings: FailoverSettings,
        source: &ClusterEndpoint,
        target: &ClusterEndpoint,
        remote_topic: impl Fn(&str) -> String,
    ) -> Result<FailoverTask, FailoverError> {
        let source = client(source);
        let target = client(target);
        let factor = feasible_replication(&target, settings.replication_factor).await?;
        ensure_compacted_topic(
            &target,
            &offset_maps_topic(&settings.source_alias),
            factor,
            OFFSET_MAPS_TOPIC_CONFIGS,
        )
        .await?;
        if settings.checkpoints.is_some() {
            let factor =
                feasible_replication(&target, settings.checkpoints_replication_factor).await?;
            ensure_compacted_topic(&target, &settings.checkpoints_topic, factor, &[]).await?;
        }
        if settings.heartbeats.is_some() {
            let factor =
                feasible_replication(&target, settings.heartbeats_replication_factor).await?;
            ensure_compacted_topic(&target, &settings.heartbeats_topic, factor, &[]).await?;
        }
        if let Some((location, topic)) = &settings.offset_syncs {
            let cluster = match location {
                OffsetSyncsTopicLocation::Source => &source,
                OffsetSyncsTopicLocation::Target => &target,
            };
            let factor =
                feasible_replication(cluster, settings.offset_syncs_replication_factor).await?;
            ensure_compacted_topic(cluster, topic, factor, &[]).await?;
        }
        let mut maps = FlowMaps::new(settings.offset_lag_max);
        for (partition, map) in load_maps(&target, &settings.source_alias).await? {
            let remote = remote_topic(&partition.topic);
            maps.load(partition, remote, map);
        }
        let mut checkpoints = CheckpointStore::new();
        if settings.checkpoints.is_some() {
            // As MM2: the latest checkpoints written before, so a restart goes on
            // from them rather than from nothing.
            for record in read_all(&target, &settings.checkpoints_topic).await? {
                let Some(value) = record.value else { continue };
                match Checkpoint::decode(&record.key, &value) {
                    Ok(checkpoint) => checkpoints.load(checkpoint),
                    Err(error) => tracing::warn!(topic = %settings.checkpoints_topic, %error,
                        "skipping a record of the checkpoints topic that is not an MM2 checkpoint"),
                }
            }
        }
        Ok(FailoverTask {
            settings,
            source,
            target,
            maps,
            checkpoints,
            pending_maps: Vec::new(),
            pending_syncs: Vec::new(),
        })
    }

    /// Runs until the flow's events end: the flow stopped, after its last commit.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<FlowEvent>) {
        let mut checkpoint_timer = self.settings.checkpoints.map(ticker);
        let mut heartbeat_timer = self.settings.heartbeats.map(ticker);
        let flow = format!(
            "{}->{}",
            self.settings.source_alias, self.settings.target_alias
        );
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    self.on_event(event);
                    while let Ok(event) = events.try_recv() {
                        self.on_event(event);
                    }
                    if let Err(error) = bounded(STEP_LIMIT, || "writing offset syncs and maps".into(), self.flush()).await {
                        tracing::warn!(flow = %flow, %error, "could not write offset syncs or offset maps; retrying at the next commit");
                    }
                }
                _ = tick(&mut checkpoint_timer) => {
                    if let Err(error) = self.emit_checkpoints().await {
                        tracing::warn!(flow = %flow, %error, "checkpoints failed; retrying at the next interval");
                    }
                }
                _ = tick(&mut heartbeat_timer) => {
                    if let Err(error) = bounded(STEP_LIMIT, || "a heartbeat".into(), self.emit_heartbeat()).await {
                        tracing::warn!(flow = %flow, %error, "heartbeat failed");
                    }
                }
            }
        }
        // The flow's final progress commit came as events above; what a failed write
        // left pending gets one more try.
        if let Err(error) = bounded(
            STEP_LIMIT,
            || "writing the last offset maps".into(),
            self.flush(),
        )
        .await
        {
            tracing::warn!(flow = %flow, %error, "could not write the last offset maps");
        }
    }

    fn on_event(&mut self, event: FlowEvent) {
        match event {
            FlowEvent::Mapped {
                source_topic,
                target_topic,
                partition,
                batches,
            } => {
                let partition = TopicPartition {
                    topic: source_topic.to_string(),
                    partition,
                };
                let syncs = self.maps.on_mapped(&partition, &target_topic, &batches);
                if self.settings.offset_syncs.is_some() {
                    self.pending_syncs.extend(syncs);
                }
            }
            FlowEvent::Committed {
                source_topic,
                partition,
                ..
            } => {
                let partition = TopicPartition {
                    topic: source_topic.to_string(),
                    partition,
                };
                self.on_committed(&partition);
            }
        }
    }

    /// Queues the partition's map and held-back offset sync for writing.
    fn on_committed(&mut self, partition: &TopicPartition) {
        let (map, sync) = self.maps.on_committed(partition);
        if let Some(map) = map {
            self.pending_maps.push(KeyValue {
                key: Bytes::from(encode_map_key(partition)),
                value: Some(Bytes::from(map)),
            });
        }
        if self.settings.offset_syncs.is_some() {
            self.pending_syncs.extend(sync);
        }
    }

    async fn flush(&mut self) -> Result<(), FailoverError> {
        if let Some((location, topic)) = &self.settings.offset_syncs {
            if !self.pending_syncs.is_empty() {
                let records = self
                    .pending_syncs
                    .iter()
                    .map(|sync| {
                        Ok(KeyValue {
                            key: Bytes::from(sync.encode_key().map_err(|source| {
                                FailoverError::Mm2Record {
                                    cluster: self.source.name().to_string(),
                                    topic: topic.clone(),
                                    source,
                                }
                            })?),
                            value: Some(Bytes::from(sync.encode_value())),
                        })
                    })
                    .collect::<Result<Vec<_>, FailoverError>>()?;
                let cluster = match location {
                    OffsetSyncsTopicLocation::Source => &self.source,
                    OffsetSyncsTopicLocation::Target => &self.target,
                };
                append(cluster, topic, &records).await?;
                self.pending_syncs.clear();
            }
        }
        if !self.pending_maps.is_empty() {
            let topic = offset_maps_topic(&self.settings.source_alias);
            append(&self.target, &topic, &self.pending_maps).await?;
            self.pending_maps.clear();
        }
        Ok(())
    }

    async fn emit_checkpoints(&mut self) -> Result<(), FailoverError> {
        let mut groups = bounded(
            STEP_LIMIT,
            || "listing the source's groups".into(),
            groups::list_consumer_groups(&self.source),
        )
        .await?;
        groups.retain(|g| self.settings.groups.should_replicate(g));
        for group in &groups {
            // One group the brokers refuse or stall on (no ACL, being deleted,
            // coordinator moving) must not hold back the groups after it.
            let step = bounded(
                STEP_LIMIT,
                || format!("checkpointing group {group}"),
                self.checkpoint_group(group),
            );
            if let Err(error) = step.await {
                tracing::warn!(%group, %error, "no checkpoint for this group this time; retrying at the next interval");
            }
        }
        Ok(())
    }

    async fn checkpoint_group(&mut self, group: &str) -> Result<(), FailoverError> {
        let committed = groups::committed_offsets(&self.source, group).await?;
        let maps = &self.maps;
        let checkpoints = self
            .checkpoints
            .checkpoints_for_group(group, &committed, |p| maps.mirrored(p));
        self.write_checkpoints(&checkpoints).await?;
        for checkpoint in checkpoints {
            self.checkpoints.load(checkpoint);
        }
        if self.settings.sync_group_offsets {
            self.sync_group(group).await?;
        }
        Ok(())
    }

    async fn write_checkpoints(&self, checkpoints: &[Checkpoint]) -> Result<(), FailoverError> {
        let topic = &self.settings.checkpoints_topic;
        let records = checkpoints
            .iter()
            .map(|checkpoint| {
                let mm2_error = |source| FailoverError::Mm2Record {
                    cluster: self.target.name().to_string(),
                    topic: topic.clone(),
                    source,
                };
                Ok(KeyValue {
                    key: Bytes::from(checkpoint.encode_key().map_err(mm2_error)?),
                    value: Some(Bytes::from(checkpoint.encode_value().map_err(mm2_error)?)),
                })
            })
            .collect::<Result<Vec<_>, FailoverError>>()?;
        append(&self.target, topic, &records).await
    }

    async fn sync_group(&self, group: &str) -> Result<(), FailoverError> {
        // Most groups of a source never read this flow's topics: asking the target
        // about each of them every interval would grow each round with every group
        // the source has.
        if self.checkpoints.latest(group).next().is_none() {
            return Ok(());
        }
        if groups::has_active_members(&self.target, group).await? {
            return Ok(());
        }
        let committed = groups::committed_map(&self.target, group).await?;
        let offsets = self.checkpoints.offsets_to_sync(
            group,
            TargetGroup::Inactive {
                committed: &committed,
            },
        );
        match groups::commit_offsets(&self.target, group, &offsets).await {
            // A consumer joined between the two calls: its offsets win.
            Err(FailoverError::GroupActive { .. }) => Ok(()),
            other => other,
        }
    }

    async fn emit_heartbeat(&self) -> Result<(), FailoverError> {
        let heartbeat = Heartbeat {
            source_cluster_alias: self.settings.source_alias.clone(),
            target_cluster_alias: self.settings.target_alias.clone(),
            timestamp: now_millis(),
        };
        let topic = &self.settings.heartbeats_topic;
        let key = heartbeat
            .encode_key()
            .map_err(|source| FailoverError::Mm2Record {
                cluster: self.target.name().to_string(),
                topic: topic.clone(),
                source,
            })?;
        let record = KeyValue {
            key: Bytes::from(key),
            value: Some(Bytes::from(heartbeat.encode_value())),
        };
        append(&self.target, topic, &[record]).await
    }
}

fn ticker(period: Duration) -> Interval {
    let mut timer = interval(period.max(Duration::from_millis(100)));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer
}

async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stalled_step_is_abandoned_and_named() {
        let stalled = bounded(
            Duration::from_millis(10),
            || "checkpointing group g".into(),
            std::future::pending::<Result<(), FailoverError>>(),
        )
        .await;
        assert!(
            matches!(&stalled, Err(FailoverError::Stalled { step, .. }) if step == "checkpointing group g"),
            "{stalled:?}"
        );
        let finished = bounded(Duration::from_secs(60), String::new, async { Ok(7) }).await;
        assert_eq!(finished.unwrap(), 7);
    }
}

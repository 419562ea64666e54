//! The per-flow task that keeps remote topics in step with their source topics while a
//! flow runs: topic configs every `sync.topic.configs.interval.seconds` (and at once
//! for a topic that starts mirroring), topic ACLs every `sync.topic.acls.interval.seconds`.
//! A failure is logged with its fix and tried again at the next round; it never stops
//! the flow.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use crate::config::FlowConfig;
use crate::engine::RouteInfo;
use crate::wire::ClusterClient;

use super::acl_sync::{missing_acls, target_acls, TopicAcl};
use super::admin::{
    alter_topic_configs, create_topic_acls, describe_topic_acls, describe_topic_configs,
    AclOutcome, PerTopic,
};
use super::config_sync::{plan_config_sync, ConfigOp, TopicConfigEntry};
use super::error::TopologyError;

/// The routes seen for the first time in `now`, compared with `known`.
pub fn new_routes(known: &HashSet<String>, now: &[RouteInfo]) -> Vec<RouteInfo> {
    now.iter()
        .filter(|route| !known.contains(&route.source))
        .cloned()
        .collect()
}

/// What one config-sync round does: the operations per target topic, and the topics it
/// could not plan (their source or target configs could not be read).
#[derive(Debug, Default)]
pub struct ConfigRound {
    pub changes: Vec<(String, Vec<ConfigOp>)>,
    pub failures: Vec<TopologyError>,
}

/// Plans a config-sync round for `routes` from the described configs of both sides.
pub fn plan_config_round(
    flow: &FlowConfig,
    routes: &[RouteInfo],
    mut source: PerTopic<Vec<TopicConfigEntry>>,
    mut target: PerTopic<Vec<TopicConfigEntry>>,
) -> ConfigRound {
    let mut round = ConfigRound::default();
    for route in routes {
        let source_entries = source.remove(&route.source);
        let target_entries = target.remove(&route.target);
        match (source_entries, target_entries) {
            (Some(Ok(source_entries)), Some(Ok(target_entries))) => {
                let plan = plan_config_sync(
                    &source_entries,
                    &target_entries,
                    &flow.config_properties,
                    flow.topic_config_defaults,
                );
                if !plan.ops.is_empty() {
                    round.changes.push((route.target.clone(), plan.ops));
                }
            }
            (source_entries, target_entries) => {
                round.failures.extend(
                    [source_entries, target_entries]
                        .into_iter()
                        .flatten()
                        .filter_map(Result::err),
                );
            }
        }
    }
    round
}

/// The ACLs to create on the target: those `flow` derives from the source's ACLs on the
/// topics it mirrors (`routes`), less those the target has.
pub fn acls_to_create(
    flow: &FlowConfig,
    routes: &[RouteInfo],
    source_acls: &[TopicAcl],
    target_acls_now: &[TopicAcl],
) -> Vec<TopicAcl> {
    let mirrored: HashSet<&str> = routes.iter().map(|r| r.source.as_str()).collect();
    let of_mirrored: Vec<TopicAcl> = source_acls
        .iter()
        .filter(|acl| mirrored.contains(acl.topic.as_str()))
        .cloned()
        .collect();
    missing_acls(&target_acls(flow, &of_mirrored), target_acls_now)
}

fn describe(op: &ConfigOp) -> String {
    match op {
        ConfigOp::Set { name, value } => format!("{name}={value}"),
        ConfigOp::Delete { name } => format!("{name} (back to the target's default)"),
    }
}

/// Keeps one flow's remote topics in step with their sources.
pub struct TopologySync {
    flow: FlowConfig,
    source: ClusterClient,
    target: ClusterClient,
    routes: watch::Receiver<Vec<RouteInfo>>,
    /// Clusters already reported as having no authorizer (reported once).
    without_authorizer: BTreeSet<String>,
}

impl TopologySync {
    pub fn new(
        flow: FlowConfig,
        source: ClusterClient,
        target: ClusterClient,
        routes: watch::Receiver<Vec<RouteInfo>>,
    ) -> Self {
        TopologySync {
            flow,
            source,
            target,
            routes,
            without_authorizer: BTreeSet::new(),
        }
    }

    /// Whether the flow has anything for this task to do.
    pub fn enabled(&self) -> bool {
        self.flow.sync_topic_configs.is_some() || self.flow.sync_topic_acls.is_some()
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut configs = self.flow.sync_topic_configs.map(ticker);
        let mut acls = self.flow.sync_topic_acls.map(ticker);
        // The first config round (at once) covers the topics mirrored from the start.
        let mut known: HashSet<String> = self
            .routes
            .borrow_and_update()
            .iter()
            .map(|r| r.source.clone())
            .collect();
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { return; }
                }
                _ = tick(&mut configs) => {
                    let routes = self.routes.borrow().clone();
                    self.sync_configs(&routes).await;
                }
                _ = tick(&mut acls) => {
                    let routes = self.routes.borrow().clone();
                    self.sync_acls(&routes).await;
                }
                changed = self.routes.changed() => {
                    if changed.is_err() {
                        // The flow has ended; so has its topology.
                        return;
                    }
                    let routes = self.routes.borrow_and_update().clone();
                    let fresh = new_routes(&known, &routes);
                    known = routes.iter().map(|r| r.source.clone()).collect();
                    // A topic that starts mirroring takes its source's configs now rather
                    // than at the next round (the flow created it with compression only).
                    if configs.is_some() && !fresh.is_empty() {
                        self.sync_configs(&fresh).await;
                    }
                }
            }
        }
    }

    async fn sync_configs(&self, routes: &[RouteInfo]) {
        if routes.is_empty() {
            return;
        }
        let flow = self.flow.name();
        let sources: Vec<String> = routes.iter().map(|r| r.source.clone()).collect();
        let targets: Vec<String> = routes.iter().map(|r| r.target.clone()).collect();
        let described = tokio::join!(
            describe_topic_configs(&self.source, &sources),
            describe_topic_configs(&self.target, &targets)
        );
        let (source, target) = match described {
            (Ok(source), Ok(target)) => (source, target),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(flow = %flow, "topic config sync: {error}");
                return;
            }
        };
        let round = plan_config_round(&self.flow, routes, source, target);
        for error in &round.failures {
            tracing::warn!(flow = %flow, "topic config sync: {error}");
        }
        if round.changes.is_empty() {
            return;
        }
        match alter_topic_configs(&self.target, &round.changes).await {
            Err(error) => tracing::warn!(flow = %flow, "topic config sync: {error}"),
            Ok(results) => {
                for (topic, ops) in &round.changes {
                    match results.get(topic) {
                        Some(Err(error)) => {
                            tracing::warn!(flow = %flow, "topic config sync: {error}")
                        }
                        _ => {
                            let changed: Vec<String> = ops.iter().map(describe).collect();
                            tracing::info!(flow = %flow, topic = %topic,
                                "target topic configs updated from the source: {}", changed.join(", "));
                        }
                    }
                }
            }
        }
    }

    async fn sync_acls(&mut self, routes: &[RouteInfo]) {
        if routes.is_empty() {
            return;
        }
        let Some(source_acls) = self.read_acls(self.source.clone()).await else {
            return;
        };
        let Some(target_now) = self.read_acls(self.target.clone()).await else {
            return;
        };
        let wanted = acls_to_create(&self.flow, routes, &source_acls, &target_now);
        if wanted.is_empty() {
            return;
        }
        match create_topic_acls(&self.target, &wanted).await {
            Ok(AclOutcome::Done(())) => {
                for acl in &wanted {
                    tracing::info!(flow = %self.flow.name(), "ACL created on the target: {acl}");
                }
            }
            Ok(AclOutcome::NoAuthorizer) => self.no_authorizer(self.target.name().to_string()),
            Err(error) => tracing::warn!(flow = %self.flow.name(), "topic ACL sync: {error}"),
        }
    }

    /// The cluster's literal topic ACLs; None when there are none to sync (no
    /// authorizer, or the call failed and was logged).
    async fn read_acls(&mut self, cluster: ClusterClient) -> Option<Vec<TopicAcl>> {
        match describe_topic_acls(&cluster).await {
            Ok(AclOutcome::Done(acls)) => Some(acls),
            Ok(AclOutcome::NoAuthorizer) => {
                self.no_authorizer(cluster.name().to_string());
                None
            }
            Err(error) => {
                tracing::warn!(flow = %self.flow.name(), "topic ACL sync: {error}");
                None
            }
        }
    }

    fn no_authorizer(&mut self, cluster: String) {
        if self.without_authorizer.insert(cluster.clone()) {
            tracing::info!(flow = %self.flow.name(),
                "cluster {cluster} has no authorizer: topic ACL sync skipped (set sync.topic.acls.enabled = false to silence this)");
        }
    }
}

fn ticker(period: Duration) -> Interval {
    let mut ticks = interval_at(Instant::now(), period.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// The next tick of `ticks`, or never when the sync is off.
async fn tick(ticks: &mut Option<Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::acl_sync::{AclOperation, AclPermission};
    use crate::topology::config_sync::ConfigSource;
    use crate::topology::test_fixtures::{entry, flow};
    use kafka_protocol::error::ResponseError;

    fn route(source: &str) -> RouteInfo {
        RouteInfo {
            source: source.to_string(),
            target: format!("A.{source}"),
            partitions: 1,
        }
    }

    #[test]
    fn only_routes_not_seen_before_are_new() {
        let known: HashSet<String> = ["orders".to_string()].into();
        let fresh = new_routes(&known, &[route("orders"), route("payments")]);
        assert_eq!(fresh, vec![route("payments")]);
    }

    #[test]
    fn a_round_changes_only_topics_out_of_step_and_reports_unreadable_ones() {
        let flow = flow("");
        let routes = [route("orders"), route("same"), route("gone")];
        let source: PerTopic<Vec<TopicConfigEntry>> = [
            (
                "orders".to_string(),
                Ok(vec![entry(
                    "retention.ms",
                    "1000",
                    ConfigSource::DynamicTopic,
                )]),
            ),
            (
                "same".to_string(),
                Ok(vec![entry("retention.ms", "5", ConfigSource::DynamicTopic)]),
            ),
            (
                "gone".to_string(),
                Err(TopologyError::DescribeConfigs {
                    cluster: "A".into(),
                    topic: "gone".into(),
                    code: ResponseError::UnknownTopicOrPartition,
                    message: None,
                }),
            ),
        ]
        .into();
        let target: PerTopic<Vec<TopicConfigEntry>> = [
            (
                "A.orders".to_string(),
                Ok(vec![entry(
                    "retention.ms",
                    "604800000",
                    ConfigSource::Default,
                )]),
            ),
            (
                "A.same".to_string(),
                Ok(vec![entry("retention.ms", "5", ConfigSource::DynamicTopic)]),
            ),
            ("A.gone".to_string(), Ok(vec![])),
        ]
        .into();
        let round = plan_config_round(&flow, &routes, source, target);
        assert_eq!(
            round.changes,
            vec![(
                "A.orders".to_string(),
                vec![ConfigOp::Set {
                    name: "retention.ms".into(),
                    value: "1000".into()
                }]
            )]
        );
        assert_eq!(round.failures.len(), 1);
        assert!(round.failures[0].to_string().contains("topic gone"));
    }

    fn acl(topic: &str, operation: AclOperation) -> TopicAcl {
        TopicAcl {
            topic: topic.to_string(),
            principal: "User:alice".to_string(),
            host: "*".to_string(),
            operation,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn acls_of_mirrored_topics_missing_on_the_target_are_created() {
        let flow = flow("");
        let source = [
            acl("orders", AclOperation::Read),
            acl("orders", AclOperation::Describe),
            acl("not-mirrored-yet", AclOperation::Read),
        ];
        let target = [acl("A.orders", AclOperation::Describe)];
        assert_eq!(
            acls_to_create(&flow, &[route("orders")], &source, &target),
            vec![acl("A.orders", AclOperation::Read)]
        );
    }
}

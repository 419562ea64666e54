//! What a flow runner needs to know, independent of how it was configured.

use std::sync::Arc;
use std::time::Duration;

pub use crate::config::StartPosition;
use crate::config::{ConfigPropertyFilter, TopicConfigDefaults};
use crate::wire::ConnectionConfig;

/// The ListOffsets timestamp that asks for a start position.
pub fn list_offsets_timestamp(start: StartPosition) -> i64 {
    match start {
        StartPosition::Earliest => -2,
        StartPosition::Latest => -1,
        StartPosition::Timestamp(ms) => ms,
    }
}

#[derive(Debug, Clone)]
pub struct ClusterEndpoint {
    pub alias: String,
    pub bootstrap: Vec<String>,
    pub connection: ConnectionConfig,
}

/// One source topic to mirror and its name on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRoute {
    pub source: String,
    pub target: String,
}

/// Chooses the topics to mirror from the source's topics and partition counts.
pub type TopicSelector = Arc<dyn Fn(&[(String, i32)]) -> Vec<TopicRoute> + Send + Sync>;

/// Finding new source topics (and partitions) while running.
#[derive(Clone)]
pub struct Discovery {
    pub interval: Duration,
    pub select: TopicSelector,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub source: ClusterEndpoint,
    pub target: ClusterEndpoint,
    pub topics: Vec<TopicRoute>,
    pub start: StartPosition,
    /// Fetched bytes not yet acknowledged by the target, over all partitions; None:
    /// chosen by the link (see `lanes::memory_budget`).
    pub memory_budget: Option<usize>,
    pub partition_fetch_bytes: usize,
    pub fetch_max_wait: Duration,
    pub produce_timeout: Duration,
    /// Per target broker connection.
    pub max_produce_requests_per_connection: usize,
    /// Produce connections per target broker, each carrying a fixed share of the
    /// partitions; None: as many as the path to the target needs (see
    /// `target_path::produce_connections`).
    pub produce_connections: Option<u16>,
    /// Fetch connections per source broker; None: as many as the measured link needs.
    pub fetch_connections: Option<u16>,
    pub status_interval: Duration,
    pub commit_interval: Duration,
    /// Replication factor of topics strait creates on the target; None: the broker's default.
    pub replication_factor: Option<i16>,
    /// None: mirror `topics` only.
    pub discovery: Option<Discovery>,
    /// Which source configs new target topics take; None: only compression.type=producer.
    pub new_topic_configs: Option<(ConfigPropertyFilter, TopicConfigDefaults)>,
}

impl FlowSpec {
    pub fn name(&self) -> String {
        format!("{}->{}", self.source.alias, self.target.alias)
    }

    /// The consumer group on the target that holds this flow's progress: one offset
    /// per target partition, whose value is the next source offset to copy.
    pub fn progress_group(&self) -> String {
        format!("strait.{}->{}", self.source.alias, self.target.alias)
    }

    pub fn defaults(
        source: ClusterEndpoint,
        target: ClusterEndpoint,
        topics: Vec<TopicRoute>,
    ) -> Self {
        FlowSpec {
            source,
            target,
            topics,
            start: StartPosition::Earliest,
            memory_budget: None,
            partition_fetch_bytes: 1024 * 1024,
            fetch_max_wait: Duration::from_millis(500),
            produce_timeout: Duration::from_secs(30),
            max_produce_requests_per_connection: 5,
            produce_connections: None,
            fetch_connections: None,
            status_interval: Duration::from_secs(10),
            commit_interval: Duration::from_secs(5),
            replication_factor: None,
            discovery: None,
            new_topic_configs: None,
        }
    }
}

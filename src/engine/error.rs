//! Errors that stop a flow (as opposed to one partition).

use kafka_protocol::error::ResponseError;

use crate::topology::TopologyError;
use crate::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Wire(WireError),
    #[error("cluster {cluster}: could not create topic {topic}: {error:?} {message} — create it by hand with the source's partition count, or grant strait CREATE on the target")]
    CreateTopic {
        cluster: String,
        topic: String,
        error: ResponseError,
        message: String,
    },
    #[error("cluster {cluster}: could not read the configs of topic {topic}: {error:?} — grant strait DESCRIBE_CONFIGS on the target topic")]
    DescribeConfigs {
        cluster: String,
        topic: String,
        error: ResponseError,
    },
    #[error("cluster {cluster}: InitProducerId failed: {source} — strait writes as an idempotent producer and needs IDEMPOTENT_WRITE on the target cluster")]
    InitProducerId {
        cluster: String,
        #[source]
        source: WireError,
    },
    #[error("progress group {group}: {source} — strait keeps its progress as offsets of this group on the target; it needs READ on the group")]
    Progress {
        group: String,
        #[source]
        source: WireError,
    },
    #[error("cluster {cluster}: ListOffsets for {topic}-{partition} failed: {error:?}")]
    ListOffsets {
        cluster: String,
        topic: String,
        partition: i32,
        error: ResponseError,
    },
    #[error("cluster {cluster}: DescribeLogDirs on broker {broker} failed: {error:?} — grant strait DESCRIBE on the cluster to let it read partitions ahead from the first second")]
    LogDirs {
        cluster: String,
        broker: i32,
        error: ResponseError,
    },
    #[error("source topic {topic} is not on cluster {cluster} — check the flow's topics setting")]
    MissingSourceTopic { cluster: String, topic: String },
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("could not add partitions to target topic {topic}: {source}")]
    GrowTopic {
        topic: String,
        #[source]
        source: TopologyError,
    },
}

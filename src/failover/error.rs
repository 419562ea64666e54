//! Errors of the failover tasks and commands.

use std::time::Duration;

use kafka_protocol::error::ResponseError;

use crate::batch::BatchError;
use crate::offsets::{ConnectOffsetError, Mm2RecordError, OffsetMapDecodeError};
use crate::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("cluster {cluster}: could not create internal topic {topic}: {error:?} {message} — create it by hand (1 partition, cleanup.policy=compact) or grant strait CREATE on the cluster")]
    CreateTopic {
        cluster: String,
        topic: String,
        error: ResponseError,
        message: String,
    },
    #[error("cluster {cluster}: topic {topic} has no leader for partition {partition} — is the topic there and the cluster healthy?")]
    NoLeader {
        cluster: String,
        topic: String,
        partition: i32,
    },
    #[error("cluster {cluster}: {operation} on {subject} failed: {error:?} — check strait's ACLs on the cluster")]
    Broker {
        cluster: String,
        operation: &'static str,
        subject: String,
        error: ResponseError,
    },
    #[error("cluster {cluster}: a batch of topic {topic} is unreadable: {source}")]
    Batch {
        cluster: String,
        topic: String,
        #[source]
        source: BatchError,
    },
    #[error("cluster {cluster}: a record of internal topic {topic} is not in MM2's format: {source} — is another tool writing to it?")]
    Mm2Record {
        cluster: String,
        topic: String,
        #[source]
        source: Mm2RecordError,
    },
    #[error("cluster {cluster}: a record of MM2's offsets topic {topic} is unreadable: {source}")]
    ConnectOffset {
        cluster: String,
        topic: String,
        #[source]
        source: ConnectOffsetError,
    },
    #[error("cluster {cluster}: the offset map of {partition} in {topic} is unreadable: {source} — delete that key from the topic to rebuild it from new traffic")]
    OffsetMap {
        cluster: String,
        topic: String,
        partition: String,
        #[source]
        source: OffsetMapDecodeError,
    },
    #[error("group {group} has active members on cluster {cluster}: stop its consumers there before committing offsets")]
    GroupActive { cluster: String, group: String },
    #[error("{step} did not finish within {after:?} and was abandoned — are the clusters overloaded or unreachable?")]
    Stalled { step: String, after: Duration },
}

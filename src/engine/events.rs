//! What a running flow tells the tasks beside it (offset translation, topic config and
//! ACL sync).

use std::sync::Arc;

use super::partition::MappedBatch;

/// A topic being mirrored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub source: String,
    pub target: String,
    pub partitions: i32,
}

#[derive(Debug, Clone)]
pub enum FlowEvent {
    /// Batches of one partition landed on the target, in source order, each after all
    /// batches before it.
    Mapped {
        source_topic: Arc<str>,
        target_topic: Arc<str>,
        partition: i32,
        batches: Vec<MappedBatch>,
    },
    /// The flow's progress for these partitions is committed on the target: a restart
    /// resumes at `next_source_offset`.
    Committed {
        source_topic: Arc<str>,
        partition: i32,
        next_source_offset: i64,
    },
}

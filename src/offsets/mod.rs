//! Consumer offsets across the mirror: the exact source-to-target offset map of each
//! mirrored partition, and MM2's formats and rules built on it (offset syncs,
//! checkpoints, group offset sync, heartbeats, MM2's own progress). Pure: no I/O.

mod checkpoint;
mod connect_offsets;
mod error;
mod map;
mod map_codec;
mod mm2_records;
mod sync_policy;

#[cfg(test)]
mod test_fixtures;

pub use checkpoint::{
    CheckpointStore, CommittedOffset, GroupOffset, MirroredPartition, TargetGroup,
};
pub use connect_offsets::{Mm2SourceOffset, MIRROR_SOURCE_CONNECTOR};
pub use error::{ConnectOffsetError, Mm2RecordError, OffsetMapDecodeError, OffsetMapError};
pub use map::{OffsetMap, Run, Translation, DEFAULT_MAX_SEGMENTS};
pub use mm2_records::{Checkpoint, Heartbeat, OffsetSync};
pub use sync_policy::{OffsetSyncPolicy, SyncPoint};

/// A partition of a topic, on whichever cluster the context says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

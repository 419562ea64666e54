//! Keeping remote topics in step with their source topics, as MM2's
//! `MirrorSourceConnector` does: topic configurations, partition counts and topic ACLs.
//!
//! Pure (no I/O): `config_sync` (which configurations to set or remove on a remote
//! topic), `acl_sync` (which ACLs to recreate, renamed), `partitions` (which partition
//! counts to raise). Driver: `admin` (DescribeConfigs, IncrementalAlterConfigs,
//! CreatePartitions, DescribeAcls, CreateAcls on a cluster); `task` (the per-flow sync
//! loop beside a running flow); `preview` (what sync would change, for `strait check`).

pub mod acl_sync;
pub mod admin;
pub mod config_sync;
mod error;
pub mod partitions;
pub mod preview;
pub mod task;
#[cfg(test)]
mod test_fixtures;

pub use acl_sync::{missing_acls, target_acls, AclOperation, AclPermission, TopicAcl};
pub use admin::{
    alter_topic_configs, create_partitions, create_topic_acls, describe_topic_acls,
    describe_topic_configs, AclOutcome, PerTopic,
};
pub use config_sync::{
    configs_for_new_topic, plan_config_sync, ConfigOp, ConfigSource, ConfigSyncPlan, NotCopied,
    TopicConfigEntry,
};
pub use error::{AdminCall, TopologyError};
pub use partitions::{partition_increases, PartitionIncrease, PartitionSync};
pub use preview::{preview_sync, SyncPreview};
pub use task::TopologySync;

//! Test harness shared by the integration tests (`mod common;`): real Kafka clusters
//! from `testbed/testbed`, and librdkafka (the `rdkafka` crate) or Kafka's own CLI as
//! the independent client that writes and checks data.
// Every test binary compiles this module and uses only part of it.
#![allow(dead_code, unused_imports)]

mod admin;
mod cluster;
mod consume;
mod kafka_cli;
mod produce;
mod records;
mod strait;

pub use admin::{
    create_topic, create_topic_with_replication, delete_topic, stop_log_cleaner, unique_topic,
    COMPACTED_AT_ONCE,
};
pub use cluster::{kafka_tool, testbed, Cluster};
pub use consume::{
    end_offsets, partition_count, read_topic, read_topic_with, start_offsets, topic_exists,
    try_end_offsets, Isolation,
};
pub use kafka_cli::read_topic_with_console_consumer;
pub use produce::{
    produce, produce_transactions, Compression, ProduceOptions, TxnOutcome, TxnStep,
};
pub use rdkafka::message::Timestamp;
pub use records::{
    assert_same_records, base_timestamp, counts_per_partition, first_difference, sort_records,
    spread_records, Compare, Header, NewRecord, Record,
};
pub use strait::{strait_command, unique_alias, FlowFile, Strait};

//! Reading a whole topic back with librdkafka.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::cluster::Cluster;
use super::records::{sort_records, Record};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
// A guard against hanging on a broken cluster, far above any honest read.
const READ_LIMIT: Duration = Duration::from_secs(180);

/// Which records of transactions a reader sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Committed transactions and non-transactional records only.
    ReadCommitted,
    /// Everything, aborted transactions included.
    ReadUncommitted,
}

/// Every committed record of the topic, up to each partition's high watermark at the
/// time of the call, sorted by partition and offset.
pub fn read_topic(cluster: Cluster, topic: &str) -> Vec<Record> {
    read_topic_with(cluster, topic, Isolation::ReadCommitted)
}

/// [`read_topic`] with a chosen isolation level.
pub fn read_topic_with(cluster: Cluster, topic: &str, isolation: Isolation) -> Vec<Record> {
    let consumer = reader(cluster, isolation);
    let watermarks = watermarks_of(&consumer, cluster, topic);
    let mut unfinished: BTreeSet<i32> = watermarks
        .iter()
        .enumerate()
        .filter(|(_, (low, high))| high > low)
        .map(|(partition, _)| partition as i32)
        .collect();
    let mut assignment = TopicPartitionList::new();
    for &partition in &unfinished {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("valid partition offset");
    }
    consumer
        .assign(&assignment)
        .unwrap_or_else(|e| panic!("assigning {topic} on {cluster:?}: {e}"));

    let started = Instant::now();
    let mut records = Vec::new();
    while !unfinished.is_empty() {
        assert!(
            started.elapsed() < READ_LIMIT,
            "reading {topic} on {cluster:?}: partitions {unfinished:?} did not reach their end \
             (watermarks {watermarks:?}) within {READ_LIMIT:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                let partition = message.partition();
                let end = watermarks[partition as usize].1;
                if message.offset() < end {
                    records.push(record_of(&message));
                }
                if message.offset() + 1 >= end {
                    unfinished.remove(&partition);
                }
            }
            // librdkafka reports the end once its fetch position reaches the high
            // watermark (the last stable offset for read_committed), which also covers
            // control records and skipped aborted data at the end of a partition.
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                unfinished.remove(&partition);
            }
            Some(Err(error)) => panic!("reading {topic} on {cluster:?}: {error}"),
        }
    }
    sort_records(&mut records);
    records
}

/// High watermark of every partition, indexed by partition.
pub fn end_offsets(cluster: Cluster, topic: &str) -> Vec<i64> {
    let consumer = reader(cluster, Isolation::ReadUncommitted);
    watermarks_of(&consumer, cluster, topic)
        .into_iter()
        .map(|(_, high)| high)
        .collect()
}

/// Log start offset of every partition, indexed by partition.
pub fn start_offsets(cluster: Cluster, topic: &str) -> Vec<i64> {
    let consumer = reader(cluster, Isolation::ReadUncommitted);
    watermarks_of(&consumer, cluster, topic)
        .into_iter()
        .map(|(low, _)| low)
        .collect()
}

/// Whether the topic exists on the cluster with a leader for every partition (e.g.
/// once strait has created it).
pub fn topic_exists(cluster: Cluster, topic: &str) -> bool {
    let consumer = reader(cluster, Isolation::ReadUncommitted);
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .unwrap_or_else(|e| panic!("metadata of {topic} on {cluster:?}: {e}"));
    metadata.topics().iter().any(|t| {
        t.name() == topic
            && t.error().is_none()
            && !t.partitions().is_empty()
            && t.partitions().iter().all(|p| p.leader() >= 0)
    })
}

/// [`end_offsets`], or None while the topic is missing or not ready yet (a topic
/// just created can answer "not leader" for a moment).
pub fn try_end_offsets(cluster: Cluster, topic: &str) -> Option<Vec<i64>> {
    if !topic_exists(cluster, topic) {
        return None;
    }
    let consumer = reader(cluster, Isolation::ReadUncommitted);
    (0..partitions_of(&consumer, cluster, topic))
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .ok()
                .map(|(_, high)| high)
        })
        .collect()
}

/// Number of partitions of the topic; panics if the topic does not exist.
pub fn partition_count(cluster: Cluster, topic: &str) -> i32 {
    let consumer = reader(cluster, Isolation::ReadUncommitted);
    partitions_of(&consumer, cluster, topic)
}

fn reader(cluster: Cluster, isolation: Isolation) -> BaseConsumer {
    let isolation = match isolation {
        Isolation::ReadCommitted => "read_committed",
        Isolation::ReadUncommitted => "read_uncommitted",
    };
    cluster
        .client_config()
        .set("group.id", "strait-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap_or_else(|e| panic!("consumer for {cluster:?}: {e}"))
}

fn partitions_of(consumer: &BaseConsumer, cluster: Cluster, topic: &str) -> i32 {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .unwrap_or_else(|e| panic!("metadata of {topic} on {cluster:?}: {e}"));
    let described = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .unwrap_or_else(|| panic!("metadata of {cluster:?} lacks topic {topic}"));
    if let Some(error) = described.error() {
        panic!("topic {topic} on {cluster:?}: {error:?}");
    }
    described.partitions().len() as i32
}

fn watermarks_of(consumer: &BaseConsumer, cluster: Cluster, topic: &str) -> Vec<(i64, i64)> {
    (0..partitions_of(consumer, cluster, topic))
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .unwrap_or_else(|e| panic!("watermarks of {topic}/{partition} on {cluster:?}: {e}"))
        })
        .collect()
}

fn record_of(message: &impl Message) -> Record {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Record {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: message.timestamp(),
    }
}

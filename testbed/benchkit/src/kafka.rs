//! What the benchmark asks a cluster through librdkafka: topics, end offsets, and a
//! fingerprint of a topic's records to tell a complete copy from an incomplete one.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const TOPIC_CHANGE_LIMIT: Duration = Duration::from_secs(60);

pub struct Cluster {
    pub name: String,
    pub bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
    metadata: BaseConsumer,
}

impl Cluster {
    pub fn connect(name: &str, bootstrap: &str) -> anyhow::Result<Self> {
        let config = client_config(bootstrap);
        let admin = config
            .create()
            .with_context(|| format!("admin client for cluster {name}"))?;
        let metadata = config
            .create()
            .with_context(|| format!("metadata client for cluster {name}"))?;
        let cluster = Self {
            name: name.to_string(),
            bootstrap: bootstrap.to_string(),
            admin,
            metadata,
        };
        cluster
            .metadata
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .with_context(|| format!("cluster {name} at {bootstrap} does not answer"))?;
        Ok(cluster)
    }

    /// Creates the topic and waits until every partition has a leader.
    pub fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (key, value) in configs {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = block_on(self.admin.create_topics([&new_topic], &options))
            .with_context(|| format!("creating topic {topic} on {}", self.name))?;
        for result in results {
            if let Err((name, code)) = result {
                bail!("creating topic {name} on {}: {code}", self.name);
            }
        }
        // Metadata names the leaders a moment before they answer for the partitions.
        let deadline = Instant::now() + TOPIC_CHANGE_LIMIT;
        while self.partitions(topic)? != Some(partitions as usize)
            || self.end_offsets(topic, partitions).is_err()
        {
            if Instant::now() > deadline {
                bail!(
                    "topic {topic} on {} has no leader for all {partitions} partitions after {TOPIC_CHANGE_LIMIT:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Deletes the topic (if it exists) and waits until the cluster no longer lists it.
    pub fn delete_topic(&self, topic: &str) -> anyhow::Result<()> {
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = block_on(self.admin.delete_topics(&[topic], &options))
            .with_context(|| format!("deleting topic {topic} on {}", self.name))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => bail!("deleting topic {name} on {}: {code}", self.name),
            }
        }
        let deadline = Instant::now() + TOPIC_CHANGE_LIMIT;
        while self.partitions(topic)?.is_some() {
            if Instant::now() > deadline {
                bail!(
                    "topic {topic} on {} still exists {TOPIC_CHANGE_LIMIT:?} after its deletion",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// The number of partitions once every one has a leader; `None` while the topic
    /// does not exist.
    pub fn partitions(&self, topic: &str) -> anyhow::Result<Option<usize>> {
        let metadata = self
            .metadata
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .with_context(|| format!("metadata of {topic} on {}", self.name))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match found.error() {
            None => {}
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => return Ok(None),
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) => return Ok(Some(0)),
            Some(error) => bail!("metadata of {topic} on {}: {error:?}", self.name),
        }
        let partitions = found.partitions();
        if partitions.is_empty() || partitions.iter().any(|p| p.leader() < 0) {
            return Ok(Some(0));
        }
        Ok(Some(partitions.len()))
    }

    /// The end offset (high watermark) of each partition, in partition order; zeros for a
    /// topic that does not exist yet.
    pub fn end_offsets(&self, topic: &str, partitions: i32) -> anyhow::Result<Vec<i64>> {
        // Also refreshes librdkafka's metadata cache, which otherwise keeps a topic
        // created after the client's first look as unknown for minutes.
        if self.partitions(topic)?.is_none() {
            return Ok(vec![0; partitions as usize]);
        }
        (0..partitions)
            .map(
                |p| match self.metadata.fetch_watermarks(topic, p, REQUEST_TIMEOUT) {
                    Ok((_, high)) => Ok(high),
                    Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition))
                    | Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownPartition)) => Ok(0),
                    Err(error) => Err(anyhow::anyhow!(
                        "end offset of {topic}-{p} on {}: {error}",
                        self.name
                    )),
                },
            )
            .collect()
    }

    /// Reads the topic up to its current end offsets and fingerprints its records.
    pub fn fingerprint(&self, topic: &str, limit: Duration) -> anyhow::Result<Fingerprint> {
        let partitions = self
            .partitions(topic)?
            .with_context(|| format!("topic {topic} does not exist on {}", self.name))?;
        let ends = self.end_offsets(topic, partitions as i32)?;
        let mut print = Fingerprint::empty(partitions);
        let consumer: BaseConsumer = reader_config(&self.bootstrap)
            .create()
            .context("reader client")?;
        let mut assignment = TopicPartitionList::new();
        let mut unfinished = Vec::new();
        for (partition, &end) in ends.iter().enumerate() {
            if end > 0 {
                assignment.add_partition_offset(topic, partition as i32, Offset::Beginning)?;
                unfinished.push(partition as i32);
            }
        }
        consumer.assign(&assignment)?;
        let deadline = Instant::now() + limit;
        while !unfinished.is_empty() {
            if Instant::now() > deadline {
                bail!(
                    "reading {topic} on {}: partitions {unfinished:?} not read to their end offsets {ends:?} within {limit:?}",
                    self.name
                );
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Ok(message)) => {
                    let partition = message.partition();
                    let end = ends[partition as usize];
                    if message.offset() < end {
                        let timestamp = message.timestamp().to_millis().unwrap_or(-1);
                        print.add(partition as usize, timestamp, message.payload());
                    }
                    if message.offset() + 1 >= end {
                        unfinished.retain(|&p| p != partition);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    unfinished.retain(|&p| p != partition);
                }
                // librdkafka reconnects by itself; the deadline bounds a lasting failure.
                Some(Err(error)) if is_transient(&error) => {}
                Some(Err(error)) => bail!("reading {topic} on {}: {error}", self.name),
            }
        }
        Ok(print)
    }
}

/// A connection that broke (a reset across the emulated WAN, say): the client connects
/// again by itself, so a reader keeps polling.
pub fn is_transient(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
    )
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "strait-benchkit");
    config
}

fn reader_config(bootstrap: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", "strait-benchkit-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.max.bytes", "67108864")
        .set("max.partition.fetch.bytes", "8388608");
    config
}

/// Counts and hashes of a topic's records (timestamp and value of each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// Per partition: record count and a hash over the records in offset order.
    pub partitions: Vec<PartitionPrint>,
    /// Independent of partitions and order: for a mirror that repartitions.
    pub total: u64,
    pub unordered_hash: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionPrint {
    pub count: u64,
    pub ordered_hash: u64,
}

impl Fingerprint {
    fn empty(partitions: usize) -> Self {
        Self {
            partitions: vec![
                PartitionPrint {
                    count: 0,
                    ordered_hash: 0
                };
                partitions
            ],
            total: 0,
            unordered_hash: 0,
        }
    }

    fn add(&mut self, partition: usize, timestamp: i64, value: Option<&[u8]>) {
        let mut hasher = DefaultHasher::new();
        timestamp.hash(&mut hasher);
        value.hash(&mut hasher);
        let record = hasher.finish();
        let print = &mut self.partitions[partition];
        print.count += 1;
        print.ordered_hash = print
            .ordered_hash
            .wrapping_mul(0x100_0000_01b3)
            .wrapping_add(record);
        self.total += 1;
        self.unordered_hash = self.unordered_hash.wrapping_add(record);
    }

    /// Why `copy` is not the same records in the same partitions and order, if it isn't.
    pub fn differs_per_partition(&self, copy: &Fingerprint) -> Option<String> {
        if self.partitions.len() != copy.partitions.len() {
            return Some(format!(
                "{} partitions on the target, {} on the source",
                copy.partitions.len(),
                self.partitions.len()
            ));
        }
        let counts = |f: &Fingerprint| f.partitions.iter().map(|p| p.count).collect::<Vec<_>>();
        if counts(self) != counts(copy) {
            return Some(format!(
                "record counts per partition: source {:?}, target {:?}",
                counts(self),
                counts(copy)
            ));
        }
        let differing: Vec<usize> = (0..self.partitions.len())
            .filter(|&p| self.partitions[p] != copy.partitions[p])
            .collect();
        (!differing.is_empty()).then(|| {
            format!("partitions {differing:?} hold the same number of records but other records or another order")
        })
    }

    /// Why `copy` is not the same multiset of records, if it isn't.
    pub fn differs_in_total(&self, copy: &Fingerprint) -> Option<String> {
        if self.total != copy.total {
            return Some(format!(
                "{} records on the target, {} on the source",
                copy.total, self.total
            ));
        }
        (self.unordered_hash != copy.unordered_hash)
            .then(|| "as many records as the source, but not the same ones".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print_of(records: &[(usize, i64, &[u8])]) -> Fingerprint {
        let mut print = Fingerprint::empty(2);
        for &(partition, timestamp, value) in records {
            print.add(partition, timestamp, Some(value));
        }
        print
    }

    #[test]
    fn broken_connections_are_transient_and_other_errors_are_not() {
        let broken = KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(is_transient(&broken));
        let unknown = KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert!(!is_transient(&unknown));
    }

    #[test]
    fn the_same_records_in_the_same_partitions_match() {
        let records: [(usize, i64, &[u8]); 3] = [(0, 1, b"a"), (1, 2, b"b"), (0, 3, b"c")];
        assert_eq!(
            print_of(&records).differs_per_partition(&print_of(&records)),
            None
        );
    }

    #[test]
    fn a_missing_record_shows_in_the_counts() {
        let source = print_of(&[(0, 1, b"a"), (1, 2, b"b"), (0, 3, b"c")]);
        let copy = print_of(&[(0, 1, b"a"), (1, 2, b"b")]);
        let why = source.differs_per_partition(&copy).unwrap();
        assert!(why.contains("[2, 1]") && why.contains("[1, 1]"), "{why}");
        assert!(source.differs_in_total(&copy).is_some());
    }

    #[test]
    fn reordered_records_differ_per_partition_but_not_in_total() {
        let source = print_of(&[(0, 1, b"a"), (0, 2, b"b")]);
        let copy = print_of(&[(0, 2, b"b"), (0, 1, b"a")]);
        assert!(source.differs_per_partition(&copy).is_some());
        assert_eq!(source.differs_in_total(&copy), None);
    }

    #[test]
    fn repartitioned_records_match_in_total_only() {
        let source = print_of(&[(0, 1, b"a"), (1, 2, b"b")]);
        let copy = print_of(&[(1, 1, b"a"), (1, 2, b"b")]);
        assert!(source.differs_per_partition(&copy).is_some());
        assert_eq!(source.differs_in_total(&copy), None);
        let other = print_of(&[(0, 1, b"a"), (1, 2, b"x")]);
        assert!(source.differs_in_total(&other).is_some());
    }
}

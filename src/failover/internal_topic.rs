//! The small compacted single-partition topics of MM2 and strait (offset syncs,
//! checkpoints, heartbeats, offset maps, MM2's offsets): creating them, appending a
//! few records, and reading them whole. Thin tokio drivers over `wire` and `batch`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::batch::{
    decode_records, encode_batch, patch, split_records, Compression, ProducerStamp, RawEntry,
    Record, VerifiedBatch,
};
use crate::wire::{send_produce, ClusterClient, ProduceTopicBatches, Purpose};

use super::error::FailoverError;

/// A record of an internal topic: key and value (None: a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Creates `topic` compacted with one partition, plus `extra_configs`, unless it exists.
pub async fn ensure_compacted_topic(
    client: &ClusterClient,
    topic: &str,
    replication_factor: i16,
    extra_configs: &[(&'static str, &'static str)],
) -> Result<(), FailoverError> {
    let configs = [("cleanup.policy", "compact")]
        .iter()
        .chain(extra_configs)
        .map(|(name, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_static_str(value)))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(1)
            .with_replication_factor(replication_factor)
            .with_configs(configs)])
        .with_timeout_ms(30_000);
    let response = client.send_any(request).await?;
    for created in response.topics {
        match created.error_code.err() {
            None => tracing::info!(cluster = client.name(), topic, "created internal topic"),
            Some(ResponseError::TopicAlreadyExists) => {}
            Some(error) => {
                return Err(FailoverError::CreateTopic {
                    cluster: client.name().to_string(),
                    topic: topic.to_string(),
                    error,
                    message: created
                        .error_message
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                })
            }
        }
    }
    Ok(())
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Appends `records` to partition 0 of `topic` in one batch, acks=all.
pub async fn append(
    client: &ClusterClient,
    topic: &str,
    records: &[KeyValue],
) -> Result<(), FailoverError> {
    if records.is_empty() {
        return Ok(());
    }
    let timestamp = now_millis();
    let records: Vec<Record> = records
        .iter()
        .map(|r| Record {
            offset: 0,
            timestamp,
            key: Some(r.key.clone()),
            value: r.value.clone(),
            headers: Vec::new(),
        })
        .collect();
    let batch_error = |source| FailoverError::Batch {
        cluster: client.name().to_string(),
        topic: topic.to_string(),
        source,
    };
    let batch = encode_batch(&records, Compression::None).map_err(batch_error)?;
    let verified = VerifiedBatch::verify(batch).map_err(batch_error)?;
    // These topics are compacted by key and every write carries the whole state of
    // its key, so a retried duplicate is harmless and no producer id is needed.
    let patched = patch(&verified, &ProducerStamp::NON_IDEMPOTENT);
    let (leader, topic_id) = leader_of(client, topic).await?;
    let topics = vec![ProduceTopicBatches {
        name: topic.to_string(),
        topic_id,
        partitions: vec![(0, patched.chunks())],
    }];
    let response = send_produce(
        client,
        leader,
        Purpose::Admin,
        0,
        client.name().into(),
        topics,
        30_000,
    )
    .await?;
    for topic_response in response.responses {
        for partition in topic_response.partition_responses {
            if let Some(error) = partition.error_code.err() {
                return Err(broker_error(client, "Produce", topic, error));
            }
        }
    }
    Ok(())
}

fn broker_error(
    client: &ClusterClient,
    operation: &'static str,
    subject: &str,
    error: ResponseError,
) -> FailoverError {
    FailoverError::Broker {
        cluster: client.name().to_string(),
        operation,
        subject: subject.to_string(),
        error,
    }
}

async fn leader_of(
    client: &ClusterClient,
    topic: &str,
) -> Result<(i32, uuid::Uuid), FailoverError> {
    let metadata = client
        .refresh_metadata(Some(vec![topic.to_string()]))
        .await?;
    let found = metadata.topics.get(topic).and_then(|t| {
        t.partitions
            .get(&0)
            .filter(|p| p.leader >= 0)
            .map(|p| (p.leader, t.topic_id))
    });
    found.ok_or_else(|| FailoverError::NoLeader {
        cluster: client.name().to_string(),
        topic: topic.to_string(),
        partition: 0,
    })
}

/// Every record of `topic`, partition after partition, each in order (Connect's
/// offsets topic has 25 partitions); nothing when the topic does not exist.
pub async fn read_all(client: &ClusterClient, topic: &str) -> Result<Vec<KeyValue>, FailoverError> {
    let metadata = client
        .refresh_metadata(Some(vec![topic.to_string()]))
        .await?;
    let Some(meta) = metadata.topics.get(topic).filter(|t| t.error.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (&partition, partition_meta) in &meta.partitions {
        if partition_meta.leader < 0 {
            return Err(FailoverError::NoLeader {
                cluster: client.name().to_string(),
                topic: topic.to_string(),
                partition,
            });
        }
        let source = PartitionSource {
            client,
            topic,
            topic_id: meta.topic_id,
            partition,
            leader: partition_meta.leader,
        };
        out.extend(source.read().await?);
    }
    Ok(out)
}

struct PartitionSource<'a> {
    client: &'a ClusterClient,
    topic: &'a str,
    topic_id: uuid::Uuid,
    partition: i32,
    leader: i32,
}

impl PartitionSource<'_> {
    async fn read(&self) -> Result<Vec<KeyValue>, FailoverError> {
        let (client, topic) = (self.client, self.topic);
        let end = log_end(client, self.leader, topic, self.partition).await?;
        let mut position = 0;
        let mut out = Vec::new();
        while position < end {
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(100)
                .with_min_bytes(1)
                .with_max_bytes(8 * 1024 * 1024)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_topic_id(self.topic_id)
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(self.partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(position)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(4 * 1024 * 1024)])]);
            let response = client.send(self.leader, Purpose::Admin, request).await?;
            let Some(fetched) = response
                .responses
                .into_iter()
                .flat_map(|t| t.partitions)
                .find(|p| p.partition_index == self.partition)
            else {
                break;
            };
            match fetched.error_code.err() {
                None => {}
                Some(ResponseError::OffsetOutOfRange) => {
                    position = fetched.log_start_offset.max(position + 1);
                    continue;
                }
                Some(error) => return Err(broker_error(client, "Fetch", topic, error)),
            }
            let batch_error = |source| FailoverError::Batch {
                cluster: client.name().to_string(),
                topic: topic.to_string(),
                source,
            };
            let split = split_records(fetched.records.unwrap_or_default()).map_err(batch_error)?;
            let before = position;
            for entry in split.entries {
                let RawEntry::V2(batch) = entry else { continue };
                let next = batch.next_offset();
                if !batch.is_control() {
                    for record in decode_records(&batch).map_err(batch_error)? {
                        if record.offset >= position {
                            if let Some(key) = record.key {
                                out.push(KeyValue {
                                    key,
                                    value: record.value,
                                });
                            }
                        }
                    }
                }
                position = position.max(next);
            }
            if position == before {
                // Nothing whole came back below the end: the rest was removed meanwhile.
                break;
            }
        }
        Ok(out)
    }
}

async fn log_end(
    client: &ClusterClient,
    leader: i32,
    topic: &str,
    partition: i32,
) -> Result<i64, FailoverError> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(-1)])]);
    let response = client.send(leader, Purpose::Admin, request).await?;
    match response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .next()
    {
        Some(partition) => match partition.error_code.err() {
            Some(error) => Err(broker_error(client, "ListOffsets", topic, error)),
            None => Ok(partition.offset),
        },
        None => Ok(0),
    }
}

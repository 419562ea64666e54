//! Admin calls a flow makes before copying: target topics, their limits, the producer
//! identity, committed progress and start offsets.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DescribeConfigsRequest, GroupId, InitProducerIdRequest,
    ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use crate::wire::{check_error_code, Backoff, ClusterClient, CoordinatorType, Purpose, WireError};

/// How long set-up calls retry retriable answers (a coordinator still loading, a
/// leader election) before giving up with the last error.
const SETUP_RETRY_LIMIT: Duration = Duration::from_secs(60);

use super::error::EngineError;

/// Kafka's default max.message.bytes (1 MiB + record batch overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A target topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    /// Must hold compression.type=producer unless the user excluded it, so the target
    /// keeps forwarded batches as they are.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// Only compression.type=producer.
    pub fn plain(name: String, partitions: i32) -> Self {
        NewTopic {
            name,
            partitions,
            configs: vec![("compression.type".into(), "producer".into())],
        }
    }
}

/// Creates the target topics that don't exist yet.
pub async fn create_missing_topics(
    target: &ClusterClient,
    missing: &[NewTopic],
    replication_factor: Option<i16>,
) -> Result<(), EngineError> {
    if missing.is_empty() {
        return Ok(());
    }
    let topics = missing
        .iter()
        .map(|topic| {
            CreatableTopic::default()
                .with_name(name(&topic.name))
                .with_num_partitions(topic.partitions)
                .with_replication_factor(replication_factor.unwrap_or(-1))
                .with_configs(
                    topic
                        .configs
                        .iter()
                        .map(|(key, value)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(key.clone()))
                                .with_value(Some(StrBytes::from_string(value.clone())))
                        })
                        .collect(),
                )
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(30_000);
    let response = target
        .retry(&Backoff::default(), SETUP_RETRY_LIMIT, || {
            target.send_any(request.clone())
        })
        .await?;
    for topic in response.topics {
        match topic.error_code.err() {
            None | Some(ResponseError::TopicAlreadyExists) => {
                tracing::info!(topic = %topic.name.0.as_str(), "created target topic");
            }
            Some(error) => {
                return Err(EngineError::CreateTopic {
                    cluster: target.name().to_string(),
                    topic: topic.name.0.to_string(),
                    error,
                    message: topic
                        .error_message
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                })
            }
        }
    }
    Ok(())
}

/// max.message.bytes of each target topic: a batch above it must be split.
pub async fn max_message_bytes(
    target: &ClusterClient,
    topics: &[String],
) -> Result<HashMap<String, usize>, EngineError> {
    const TOPIC_RESOURCE: i8 = 2;
    let resources = topics
        .iter()
        .map(|topic| {
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.clone()))
                .with_configuration_keys(Some(vec![StrBytes::from_static_str("max.message.bytes")]))
        })
        .collect();
    let request = DescribeConfigsRequest::default().with_resources(resources);
    let response = target
        .retry(&Backoff::default(), SETUP_RETRY_LIMIT, || {
            target.send_any(request.clone())
        })
        .await?;
    let mut limits = HashMap::new();
    for result in response.results {
        let topic = result.resource_name.to_string();
        if let Some(error) = result.error_code.err() {
            return Err(EngineError::DescribeConfigs {
                cluster: target.name().to_string(),
                topic,
                error,
            });
        }
        let limit = result
            .configs
            .iter()
            .find(|c| c.name.as_str() == "max.message.bytes")
            .and_then(|c| c.value.as_ref())
            .and_then(|v| v.as_str().parse::<usize>().ok())
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        limits.insert(topic, limit);
    }
    Ok(limits)
}

/// An idempotent producer identity on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

pub async fn init_producer_id(target: &ClusterClient) -> Result<ProducerIdentity, EngineError> {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
        .with_producer_epoch(-1);
    target
        .retry(&Backoff::default(), SETUP_RETRY_LIMIT, || async {
            let response = target.send_any(request.clone()).await?;
            check_error_code(
                ApiKey::InitProducerId,
                target.name(),
                response.error_code,
                None,
            )?;
            Ok(ProducerIdentity {
                producer_id: response.producer_id.0,
                producer_epoch: response.producer_epoch,
            })
        })
        .await
        .map_err(|source| EngineError::InitProducerId {
            cluster: target.name().to_string(),
            source,
        })
}

/// Committed progress of the flow's group: target topic -> partition -> next source offset.
pub async fn fetch_progress(
    target: &ClusterClient,
    group: &str,
    topics: &BTreeMap<String, Vec<i32>>,
) -> Result<HashMap<(String, i32), i64>, EngineError> {
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    // v8 moved the group and its topics into a list of groups; earlier versions
    // refuse that list, later ones the old fields.
    let request_for = |version: i16| {
        if version >= 8 {
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id.clone())
                .with_topics(Some(
                    topics
                        .iter()
                        .map(|(topic, partitions)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(name(topic))
                                .with_partition_indexes(partitions.clone())
                        })
                        .collect(),
                ))])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(group_id.clone())
                .with_topics(Some(
                    topics
                        .iter()
                        .map(|(topic, partitions)| {
                            OffsetFetchRequestTopic::default()
                                .with_name(name(topic))
                                .with_partition_indexes(partitions.clone())
                        })
                        .collect(),
                ))
        }
    };
    let response = target
        .retry(&Backoff::default(), SETUP_RETRY_LIMIT, || async {
            let coordinator = target
                .find_coordinator(group, CoordinatorType::Group)
                .await?;
            let connection = target.connection(coordinator, Purpose::Admin).await?;
            let version = connection.version_for::<OffsetFetchRequest>().unwrap_or(1);
            let response = connection
                .request_at_version(request_for(version), version)
                .await?;
            let group_error = if response.error_code != 0 {
                response.error_code
            } else {
                response.groups.first().map_or(0, |g| g.error_code)
            };
            check_error_code(ApiKey::OffsetFetch, target.name(), group_error, None)?;
            Ok(response)
        })
        .await
        .map_err(|source| EngineError::Progress {
            group: group.to_string(),
            source,
        })?;
    let mut progress = HashMap::new();
    for topic in response.topics {
        for partition in topic.partitions {
            if partition.committed_offset >= 0 {
                progress.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.committed_offset,
                );
            }
        }
    }
    for group in response.groups {
        for topic in group.topics {
            for partition in topic.partitions {
                if partition.committed_offset >= 0 {
                    progress.insert(
                        (topic.name.0.to_string(), partition.partition_index),
                        partition.committed_offset,
                    );
                }
            }
        }
    }
    Ok(progress)
}

/// Commits progress as a group without members (as Kafka's admin tools do).
pub async fn commit_progress(
    target: &ClusterClient,
    group: &str,
    offsets: &BTreeMap<String, Vec<(i32, i64)>>,
) -> Result<(), EngineError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_retention_time_ms(-1)
        .with_topics(
            offsets
                .iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(name(topic))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|(partition, offset)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(*partition)
                                        .with_committed_offset(*offset)
                                        .with_committed_leader_epoch(-1)
                                        .with_committed_metadata(Some(StrBytes::from_static_str(
                                            "strait progress: next source offset",
                                        )))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    target
        .retry(&Backoff::default(), SETUP_RETRY_LIMIT, || async {
            let coordinator = target
                .find_coordinator(group, CoordinatorType::Group)
                .await?;
            let response = target
                .send(coordinator, Purpose::Admin, request.clone())
                .await?;
            for topic in &response.topics {
                for partition in &topic.partitions {
                    check_error_code(
                        ApiKey::OffsetCommit,
                        target.name(),
                        partition.error_code,
                        None,
                    )?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|source| EngineError::Progress {
            group: group.to_string(),
            source,
        })
}

/// Offsets on the source for partitions that have no progress yet, asked of each
/// partition's leader. `timestamp` is -2 (earliest), -1 (latest) or ms since the epoch;
/// a timestamp past the last record gives the log end.
pub async fn list_offsets(
    source: &ClusterClient,
    requests: &HashMap<i32, Vec<(String, i32)>>,
    timestamp: i64,
) -> Result<HashMap<(String, i32), i64>, EngineError> {
    let mut found = HashMap::new();
    for (leader, partitions) in requests {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(1)
            .with_topics(
                by_topic
                    .iter()
                    .map(|(topic, partitions)| {
                        ListOffsetsTopic::default()
                            .with_name(name(topic))
                            .with_partitions(
                                partitions
                                    .iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(*p)
                                            .with_current_leader_epoch(-1)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = source
            .retry(&Backoff::default(), SETUP_RETRY_LIMIT, || {
                source.send(*leader, Purpose::Admin, request.clone())
            })
            .await?;
        for topic in response.topics {
            for partition in topic.partitions {
                if let Some(error) = partition.error_code.err() {
                    return Err(EngineError::ListOffsets {
                        cluster: source.name().to_string(),
                        topic: topic.name.0.to_string(),
                        partition: partition.partition_index,
                        error,
                    });
                }
                found.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.offset,
                );
            }
        }
    }
    Ok(found)
}

/// Whether a ListOffsets answer for a timestamp beyond the last record (-1) must be
/// replaced by the log end.
pub fn needs_log_end(offset: i64) -> bool {
    offset < 0
}

impl From<WireError> for EngineError {
    fn from(source: WireError) -> Self {
        EngineError::Wire(source)
    }
}

//! Consumer groups through the admin protocol: listing them, reading their committed
//! offsets, whether they have members, and committing offsets for a group without
//! members (as Kafka's admin tools do).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::offsets::{CommittedOffset, GroupOffset, TopicPartition};
use crate::wire::{ClusterClient, CoordinatorType, Purpose};

use super::error::FailoverError;

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

fn broker_error(
    client: &ClusterClient,
    operation: &'static str,
    group: &str,
    error: ResponseError,
) -> FailoverError {
    FailoverError::Broker {
        cluster: client.name().to_string(),
        operation,
        subject: format!("group {group}"),
        error,
    }
}

/// The consumer groups of the cluster (each broker coordinates some of them).
pub async fn list_consumer_groups(
    client: &ClusterClient,
) -> Result<BTreeSet<String>, FailoverError> {
    let metadata = client.refresh_metadata(Some(Vec::new())).await?;
    let mut groups = BTreeSet::new();
    for broker in metadata.brokers.keys() {
        let response = client
            .send(*broker, Purpose::Admin, ListGroupsRequest::default())
            .await?;
        if let Some(error) = response.error_code.err() {
            return Err(broker_error(client, "ListGroups", "*", error));
        }
        for group in response.groups {
            let protocol = group.protocol_type.as_str();
            if protocol.is_empty() || protocol == "consumer" {
                groups.insert(group.group_id.0.to_string());
            }
        }
    }
    Ok(groups)
}

/// Every offset `group` has committed, by partition.
pub async fn committed_offsets(
    client: &ClusterClient,
    group: &str,
) -> Result<Vec<CommittedOffset>, FailoverError> {
    let coordinator = client
        .find_coordinator(group, CoordinatorType::Group)
        .await?;
    let connection = client.connection(coordinator, Purpose::Admin).await?;
    let version = connection.version_for::<OffsetFetchRequest>().unwrap_or(2);
    // v8 moved the group into a list of groups; earlier versions refuse that list,
    // later ones the old field. No topics: all of them (v2 and later).
    let request = if version >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(None)])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(None)
    };
    let response = connection.request_at_version(request, version).await?;
    let mut committed = Vec::new();
    let mut push = |topic: &TopicName, partition: i32, offset: i64, metadata: Option<&StrBytes>| {
        if offset >= 0 {
            committed.push(CommittedOffset {
                topic_partition: TopicPartition {
                    topic: topic.0.to_string(),
                    partition,
                },
                offset,
                metadata: metadata.map(|m| m.to_string()).unwrap_or_default(),
            });
        }
    };
    if let Some(error) = response.error_code.err() {
        return Err(broker_error(client, "OffsetFetch", group, error));
    }
    for topic in &response.topics {
        for p in &topic.partitions {
            push(
                &topic.name,
                p.partition_index,
                p.committed_offset,
                p.metadata.as_ref(),
            );
        }
    }
    for found in &response.groups {
        if let Some(error) = found.error_code.err() {
            return Err(broker_error(client, "OffsetFetch", group, error));
        }
        for topic in &found.topics {
            for p in &topic.partitions {
                push(
                    &topic.name,
                    p.partition_index,
                    p.committed_offset,
                    p.metadata.as_ref(),
                );
            }
        }
    }
    Ok(committed)
}

/// Whether `group` has members on the cluster (a group that does not exist has none).
pub async fn has_active_members(
    client: &ClusterClient,
    group: &str,
) -> Result<bool, FailoverError> {
    let coordinator = client
        .find_coordinator(group, CoordinatorType::Group)
        .await?;
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response = client.send(coordinator, Purpose::Admin, request).await?;
    for described in response.groups {
        match described.error_code.err() {
            None => {}
            Some(ResponseError::GroupIdNotFound) => return Ok(false),
            Some(error) => return Err(broker_error(client, "DescribeGroups", group, error)),
        }
        let state = described.group_state.as_str();
        if !described.members.is_empty() || !(state == "Empty" || state == "Dead") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The offsets `group` has committed, as a map (for [`crate::offsets::TargetGroup`]).
pub async fn committed_map(
    client: &ClusterClient,
    group: &str,
) -> Result<std::collections::HashMap<TopicPartition, i64>, FailoverError> {
    Ok(committed_offsets(client, group)
        .await?
        .into_iter()
        .map(|c| (c.topic_partition, c.offset))
        .collect())
}

/// Commits `offsets` for `group`, which must have no members.
pub async fn commit_offsets(
    client: &ClusterClient,
    group: &str,
    offsets: &[GroupOffset],
) -> Result<(), FailoverError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<&GroupOffset>> = BTreeMap::new();
    for offset in offsets {
        by_topic
            .entry(&offset.topic_partition.topic)
            .or_default()
            .push(offset);
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_retention_time_ms(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|o| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(o.topic_partition.partition)
                                        .with_committed_offset(o.offset)
                                        .with_committed_leader_epoch(-1)
                                        .with_committed_metadata(Some(StrBytes::from_string(
                                            o.metadata.clone(),
                                        )))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let coordinator = client
        .find_coordinator(group, CoordinatorType::Group)
        .await?;
    let response = client.send(coordinator, Purpose::Admin, request).await?;
    for topic in response.topics {
        for partition in topic.partitions {
            match partition.error_code.err() {
                None => {}
                Some(
                    ResponseError::UnknownMemberId
                    | ResponseError::IllegalGeneration
                    | ResponseError::StaleMemberEpoch,
                ) => {
                    return Err(FailoverError::GroupActive {
                        cluster: client.name().to_string(),
                        group: group.to_string(),
                    })
                }
                Some(error) => return Err(broker_error(client, "OffsetCommit", group, error)),
            }
        }
    }
    Ok(())
}

//! The admin requests of topology sync, on a [`ClusterClient`]: topic configs,
//! partitions and topic ACLs. Each call retries answers that may succeed on another try
//! (a lost connection, a broker restarting) for a while, then reports per topic.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreateAclsRequest, CreatePartitionsRequest, DescribeAclsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::wire::{Backoff, ClusterClient};

use super::acl_sync::{AclOperation, AclPermission, TopicAcl};
use super::config_sync::{ConfigOp, ConfigSource, TopicConfigEntry};
use super::error::{AdminCall, TopologyError};
use super::partitions::PartitionIncrease;

/// How long a call retries before it reports the last error.
const ADMIN_RETRY_LIMIT: Duration = Duration::from_secs(30);
/// How long the controller may take to add partitions.
const CREATE_PARTITIONS_TIMEOUT_MS: i32 = 30_000;

/// Protocol codes (Kafka's ConfigResource.Type, ResourceType, PatternType, AclOperation,
/// AclPermissionType, AlterConfigOp.OpType).
const CONFIG_RESOURCE_TOPIC: i8 = 2;
const ACL_RESOURCE_TOPIC: i8 = 2;
const PATTERN_LITERAL: i8 = 3;
const ACL_ANY: i8 = 1;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Results by topic name: one topic's failure does not hide the others' outcome.
pub type PerTopic<T> = BTreeMap<String, Result<T, TopologyError>>;

/// The outcome of an ACL call: a cluster without an authorizer has no ACLs to read or
/// write (MM2 logs this once and skips ACL sync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclOutcome<T> {
    Done(T),
    NoAuthorizer,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn message(m: Option<StrBytes>) -> Option<String> {
    m.map(|m| m.to_string())
}

/// Sends `request` to any broker of `cluster`, retrying retriable failures.
async fn send<R: Request + Clone>(
    cluster: &ClusterClient,
    call: AdminCall,
    request: R,
) -> Result<R::Response, TopologyError> {
    cluster
        .retry(&Backoff::default(), ADMIN_RETRY_LIMIT, || {
            cluster.send_any(request.clone())
        })
        .await
        .map_err(|source| TopologyError::Request {
            cluster: cluster.name().to_string(),
            call,
            source,
        })
}

/// Every configuration of each topic, with its source, as DescribeConfigs shows it.
pub async fn describe_topic_configs(
    cluster: &ClusterClient,
    topics: &[String],
) -> Result<PerTopic<Vec<TopicConfigEntry>>, TopologyError> {
    if topics.is_empty() {
        return Ok(PerTopic::new());
    }
    let request = DescribeConfigsRequest::default().with_resources(
        topics
            .iter()
            .map(|topic| {
                DescribeConfigsResource::default()
                    .with_resource_type(CONFIG_RESOURCE_TOPIC)
                    .with_resource_name(text(topic))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    let response = send(cluster, AdminCall::DescribeConfigs, request).await?;
    Ok(response
        .results
        .into_iter()
        .map(|result| {
            let topic = result.resource_name.to_string();
            let entries = match result.error_code.err() {
                Some(code) => Err(TopologyError::DescribeConfigs {
                    cluster: cluster.name().to_string(),
                    topic: topic.clone(),
                    code,
                    message: message(result.error_message),
                }),
                None => Ok(result
                    .configs
                    .into_iter()
                    .map(|config| TopicConfigEntry {
                        name: config.name.to_string(),
                        value: config.value.map(|v| v.to_string()),
                        source: ConfigSource::from_code(config.config_source),
                        read_only: config.read_only,
                        sensitive: config.is_sensitive,
                    })
                    .collect()),
            };
            (topic, entries)
        })
        .collect())
}

/// Applies `changes` (topic, operations) with IncrementalAlterConfigs; topics without
/// operations are left out.
pub async fn alter_topic_configs(
    cluster: &ClusterClient,
    changes: &[(String, Vec<ConfigOp>)],
) -> Result<PerTopic<()>, TopologyError> {
    let resources: Vec<AlterConfigsResource> = changes
        .iter()
        .filter(|(_, ops)| !ops.is_empty())
        .map(|(topic, ops)| {
            AlterConfigsResource::default()
                .with_resource_type(CONFIG_RESOURCE_TOPIC)
                .with_resource_name(text(topic))
                .with_configs(ops.iter().map(alterable).collect())
        })
        .collect();
    if resources.is_empty() {
        return Ok(PerTopic::new());
    }
    let request = IncrementalAlterConfigsRequest::default().with_resources(resources);
    let response = send(cluster, AdminCall::IncrementalAlterConfigs, request).await?;
    Ok(response
        .responses
        .into_iter()
        .map(|result| {
            let topic = result.resource_name.to_string();
            let outcome = match result.error_code.err() {
                Some(code) => Err(TopologyError::AlterConfigs {
                    cluster: cluster.name().to_string(),
                    topic: topic.clone(),
                    code,
                    message: message(result.error_message),
                }),
                None => Ok(()),
            };
            (topic, outcome)
        })
        .collect())
}

fn alterable(op: &ConfigOp) -> AlterableConfig {
    match op {
        ConfigOp::Set { name, value } => AlterableConfig::default()
            .with_name(text(name))
            .with_config_operation(OP_SET)
            .with_value(Some(text(value))),
        ConfigOp::Delete { name } => AlterableConfig::default()
            .with_name(text(name))
            .with_config_operation(OP_DELETE)
            .with_value(None),
    }
}

/// Raises each topic's partition count with CreatePartitions. A topic that already has
/// at least the count asked for counts as done (another strait, or an operator, was
/// first), as in MM2.
pub async fn create_partitions(
    cluster: &ClusterClient,
    increases: &[PartitionIncrease],
) -> Result<PerTopic<()>, TopologyError> {
    if increases.is_empty() {
        return Ok(PerTopic::new());
    }
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(CREATE_PARTITIONS_TIMEOUT_MS)
        .with_topics(
            increases
                .iter()
                .map(|increase| {
                    CreatePartitionsTopic::default()
                        .with_name(TopicName(text(&increase.topic)))
                        .with_count(increase.to)
                        .with_assignments(None)
                })
                .collect(),
        );
    let response = send(cluster, AdminCall::CreatePartitions, request).await?;
    Ok(response
        .results
        .into_iter()
        .map(|result| {
            let topic = result.name.0.to_string();
            let outcome = match result.error_code.err() {
                None | Some(ResponseError::InvalidPartitions) => Ok(()),
                Some(code) => {
                    let asked = increases.iter().find(|i| i.topic == topic);
                    Err(TopologyError::CreatePartitions {
                        cluster: cluster.name().to_string(),
                        topic: topic.clone(),
                        from: asked.map_or(0, |i| i.from),
                        to: asked.map_or(0, |i| i.to),
                        code,
                        message: message(result.error_message),
                    })
                }
            };
            (topic, outcome)
        })
        .collect())
}

/// Every ACL on a literally named topic of `cluster`.
pub async fn describe_topic_acls(
    cluster: &ClusterClient,
) -> Result<AclOutcome<Vec<TopicAcl>>, TopologyError> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(ACL_RESOURCE_TOPIC)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(PATTERN_LITERAL)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ACL_ANY)
        .with_permission_type(ACL_ANY);
    let response = send(cluster, AdminCall::DescribeAcls, request).await?;
    match response.error_code.err() {
        Some(ResponseError::SecurityDisabled) => return Ok(AclOutcome::NoAuthorizer),
        Some(code) => {
            return Err(TopologyError::DescribeAcls {
                cluster: cluster.name().to_string(),
                code,
                message: message(response.error_message),
            })
        }
        None => {}
    }
    Ok(AclOutcome::Done(
        response
            .resources
            .into_iter()
            .filter(|r| r.resource_type == ACL_RESOURCE_TOPIC && r.pattern_type == PATTERN_LITERAL)
            .flat_map(|resource| {
                let topic = resource.resource_name.to_string();
                resource.acls.into_iter().map(move |acl| TopicAcl {
                    topic: topic.clone(),
                    principal: acl.principal.to_string(),
                    host: acl.host.to_string(),
                    operation: AclOperation::from_code(acl.operation),
                    permission: AclPermission::from_code(acl.permission_type),
                })
            })
            .collect(),
    ))
}

/// Creates `acls` on `cluster` (creating an ACL that exists changes nothing).
pub async fn create_topic_acls(
    cluster: &ClusterClient,
    acls: &[TopicAcl],
) -> Result<AclOutcome<()>, TopologyError> {
    if acls.is_empty() {
        return Ok(AclOutcome::Done(()));
    }
    let request = CreateAclsRequest::default().with_creations(
        acls.iter()
            .map(|acl| {
                AclCreation::default()
                    .with_resource_type(ACL_RESOURCE_TOPIC)
                    .with_resource_name(text(&acl.topic))
                    .with_resource_pattern_type(PATTERN_LITERAL)
                    .with_principal(text(&acl.principal))
                    .with_host(text(&acl.host))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code())
            })
            .collect(),
    );
    let response = send(cluster, AdminCall::CreateAcls, request).await?;
    let mut failures = Vec::new();
    // Results come in the order of the creations.
    for (acl, result) in acls.iter().zip(response.results) {
        match result.error_code.err() {
            None => {}
            Some(ResponseError::SecurityDisabled) => return Ok(AclOutcome::NoAuthorizer),
            Some(code) => failures.push((acl.clone(), code, message(result.error_message))),
        }
    }
    if failures.is_empty() {
        Ok(AclOutcome::Done(()))
    } else {
        Err(TopologyError::CreateAcls {
            cluster: cluster.name().to_string(),
            failures,
        })
    }
}

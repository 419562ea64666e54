//! Errors of the admin calls that keep a remote topic in step with its source: each
//! names the cluster, the topic (or ACL) and what to do about it.

use std::fmt;

use kafka_protocol::error::ResponseError;

use crate::wire::WireError;

use super::acl_sync::TopicAcl;

/// The admin calls of topology sync, and the setting that turns each off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCall {
    DescribeConfigs,
    IncrementalAlterConfigs,
    CreatePartitions,
    DescribeAcls,
    CreateAcls,
}

impl AdminCall {
    fn setting(self) -> &'static str {
        match self {
            AdminCall::DescribeConfigs | AdminCall::IncrementalAlterConfigs => {
                "sync.topic.configs.enabled"
            }
            AdminCall::CreatePartitions => "refresh.topics.enabled",
            AdminCall::DescribeAcls | AdminCall::CreateAcls => "sync.topic.acls.enabled",
        }
    }
}

impl fmt::Display for AdminCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The request as a whole got no usable answer.
    #[error("cluster {cluster}: {call} failed: {source} — {}", self.fix())]
    Request {
        cluster: String,
        call: AdminCall,
        #[source]
        source: WireError,
    },

    #[error("cluster {cluster}: cannot read the configs of topic {topic}: {code}{} — {}", detail(message), self.fix())]
    DescribeConfigs {
        cluster: String,
        topic: String,
        code: ResponseError,
        message: Option<String>,
    },

    #[error("cluster {cluster}: cannot change the configs of topic {topic}: {code}{} — {}", detail(message), self.fix())]
    AlterConfigs {
        cluster: String,
        topic: String,
        code: ResponseError,
        message: Option<String>,
    },

    #[error(
        "cluster {cluster}: cannot add partitions to topic {topic} ({from} to {to}): {code}{}; \
         source partitions {from}..{} are not mirrored until it has {to} — {}",
        detail(message), to - 1, self.fix()
    )]
    CreatePartitions {
        cluster: String,
        topic: String,
        from: i32,
        to: i32,
        code: ResponseError,
        message: Option<String>,
    },

    #[error("cluster {cluster}: cannot list topic ACLs: {code}{} — {}", detail(message), self.fix())]
    DescribeAcls {
        cluster: String,
        code: ResponseError,
        message: Option<String>,
    },

    #[error(
        "cluster {cluster}: cannot create {} ACL(s), first {}: {}{} — {}",
        failures.len(), failures[0].0, failures[0].1, detail(&failures[0].2), self.fix()
    )]
    CreateAcls {
        cluster: String,
        /// Never empty.
        failures: Vec<(TopicAcl, ResponseError, Option<String>)>,
    },
}

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

impl TopologyError {
    /// The cluster the failed call went to.
    pub fn cluster(&self) -> &str {
        match self {
            TopologyError::Request { cluster, .. }
            | TopologyError::DescribeConfigs { cluster, .. }
            | TopologyError::AlterConfigs { cluster, .. }
            | TopologyError::CreatePartitions { cluster, .. }
            | TopologyError::DescribeAcls { cluster, .. }
            | TopologyError::CreateAcls { cluster, .. } => cluster,
        }
    }

    fn fix(&self) -> String {
        use ResponseError::*;
        match self {
            TopologyError::Request { call, source, .. } => match source {
                WireError::UnsupportedVersion { .. } => format!(
                    "the brokers are too old for {call}: set {} = false for this flow",
                    call.setting()
                ),
                _ if source.is_retriable() => {
                    "strait tries again at the next refresh".to_string()
                }
                _ => format!(
                    "check the brokers' logs; set {} = false to stop this sync",
                    call.setting()
                ),
            },
            TopologyError::DescribeConfigs { topic, code, .. } => match code {
                TopicAuthorizationFailed => {
                    format!("grant strait DESCRIBE_CONFIGS on topic {topic}")
                }
                UnknownTopicOrPartition => {
                    "the topic was deleted; it leaves the flow at the next topic refresh"
                        .to_string()
                }
                _ => "strait tries again at the next config sync".to_string(),
            },
            TopologyError::AlterConfigs { topic, code, .. } => match code {
                TopicAuthorizationFailed | ClusterAuthorizationFailed => {
                    format!("grant strait ALTER_CONFIGS on topic {topic}")
                }
                InvalidConfig | InvalidRequest | PolicyViolation => {
                    "the target refuses a value the source has (another Kafka version or an \
                     alter.config.policy): add that property to config.properties.exclude"
                        .to_string()
                }
                UnknownTopicOrPartition => {
                    format!("create topic {topic} on the target (strait creates missing topics when it starts a flow)")
                }
                _ => "strait tries again at the next config sync".to_string(),
            },
            TopologyError::CreatePartitions {
                cluster, topic, to, code, ..
            } => match code {
                TopicAuthorizationFailed | ClusterAuthorizationFailed => {
                    format!("grant strait ALTER on topic {topic} of cluster {cluster}, or add the partitions by hand: kafka-topics.sh --alter --topic {topic} --partitions {to}")
                }
                _ => format!("add them by hand: kafka-topics.sh --bootstrap-server <{cluster}> --alter --topic {topic} --partitions {to}"),
            },
            TopologyError::DescribeAcls { code, .. } => match code {
                ClusterAuthorizationFailed => {
                    "grant strait DESCRIBE on the source cluster (resource CLUSTER), or set sync.topic.acls.enabled = false".to_string()
                }
                _ => "strait tries again at the next ACL sync".to_string(),
            },
            TopologyError::CreateAcls { failures, .. } => match failures[0].1 {
                ClusterAuthorizationFailed => {
                    "grant strait ALTER on the target cluster (resource CLUSTER), or set sync.topic.acls.enabled = false".to_string()
                }
                _ => "strait tries again at the next ACL sync".to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::acl_sync::{AclOperation, AclPermission};
    use kafka_protocol::messages::ApiKey;

    #[test]
    fn partition_errors_name_the_topic_the_missing_partitions_and_the_command() {
        let error = TopologyError::CreatePartitions {
            cluster: "B".into(),
            topic: "A.orders".into(),
            from: 2,
            to: 5,
            code: ResponseError::PolicyViolation,
            message: Some("no more partitions".into()),
        };
        let text = error.to_string();
        for part in [
            "cluster B",
            "A.orders",
            "PolicyViolation (no more partitions)",
            "source partitions 2..4 are not mirrored",
            "--alter --topic A.orders --partitions 5",
        ] {
            assert!(text.contains(part), "{part:?} missing in {text}");
        }
    }

    #[test]
    fn old_brokers_are_told_which_setting_turns_the_sync_off() {
        let error = TopologyError::Request {
            cluster: "B".into(),
            call: AdminCall::IncrementalAlterConfigs,
            source: WireError::UnsupportedVersion {
                api: ApiKey::IncrementalAlterConfigs,
                broker: "b:9092".into(),
                ours: (0, 1),
                broker_range: None,
            },
        };
        let text = error.to_string();
        assert!(
            text.contains("sync.topic.configs.enabled = false"),
            "{text}"
        );
        assert_eq!(error.cluster(), "B");
    }

    #[test]
    fn acl_failures_name_the_acl_and_the_grant() {
        let acl = TopicAcl {
            topic: "A.t".into(),
            principal: "User:bob".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let error = TopologyError::CreateAcls {
            cluster: "B".into(),
            failures: vec![(acl, ResponseError::ClusterAuthorizationFailed, None)],
        };
        let text = error.to_string();
        assert!(text.contains("Allow Read for User:bob"), "{text}");
        assert!(text.contains("on topic A.t"), "{text}");
        assert!(
            text.contains("grant strait ALTER on the target cluster"),
            "{text}"
        );
    }
}

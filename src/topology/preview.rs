//! What topology sync would do to a flow's target, for `strait check`: the configs each
//! remote topic would get and the ACLs that would be created. Read-only: it only
//! describes both clusters.

use std::fmt;

use kafka_protocol::error::ResponseError;

use crate::config::FlowConfig;
use crate::engine::RouteInfo;
use crate::wire::ClusterClient;

use super::acl_sync::TopicAcl;
use super::admin::{describe_topic_acls, describe_topic_configs, AclOutcome};
use super::config_sync::{configs_for_new_topic, plan_config_sync, ConfigOp};
use super::error::TopologyError;
use super::task::acls_to_create;

/// The configs one remote topic would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicConfigPreview {
    /// The target topic does not exist: it is created with these.
    New(Vec<(String, String)>),
    /// The target topic exists: these operations bring it in step.
    Existing(Vec<ConfigOp>),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclPreview {
    Disabled,
    NoAuthorizer(String),
    Create(Vec<TopicAcl>),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPreview {
    pub flow: String,
    /// None when `sync.topic.configs.enabled = false`.
    pub configs: Option<Vec<(String, TopicConfigPreview)>>,
    pub acls: AclPreview,
}

fn is_unknown_topic(error: &TopologyError) -> bool {
    matches!(
        error,
        TopologyError::DescribeConfigs {
            code: ResponseError::UnknownTopicOrPartition,
            ..
        }
    )
}

/// Describes both clusters and works out what sync would change for `routes`.
pub async fn preview_sync(
    flow: &FlowConfig,
    source: &ClusterClient,
    target: &ClusterClient,
    routes: &[RouteInfo],
) -> SyncPreview {
    let configs = match flow.sync_topic_configs {
        None => None,
        Some(_) => Some(preview_configs(flow, source, target, routes).await),
    };
    let acls = match flow.sync_topic_acls {
        None => AclPreview::Disabled,
        Some(_) => preview_acls(flow, source, target, routes).await,
    };
    SyncPreview {
        flow: flow.name(),
        configs,
        acls,
    }
}

async fn preview_configs(
    flow: &FlowConfig,
    source: &ClusterClient,
    target: &ClusterClient,
    routes: &[RouteInfo],
) -> Vec<(String, TopicConfigPreview)> {
    let sources: Vec<String> = routes.iter().map(|r| r.source.clone()).collect();
    let targets: Vec<String> = routes.iter().map(|r| r.target.clone()).collect();
    let (mut source_configs, mut target_configs) = match tokio::join!(
        describe_topic_configs(source, &sources),
        describe_topic_configs(target, &targets)
    ) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(error), _) | (_, Err(error)) => {
            let failed = error.to_string();
            return routes
                .iter()
                .map(|r| (r.target.clone(), TopicConfigPreview::Failed(failed.clone())))
                .collect();
        }
    };
    routes
        .iter()
        .map(|route| {
            let preview = match (
                source_configs.remove(&route.source),
                target_configs.remove(&route.target),
            ) {
                (Some(Ok(source)), Some(Err(error))) if is_unknown_topic(&error) => {
                    TopicConfigPreview::New(configs_for_new_topic(
                        &source,
                        &flow.config_properties,
                        flow.topic_config_defaults,
                    ))
                }
                (Some(Ok(source)), Some(Ok(target))) => TopicConfigPreview::Existing(
                    plan_config_sync(
                        &source,
                        &target,
                        &flow.config_properties,
                        flow.topic_config_defaults,
                    )
                    .ops,
                ),
                (Some(Err(error)), _) | (_, Some(Err(error))) => {
                    TopicConfigPreview::Failed(error.to_string())
                }
                _ => TopicConfigPreview::Failed("the brokers did not describe it".to_string()),
            };
            (route.target.clone(), preview)
        })
        .collect()
}

async fn preview_acls(
    flow: &FlowConfig,
    source: &ClusterClient,
    target: &ClusterClient,
    routes: &[RouteInfo],
) -> AclPreview {
    let source_acls = match describe_topic_acls(source).await {
        Ok(AclOutcome::Done(acls)) => acls,
        Ok(AclOutcome::NoAuthorizer) => return AclPreview::NoAuthorizer(source.name().into()),
        Err(error) => return AclPreview::Failed(error.to_string()),
    };
    let target_acls = match describe_topic_acls(target).await {
        Ok(AclOutcome::Done(acls)) => acls,
        Ok(AclOutcome::NoAuthorizer) => return AclPreview::NoAuthorizer(target.name().into()),
        Err(error) => return AclPreview::Failed(error.to_string()),
    };
    AclPreview::Create(acls_to_create(flow, routes, &source_acls, &target_acls))
}

fn list<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.iter().map(show).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for SyncPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.configs {
            None => writeln!(
                f,
                "  topic configs: not synced (sync.topic.configs.enabled = false)"
            )?,
            Some(configs) => {
                for (topic, preview) in configs {
                    match preview {
                        TopicConfigPreview::New(configs) => writeln!(
                            f,
                            "  configs of {topic} (to be created): {}",
                            list(configs, |(name, value)| format!("{name}={value}"))
                        )?,
                        TopicConfigPreview::Existing(ops) => writeln!(
                            f,
                            "  configs of {topic} to change: {}",
                            list(ops, |op| match op {
                                ConfigOp::Set { name, value } => format!("{name}={value}"),
                                ConfigOp::Delete { name } => format!("{name} (to the default)"),
                            })
                        )?,
                        TopicConfigPreview::Failed(why) => {
                            writeln!(f, "  configs of {topic}: cannot tell: {why}")?
                        }
                    }
                }
            }
        }
        match &self.acls {
            AclPreview::Disabled => writeln!(
                f,
                "  topic ACLs: not synced (sync.topic.acls.enabled = false)"
            ),
            AclPreview::NoAuthorizer(cluster) => writeln!(
                f,
                "  topic ACLs: cluster {cluster} has no authorizer, nothing to sync"
            ),
            AclPreview::Create(acls) if acls.is_empty() => {
                writeln!(f, "  ACLs to create: none")
            }
            AclPreview::Create(acls) => {
                writeln!(f, "  ACLs to create:")?;
                for acl in acls {
                    writeln!(f, "    {acl}")?;
                }
                Ok(())
            }
            AclPreview::Failed(why) => writeln!(f, "  topic ACLs: cannot tell: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::acl_sync::{AclOperation, AclPermission};

    #[test]
    fn shows_configs_per_topic_and_acls() {
        let preview = SyncPreview {
            flow: "A->B".into(),
            configs: Some(vec![
                (
                    "A.new".into(),
                    TopicConfigPreview::New(vec![
                        ("retention.ms".into(), "1000".into()),
                        ("compression.type".into(), "producer".into()),
                    ]),
                ),
                (
                    "A.old".into(),
                    TopicConfigPreview::Existing(vec![ConfigOp::Delete {
                        name: "cleanup.policy".into(),
                    }]),
                ),
                ("A.same".into(), TopicConfigPreview::Existing(vec![])),
            ]),
            acls: AclPreview::Create(vec![TopicAcl {
                topic: "A.new".into(),
                principal: "User:alice".into(),
                host: "*".into(),
                operation: AclOperation::Read,
                permission: AclPermission::Allow,
            }]),
        };
        let shown = preview.to_string();
        for line in [
            "configs of A.new (to be created): retention.ms=1000, compression.type=producer",
            "configs of A.old to change: cleanup.policy (to the default)",
            "configs of A.same to change: none",
            "Allow Read for User:alice from host * on topic A.new",
        ] {
            assert!(shown.contains(line), "{line:?} missing in:\n{shown}");
        }
    }

    #[test]
    fn says_which_syncs_are_off() {
        let shown = SyncPreview {
            flow: "A->B".into(),
            configs: None,
            acls: AclPreview::NoAuthorizer("B".into()),
        }
        .to_string();
        assert!(
            shown.contains("sync.topic.configs.enabled = false"),
            "{shown}"
        );
        assert!(shown.contains("cluster B has no authorizer"), "{shown}");
    }
}

//! From a loaded configuration to running flows: connection settings per cluster, the
//! topic plan of each flow, and the flow runners.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::{ClusterConfig, FlowConfig, MirrorConfig, TCP_CONGESTION_CONTROL};
use crate::engine::{
    ClusterEndpoint, Discovery, EngineError, FlowRunner, FlowSpec, RouteInfo, TopicRoute,
    TopicSelector,
};
use crate::failover::{self, FailoverError, FailoverSettings, FailoverTask};
use crate::offsets::GroupOffset;
use crate::plan::{plan_flow, FlowPlan, SourceTopic};
use crate::topology::{preview_sync, SyncPreview};
use crate::wire::{
    check_congestion_control, ClusterClient, ConnectionConfig, SocketOptions, Transport, WireError,
};

pub fn connection_config(cluster: &ClusterConfig) -> Result<ConnectionConfig, WireError> {
    let transport = Transport::from_security_protocol(cluster.security_protocol.name())?;
    if let Some(name) = &cluster.tcp_congestion_control {
        check_congestion_control(name).map_err(|reason| WireError::SocketSetting {
            // Named without the alias: the value may come from the top level.
            setting: format!(
                "{TCP_CONGESTION_CONTROL}={name} (cluster {})",
                cluster.alias
            ),
            reason,
        })?;
    }
    Ok(ConnectionConfig {
        client_id: cluster
            .client_id
            .clone()
            .unwrap_or_else(|| format!("strait-{}", cluster.alias)),
        socket: SocketOptions {
            send_buffer: cluster.send_buffer_bytes.map(|b| b as usize),
            recv_buffer: cluster.receive_buffer_bytes.map(|b| b as usize),
            keepalive: cluster.tcp_keepalive,
            congestion_control: cluster.tcp_congestion_control.clone(),
            ..SocketOptions::default()
        },
        transport,
        ..ConnectionConfig::default()
    })
}

/// The flow's source and target endpoints.
pub fn flow_endpoints(
    config: &MirrorConfig,
    flow: &FlowConfig,
) -> Result<(ClusterEndpoint, ClusterEndpoint), WireError> {
    let cluster = |alias: &str| config.cluster(alias).expect("flows name declared clusters");
    Ok((
        endpoint(cluster(&flow.source))?,
        endpoint(cluster(&flow.target))?,
    ))
}

pub fn endpoint(cluster: &ClusterConfig) -> Result<ClusterEndpoint, WireError> {
    Ok(ClusterEndpoint {
        alias: cluster.alias.clone(),
        bootstrap: cluster.bootstrap_servers.clone(),
        connection: connection_config(cluster)?,
    })
}

/// Every topic of the source cluster with its partition count.
pub async fn source_topics(source: &ClusterClient) -> Result<Vec<SourceTopic>, WireError> {
    let metadata = source.refresh_metadata(None).await?;
    Ok(metadata
        .topics
        .iter()
        .filter(|(_, topic)| topic.error.is_none())
        .map(|(name, topic)| SourceTopic {
            name: name.clone(),
            partitions: topic.partitions.len() as i32,
        })
        .collect())
}

/// Clients of the flow's source and target clusters, for the admin calls beside the
/// data path (topology sync, `strait check`).
pub fn flow_clients(
    config: &MirrorConfig,
    flow: &FlowConfig,
) -> Result<(ClusterClient, ClusterClient), WireError> {
    Ok((
        cluster_client(config, &flow.source)?,
        cluster_client(config, &flow.target)?,
    ))
}

/// A client of the declared cluster `alias`.
fn cluster_client(config: &MirrorConfig, alias: &str) -> Result<ClusterClient, WireError> {
    let cluster = config.cluster(alias).expect("flows name declared clusters");
    Ok(ClusterClient::new(
        &cluster.alias,
        cluster.bootstrap_servers.clone(),
        connection_config(cluster)?,
    ))
}

/// What topology sync would change on the flow's target for the planned topics.
pub async fn sync_preview(
    config: &MirrorConfig,
    flow: &FlowConfig,
    plan: &FlowPlan,
) -> Result<SyncPreview, WireError> {
    let (source, target) = flow_clients(config, flow)?;
    let routes: Vec<RouteInfo> = plan
        .topics
        .iter()
        .map(|t| RouteInfo {
            source: t.source.clone(),
            target: t.target.clone(),
            partitions: t.partitions,
        })
        .collect();
    Ok(preview_sync(flow, &source, &target, &routes).await)
}

/// A client of the flow's source cluster. The plan and the flow's runner share one: the
/// runner then starts on the connection the plan opened, not on a new one (across a
/// 300 ms link a new connection costs 0.6 s before its first request).
pub fn source_client(config: &MirrorConfig, flow: &FlowConfig) -> Result<ClusterClient, WireError> {
    cluster_client(config, &flow.source)
}

/// Works out what the flow mirrors from its source's topics.
pub async fn plan(source: &ClusterClient, flow: &FlowConfig) -> Result<FlowPlan, WireError> {
    let topics = source_topics(source).await?;
    Ok(plan_flow(flow, &topics))
}

pub fn flow_spec(
    config: &MirrorConfig,
    flow: &FlowConfig,
    plan: &FlowPlan,
) -> Result<FlowSpec, EngineError> {
    let (source, target) = flow_endpoints(config, flow).map_err(EngineError::Wire)?;
    let routes = plan
        .topics
        .iter()
        .map(|t| TopicRoute {
            source: t.source.clone(),
            target: t.target.clone(),
        })
        .collect();
    let mut spec = FlowSpec::defaults(source, target, routes);
    spec.start = flow.start_position;
    spec.memory_budget = flow.memory_budget_bytes.map(|bytes| bytes as usize);
    spec.fetch_connections = flow.fetch_connections_per_broker;
    spec.produce_connections = flow.produce_connections_per_broker;
    spec.partition_fetch_bytes = flow.fetch.partition_max_bytes.max(1) as usize;
    spec.fetch_max_wait = flow.fetch.max_wait.min(Duration::from_secs(10));
    spec.status_interval = config.status_interval;
    spec.commit_interval = config.progress_commit_interval;
    spec.replication_factor = (flow.replication_factor > 0).then_some(flow.replication_factor);
    spec.new_topic_configs = Some((flow.config_properties.clone(), flow.topic_config_defaults));
    spec.discovery = flow.refresh_topics.map(|interval| {
        let flow = flow.clone();
        let select: TopicSelector = Arc::new(move |topics: &[(String, i32)]| {
            let topics: Vec<SourceTopic> = topics
                .iter()
                .map(|(name, partitions)| SourceTopic {
                    name: name.clone(),
                    partitions: *partitions,
                })
                .collect();
            plan_flow(&flow, &topics)
                .topics
                .into_iter()
                .map(|t| TopicRoute {
                    source: t.source,
                    target: t.target,
                })
                .collect()
        });
        Discovery { interval, select }
    });
    Ok(spec)
}

/// Before a flow's first start over a target MM2 has been filling: partitions with
/// no strait progress start where MM2 stopped (see `failover::take_over_from_mm2`).
pub async fn take_over_from_mm2(
    flow: &FlowConfig,
    spec: &FlowSpec,
) -> Result<Vec<GroupOffset>, FailoverError> {
    let target = ClusterClient::new(
        &spec.target.alias,
        spec.target.bootstrap.clone(),
        spec.target.connection.clone(),
    );
    let routes: Vec<(String, String)> = spec
        .topics
        .iter()
        .map(|t| (t.source.clone(), t.target.clone()))
        .collect();
    failover::take_over_from_mm2(
        &target,
        &flow.mm2_offsets_topic,
        &flow.source,
        &spec.progress_group(),
        &routes,
    )
    .await
}

/// Prepares a flow's failover task (offset maps, offset syncs, checkpoints,
/// heartbeats, group offset sync): creates its internal topics, one of them on the
/// source (across the link for a mirror next to the target), and reads its maps back.
/// Independent of the runner's own preparation, so the two can run side by side.
pub async fn prepare_failover(
    flow: &FlowConfig,
    source: &ClusterEndpoint,
    target: &ClusterEndpoint,
) -> Result<FailoverTask, FailoverError> {
    let remote = flow.clone();
    FailoverTask::prepare(
        FailoverSettings::from_flow(flow),
        source,
        target,
        move |topic| remote.remote_topic(topic),
    )
    .await
}

/// Starts a prepared failover task on the runner's events, before the runner runs; it
/// ends after the flow does.
pub fn spawn_failover(task: FailoverTask, runner: &mut FlowRunner) -> JoinHandle<()> {
    let events = runner.subscribe();
    tokio::spawn(task.run(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_a(extra: &str) -> ClusterConfig {
        let text = format!(
            "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\nA->B.enabled = true\n{extra}\n"
        );
        let (config, _) = MirrorConfig::parse(&text, "test.properties").unwrap();
        config.cluster("A").unwrap().clone()
    }

    #[test]
    fn the_clusters_socket_settings_reach_its_connections() {
        let cluster = cluster_a(
            "A.consumer.receive.buffer.bytes = 8388608\nstrait.tcp.congestion.control = reno\nA.strait.tcp.keepalive.seconds = 0",
        );
        let socket = connection_config(&cluster).unwrap().socket;
        assert_eq!(socket.recv_buffer, Some(8_388_608));
        assert_eq!(socket.send_buffer, None);
        assert_eq!(socket.congestion_control.as_deref(), Some("reno"));
        assert_eq!(socket.keepalive, None);
    }

    #[test]
    fn a_congestion_control_the_kernel_lacks_stops_before_any_connection() {
        let cluster = cluster_a("strait.tcp.congestion.control = nosuchcc");
        let error = connection_config(&cluster).unwrap_err();
        assert!(!error.is_retriable());
        let text = error.to_string();
        assert!(
            text.starts_with("strait.tcp.congestion.control=nosuchcc (cluster A): "),
            "{text}"
        );
        assert!(text.contains("modprobe tcp_nosuchcc"), "{text}");
    }
}

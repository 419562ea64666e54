//! Topology sync's admin calls against real Kafka brokers (KRaft): configs computed by
//! `strait::topology` and applied by its admin functions, checked with librdkafka's
//! admin client and metadata (never with strait's own describe calls).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource as RdSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use strait::config::{ConfigPropertyFilter, TopicConfigDefaults};
use strait::topology::{
    alter_topic_configs, create_partitions, create_topic_acls, describe_topic_acls,
    describe_topic_configs, partition_increases, plan_config_sync, AclOperation, AclOutcome,
    AclPermission, ConfigOp, ConfigSyncPlan, NotCopied, PartitionIncrease, TopicAcl, TopologyError,
};
use strait::wire::{ClusterClient, ConnectionConfig};

use common::{create_topic, partition_count, unique_topic, Cluster};

/// How long the tests wait for a change to show in the brokers' metadata.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(30);

fn client(cluster: Cluster) -> ClusterClient {
    ClusterClient::new(
        cluster.name(),
        vec![cluster.bootstrap().to_string()],
        ConnectionConfig::default(),
    )
}

/// A test's runtime: a `ClusterClient`'s connections live on the runtime that opened
/// them, so each test keeps one runtime for all its strait calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// name -> (value, source) of a topic's configs, as librdkafka describes them.
fn rdkafka_configs(cluster: Cluster, topic: &str) -> HashMap<String, (Option<String>, RdSource)> {
    let admin: AdminClient<DefaultClientContext> = cluster
        .client_config()
        .create()
        .expect("rdkafka admin client");
    let results = runtime()
        .block_on(admin.describe_configs(
            &[ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap_or_else(|e| panic!("describe configs of {topic}: {e}"));
    let resource = results
        .into_iter()
        .next()
        .expect("one result")
        .unwrap_or_else(|code| panic!("describe configs of {topic}: {code}"));
    resource
        .entries
        .into_iter()
        .map(|entry| (entry.name, (entry.value, entry.source)))
        .collect()
}

/// Polls `check` until it holds or the propagation limit passes; returns whether it held.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PROPAGATION_LIMIT;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Describes `source_topic` on the source and `remote_topic` on the target with strait,
/// and plans the sync with MM2's default filter.
fn planned_sync(
    rt: &tokio::runtime::Runtime,
    source_topic: &str,
    remote_topic: &str,
) -> ConfigSyncPlan {
    let describe = |cluster: Cluster, topic: &str| {
        rt.block_on(describe_topic_configs(
            &client(cluster),
            &[topic.to_string()],
        ))
        .unwrap_or_else(|e| panic!("describe {topic}: {e}"))
        .remove(topic)
        .unwrap_or_else(|| panic!("{topic} missing in the answer"))
        .unwrap_or_else(|e| panic!("describe {topic}: {e}"))
    };
    plan_config_sync(
        &describe(Cluster::Source, source_topic),
        &describe(Cluster::Target, remote_topic),
        &ConfigPropertyFilter::default(),
        TopicConfigDefaults::Target,
    )
}

fn set(name: &str, value: &str) -> ConfigOp {
    ConfigOp::Set {
        name: name.to_string(),
        value: value.to_string(),
    }
}

#[test]
fn config_sync_copies_topic_values_skips_exclusions_and_keeps_compression_producer() {
    let rt = runtime();
    let source_topic = unique_topic("topology-config-src");
    let remote_topic = format!("source.{source_topic}");
    create_topic(
        Cluster::Source,
        &source_topic,
        1,
        &[
            ("retention.ms", "123456789"),
            ("cleanup.policy", "compact"),
            ("max.message.bytes", "2000000"),
            ("min.insync.replicas", "2"),
            ("compression.type", "gzip"),
        ],
    );
    // A target topic made earlier with values of its own: a source default must
    // remove the target's override (segment.ms), a source value replace it.
    create_topic(
        Cluster::Target,
        &remote_topic,
        1,
        &[("retention.ms", "1000"), ("segment.ms", "3600000")],
    );
    let target = client(Cluster::Target);

    let plan = planned_sync(&rt, &source_topic, &remote_topic);
    let mut ops = plan.ops.clone();
    ops.sort_by(|a, b| a.name().cmp(b.name()));
    assert_eq!(
        ops,
        vec![
            set("cleanup.policy", "compact"),
            set("compression.type", "producer"),
            set("max.message.bytes", "2000000"),
            set("retention.ms", "123456789"),
            ConfigOp::Delete {
                name: "segment.ms".to_string()
            },
        ]
    );

    for (name, reason) in [
        ("min.insync.replicas", NotCopied::Excluded),
        ("compression.type", NotCopied::CompressionKeptAsProducer),
    ] {
        assert!(
            plan.not_copied.contains(&(name.to_string(), reason)),
            "{name}: {:?}",
            plan.not_copied
        );
    }

    let results = rt
        .block_on(alter_topic_configs(
            &target,
            &[(remote_topic.clone(), plan.ops)],
        ))
        .expect("IncrementalAlterConfigs answered");
    assert!(
        matches!(results.get(&remote_topic), Some(Ok(()))),
        "{results:?}"
    );

    let expected_overrides = [
        ("retention.ms", "123456789"),
        ("cleanup.policy", "compact"),
        ("max.message.bytes", "2000000"),
        ("compression.type", "producer"),
    ];
    let mut seen = HashMap::new();
    let applied = eventually(|| {
        seen = rdkafka_configs(Cluster::Target, &remote_topic);
        expected_overrides.iter().all(|(name, value)| {
            seen.get(*name) == Some(&(Some(value.to_string()), RdSource::DynamicTopic))
        }) && seen["segment.ms"].1 != RdSource::DynamicTopic
    });
    assert!(
        applied,
        "target topic {remote_topic} did not get the source's values: {seen:?}"
    );
    // Excluded by MM2's defaults: the target keeps its own broker's value.
    assert_ne!(
        seen["min.insync.replicas"].1,
        RdSource::DynamicTopic,
        "{seen:?}"
    );
    assert_ne!(
        seen["min.insync.replicas"].0.as_deref(),
        Some("2"),
        "{seen:?}"
    );

    // Described again, the target is in step: nothing left to send.
    let again = planned_sync(&rt, &source_topic, &remote_topic);
    assert!(again.ops.is_empty(), "{:?}", again.ops);
}

#[test]
fn a_missing_topic_and_a_refused_value_fail_only_their_own_topic() {
    let rt = runtime();
    let good = unique_topic("topology-config-good");
    let refused = unique_topic("topology-config-refused");
    let missing = unique_topic("topology-config-missing");
    create_topic(Cluster::Target, &good, 1, &[]);
    create_topic(Cluster::Target, &refused, 1, &[]);
    let target = client(Cluster::Target);

    let described = rt
        .block_on(describe_topic_configs(
            &target,
            &[good.clone(), missing.clone()],
        ))
        .expect("DescribeConfigs answered");
    assert!(
        described[&good]
            .as_ref()
            .is_ok_and(|entries| entries.iter().any(|e| e.name == "retention.ms")),
        "{described:?}"
    );
    match &described[&missing] {
        Err(TopologyError::DescribeConfigs { topic, code, .. }) => {
            assert_eq!(topic, &missing);
            assert_eq!(*code, ResponseError::UnknownTopicOrPartition);
        }
        other => panic!("expected an unknown-topic error, got {other:?}"),
    }

    let results = rt
        .block_on(alter_topic_configs(
            &target,
            &[
                (good.clone(), vec![set("retention.ms", "86400000")]),
                (
                    refused.clone(),
                    vec![set("max.message.bytes", "not-a-number")],
                ),
            ],
        ))
        .expect("IncrementalAlterConfigs answered");
    assert!(matches!(results[&good], Ok(())), "{results:?}");
    let error = results[&refused].as_ref().expect_err("a refused value");
    let text = error.to_string();
    assert!(text.contains(&refused), "{text}");
    assert!(text.contains("config.properties.exclude"), "{text}");
    assert!(
        eventually(|| {
            rdkafka_configs(Cluster::Target, &good).get("retention.ms")
                == Some(&(Some("86400000".to_string()), RdSource::DynamicTopic))
        }),
        "retention.ms of {good} was not changed"
    );
}

#[test]
fn create_partitions_grows_the_target_to_the_source_count() {
    let rt = runtime();
    let topic = unique_topic("topology-partitions");
    create_topic(Cluster::Target, &topic, 2, &[]);
    let target = client(Cluster::Target);

    let (increases, target_has_more) =
        partition_increases(&[(topic.clone(), 5, partition_count(Cluster::Target, &topic))]);
    assert!(target_has_more.is_empty());
    assert_eq!(
        increases,
        vec![PartitionIncrease {
            topic: topic.clone(),
            from: 2,
            to: 5
        }]
    );
    let results = rt
        .block_on(create_partitions(&target, &increases))
        .expect("CreatePartitions answered");
    assert!(matches!(results[&topic], Ok(())), "{results:?}");
    assert!(
        eventually(|| partition_count(Cluster::Target, &topic) == 5),
        "{topic} has {} partitions, expected 5",
        partition_count(Cluster::Target, &topic)
    );

    // An increase someone else already made (a stale count) is not an error, and
    // never shrinks the topic.
    let stale = PartitionIncrease {
        topic: topic.clone(),
        from: 2,
        to: 3,
    };
    let results = rt
        .block_on(create_partitions(&target, &[stale]))
        .expect("CreatePartitions answered");
    assert!(matches!(results[&topic], Ok(())), "{results:?}");
    assert_eq!(partition_count(Cluster::Target, &topic), 5);
}

#[test]
fn growing_a_missing_target_topic_names_the_topic_and_the_fix() {
    let rt = runtime();
    let missing = unique_topic("topology-partitions-missing");
    let increase = PartitionIncrease {
        topic: missing.clone(),
        from: 1,
        to: 4,
    };
    let results = rt
        .block_on(create_partitions(&client(Cluster::Target), &[increase]))
        .expect("CreatePartitions answered");
    let error = results[&missing].as_ref().expect_err("no such topic");
    assert!(
        matches!(
            error,
            TopologyError::CreatePartitions {
                code: ResponseError::UnknownTopicOrPartition,
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("cluster target"), "{text}");
    assert!(
        text.contains(&format!("--alter --topic {missing} --partitions 4")),
        "{text}"
    );
}

#[test]
fn acl_calls_on_clusters_without_an_authorizer_say_so() {
    let rt = runtime();
    // The testbed's brokers run without authorizer.class.name.
    let described = rt
        .block_on(describe_topic_acls(&client(Cluster::Source)))
        .expect("DescribeAcls");
    assert_eq!(described, AclOutcome::NoAuthorizer);

    let acl = TopicAcl {
        topic: unique_topic("topology-acl"),
        principal: "User:alice".to_string(),
        host: "*".to_string(),
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
    };
    let created = rt
        .block_on(create_topic_acls(&client(Cluster::Target), &[acl]))
        .expect("CreateAcls");
    assert_eq!(created, AclOutcome::NoAuthorizer);
}

/// Runs Kafka's own ACL tool against `bootstrap`; returns its output.
fn kafka_acls(bootstrap: &str, args: &[&str]) -> String {
    let version = Cluster::Source.kafka_version();
    let mut command = vec![
        "run-class",
        &version,
        "org.apache.kafka.tools.AclCommand",
        "--bootstrap-server",
        bootstrap,
    ];
    command.extend_from_slice(args);
    common::testbed(&command)
}

/// A testbed cluster with Kafka's StandardAuthorizer (everyone on its plaintext
/// listener is ANONYMOUS, a super user), started for this test binary and stopped by the
/// testbed once no test process uses it.
fn authorizer_cluster() -> String {
    // Once per test binary: the tests that need it run in parallel.
    static BOOTSTRAP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOTSTRAP
        .get_or_init(|| {
            let pid = std::process::id().to_string();
            // Everyone on the plaintext listener is User:ANONYMOUS: a super user here, so
            // the test can write ACLs for other principals and read them back.
            common::testbed(&[
                "start",
                "authz",
                "--port",
                "24092",
                "--set",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "--set",
                "super.users=User:ANONYMOUS",
                "--set",
                "allow.everyone.if.no.acl.found=true",
                "--lease",
                &pid,
            ]);
            common::testbed(&["bootstrap", "authz"]).trim().to_string()
        })
        .clone()
}

#[test]
fn acls_are_read_translated_and_created_on_a_cluster_with_an_authorizer() {
    let rt = runtime();
    let bootstrap = authorizer_cluster();
    let topic = unique_topic("topology-acl");
    let remote = format!("A.{topic}");
    for args in [
        ["--allow-principal", "User:alice", "--operation", "All"],
        ["--allow-principal", "User:alice", "--operation", "Write"],
        ["--deny-principal", "User:mallory", "--operation", "Write"],
    ] {
        kafka_acls(
            &bootstrap,
            &[&["--add", "--topic", &topic], &args[..]].concat(),
        );
    }
    // A prefixed ACL: not literal, so not mirrored.
    kafka_acls(
        &bootstrap,
        &[
            "--add",
            "--topic",
            &topic,
            "--resource-pattern-type",
            "prefixed",
            "--allow-principal",
            "User:carol",
            "--operation",
            "Read",
        ],
    );
    let cluster = ClusterClient::new(
        "authz",
        vec![bootstrap.clone()],
        ConnectionConfig::default(),
    );
    let flow = strait::config::MirrorConfig::parse(
        "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n\
         A->B.enabled = true\n",
        "acl-test.properties",
    )
    .expect("valid config")
    .0
    .flows
    .remove(0);

    let source_acls = match rt
        .block_on(describe_topic_acls(&cluster))
        .expect("DescribeAcls")
    {
        AclOutcome::Done(acls) => acls,
        AclOutcome::NoAuthorizer => panic!("{bootstrap} has no authorizer"),
    };
    let acl = |principal: &str, operation, permission| TopicAcl {
        topic: topic.clone(),
        principal: principal.to_string(),
        host: "*".to_string(),
        operation,
        permission,
    };
    let mut of_topic: Vec<TopicAcl> = source_acls
        .into_iter()
        .filter(|a| a.topic == topic)
        .collect();
    of_topic.sort();
    let mut expected = vec![
        acl("User:alice", AclOperation::All, AclPermission::Allow),
        acl("User:alice", AclOperation::Write, AclPermission::Allow),
        acl("User:mallory", AclOperation::Write, AclPermission::Deny),
    ];
    expected.sort();
    assert_eq!(of_topic, expected);

    let wanted = strait::topology::target_acls(&flow, &of_topic);
    let created = rt
        .block_on(create_topic_acls(&cluster, &wanted))
        .expect("CreateAcls");
    assert_eq!(created, AclOutcome::Done(()));

    let listed = kafka_acls(&bootstrap, &["--list", "--topic", &remote]);
    let lines: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("principal="))
        .collect();
    assert_eq!(lines.len(), 2, "{listed}");
    for (principal, operation, permission) in [
        ("User:alice", "READ", "ALLOW"),
        ("User:mallory", "WRITE", "DENY"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("principal={principal},"))
                    && l.contains(&format!("operation={operation},"))
                    && l.contains(&format!("permissionType={permission})"))),
            "{principal} {operation} {permission} missing on {remote}: {listed}"
        );
    }
}

/// strait run with ACL sync on, source and target both on the authorizer cluster (the
/// flow mirrors `t` to `A.t` there): the translated ACLs arrive on the remote topic.
#[test]
fn strait_run_syncs_topic_acls_on_a_cluster_with_an_authorizer() {
    let bootstrap = authorizer_cluster();
    let topic = unique_topic("acl-run");
    let remote = format!("A.{topic}");
    common::testbed(&[
        "tool",
        "authz",
        "topics",
        "--bootstrap-server",
        &bootstrap,
        "--create",
        "--topic",
        &topic,
        "--partitions",
        "1",
    ]);
    for args in [
        ["--allow-principal", "User:reader", "--operation", "Read"],
        ["--allow-principal", "User:writer", "--operation", "Write"],
        ["--allow-principal", "User:admin", "--operation", "All"],
    ] {
        kafka_acls(
            &bootstrap,
            &[&["--add", "--topic", &topic], &args[..]].concat(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acl.properties");
    std::fs::write(
        &file,
        format!(
            "clusters = A, B\nA.bootstrap.servers = {bootstrap}\nB.bootstrap.servers = {bootstrap}\n\
             A->B.enabled = true\nA->B.topics = {}\nreplication.factor = 1\n\
             heartbeats.replication.enabled = false\n\
             sync.topic.acls.interval.seconds = 1\nstrait.status.interval.seconds = 1\n",
            topic.replace('-', "\\-")
        ),
    )
    .unwrap();
    let mut strait = common::Strait::start(&file);
    let mut listed = String::new();
    strait.wait_until("the ACLs of the remote topic", || {
        listed = kafka_acls(&bootstrap, &["--list", "--topic", &remote]);
        listed.lines().filter(|l| l.contains("principal=")).count() >= 2
    });
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    let lines: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("principal="))
        .collect();
    assert_eq!(lines.len(), 2, "WRITE is not mirrored: {listed}");
    for principal in ["User:reader", "User:admin"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("principal={principal},"))
                    && l.contains("operation=READ,")
                    && l.contains("permissionType=ALLOW)")),
            "{principal} may READ {remote} (ALL becomes READ): {listed}"
        );
    }
}

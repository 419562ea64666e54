//! Topic administration through librdkafka's admin client.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use super::cluster::{kafka_tool, Cluster};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A topic name no other test (in this run or an earlier one) has used.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Creates a topic with the broker's default replication factor and the given topic
/// configs, and waits until every partition has a leader.
pub fn create_topic(cluster: Cluster, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    // -1 asks the broker for its default.replication.factor.
    create_topic_with_replication(cluster, name, partitions, -1, configs);
}

/// Like [`create_topic`] with an explicit replication factor.
pub fn create_topic_with_replication(
    cluster: Cluster,
    name: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) {
    let admin = admin_client(cluster);
    let topic = configs.iter().fold(
        NewTopic::new(name, partitions, TopicReplication::Fixed(replication)),
        |topic, (key, value)| topic.set(key, value),
    );
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = block_on(admin.create_topics([&topic], &options))
        .unwrap_or_else(|e| panic!("creating topic {name} on {cluster:?}: {e}"));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("creating topic {topic} on {cluster:?} failed: {code}");
        }
    }
    wait_for_leaders(&admin, cluster, name, partitions);
}

/// Deletes a topic (tests call it to keep long-lived clusters small).
pub fn delete_topic(cluster: Cluster, name: &str) {
    let admin = admin_client(cluster);
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = block_on(admin.delete_topics(&[name], &options))
        .unwrap_or_else(|e| panic!("deleting topic {name} on {cluster:?}: {e}"));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("deleting topic {topic} on {cluster:?} failed: {code}");
        }
    }
}

fn admin_client(cluster: Cluster) -> AdminClient<DefaultClientContext> {
    cluster
        .client_config()
        .create()
        .unwrap_or_else(|e| panic!("admin client for {cluster:?}: {e}"))
}

// CreateTopics returns once the controller has the topic; brokers learn of it a moment later.
fn wait_for_leaders(
    admin: &AdminClient<DefaultClientContext>,
    cluster: Cluster,
    name: &str,
    partitions: i32,
) {
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    loop {
        let ready = admin
            .inner()
            .fetch_metadata(Some(name), Duration::from_secs(5))
            .map(|metadata| {
                metadata.topics().iter().any(|topic| {
                    topic.error().is_none()
                        && topic.partitions().len() == partitions as usize
                        && topic
                            .partitions()
                            .iter()
                            .all(|p| p.error().is_none() && p.leader() >= 0)
                })
            })
            .unwrap_or(false);
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topic {name} on {cluster:?} has no leader for every partition after {ADMIN_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime for the admin client")
        .block_on(future)
}

/// Stops the log cleaner on a compacted `topic` (cleanup.policy=delete, no retention),
/// so that it no longer changes while a test compares it with its copy.
/// Topic configs under which the log cleaner compacts within seconds of a write.
pub const COMPACTED_AT_ONCE: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    // Kafka 4 refuses segments under 1 MiB: roll them by age instead.
    ("segment.ms", "100"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("min.compaction.lag.ms", "0"),
    ("delete.retention.ms", "100"),
];

pub fn stop_log_cleaner(cluster: Cluster, topic: &str) {
    let altered = kafka_tool(
        cluster,
        "configs",
        &[
            "--bootstrap-server",
            cluster.bootstrap(),
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
            "--add-config",
            "cleanup.policy=delete,retention.ms=-1",
        ],
    );
    assert!(
        altered.status.success(),
        "{}",
        String::from_utf8_lossy(&altered.stderr)
    );
    // The broker applies topic configs asynchronously.
    std::thread::sleep(Duration::from_secs(1));
}

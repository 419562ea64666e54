//! Replication topologies from one properties file, against real brokers: active/active,
//! hub-and-spoke, the same file given to MirrorMaker 2, topic config sync and
//! `--clusters`. Checked with librdkafka (topics, configs, records) and MM2 itself.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use common::{
    assert_same_records, create_topic, produce, read_topic, spread_records, strait_command,
    testbed, unique_topic, Cluster, Compare, FlowFile, ProduceOptions, Strait,
};

// A guard against hanging when something is broken, far above any honest wait here.
const WAIT_LIMIT: Duration = Duration::from_secs(180);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '.' | '-' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

fn write_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("mirror.properties");
    fs::write(&path, text).expect("write properties file");
    path
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime for the admin client")
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

/// Every topic of the cluster whose name contains `part`, with its partition count.
fn topics_containing(bootstrap: &str, part: &str) -> BTreeMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("metadata client");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && t.name().contains(part))
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool, log: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "{what} did not happen within {WAIT_LIMIT:?}; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The current value of one config of a topic, as librdkafka describes it.
fn topic_config(bootstrap: &str, topic: &str, name: &str) -> Option<String> {
    let admin = admin(bootstrap);
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    let results = runtime()
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options))
        .expect("describe configs");
    let resource = results.into_iter().next()?.ok()?;
    resource
        .entries
        .into_iter()
        .find(|entry| entry.name == name)
        .and_then(|entry| entry.value)
}

fn alter_topic_configs(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let alter = configs.iter().fold(
        AlterConfig::new(ResourceSpecifier::Topic(topic)),
        |alter, (key, value)| alter.set(key, value),
    );
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    let results = runtime()
        .block_on(admin.alter_configs([&alter], &options))
        .expect("alter configs");
    for result in results {
        result.unwrap_or_else(|(_, code)| panic!("altering {topic}: {code}"));
    }
}

fn delete_topics(bootstrap: &str, topics: &[&str]) {
    let admin = admin(bootstrap);
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    for result in runtime()
        .block_on(admin.delete_topics(topics, &options))
        .expect("delete topics")
    {
        result.unwrap_or_else(|(topic, code)| panic!("deleting {topic}: {code}"));
    }
}

/// A file with the flows A->B and B->A between `source` (A) and `target` (B), mirroring
/// the topics whose name contains `prefix` (remote copies included: cycle prevention
/// must keep them from travelling back).
fn two_way_file(prefix: &str, extra: &str) -> String {
    format!(
        "clusters = A, B\n\
         A.bootstrap.servers = {a}\n\
         B.bootstrap.servers = {b}\n\
         A->B.enabled = true\n\
         B->A.enable = true\n\
         topics = .*{p}.*\n\
         replication.factor = 1\n\
         heartbeats.replication.enabled = false\n\
         refresh.topics.interval.seconds = 1\n\
         strait.status.interval.seconds = 1\n\
         {extra}",
        a = Cluster::Source.bootstrap(),
        b = Cluster::Target.bootstrap(),
        p = regex_escape(prefix),
    )
}

/// Creates `topic` on `cluster` and waits until strait has copied it as `remote` onto
/// `to`: proof that the flow into `to` has run a topic refresh since.
fn refresh_seen(strait: &mut Strait, cluster: Cluster, topic: &str, to: Cluster, remote: &str) {
    create_topic(cluster, topic, 1, &[]);
    let bootstrap = to.bootstrap();
    strait.wait_until(&format!("{remote} on {to:?}"), || {
        topics_containing(bootstrap, remote).contains_key(remote)
    });
}

#[test]
fn active_active_keeps_one_remote_copy_each_way_and_no_cycles() {
    let prefix = unique_topic("aa");
    let on_a = format!("{prefix}.orders");
    let on_b = format!("{prefix}.payments");
    create_topic(Cluster::Source, &on_a, 2, &[]);
    create_topic(Cluster::Target, &on_b, 3, &[]);
    produce(
        Cluster::Source,
        &on_a,
        &spread_records(&on_a, 2, 400),
        &ProduceOptions::default(),
    );
    produce(
        Cluster::Target,
        &on_b,
        &spread_records(&on_b, 3, 300),
        &ProduceOptions::default(),
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), &two_way_file(&prefix, ""));
    let mut strait = Strait::start(&file);
    let (remote_a, remote_b) = (format!("A.{on_a}"), format!("B.{on_b}"));
    strait.wait_for_counts(Cluster::Target, &remote_a, &[200, 200]);
    strait.wait_for_counts(Cluster::Source, &remote_b, &[100, 100, 100]);

    // Writes on both sides while both flows run.
    produce(
        Cluster::Source,
        &on_a,
        &spread_records(&format!("{on_a}-more"), 2, 100),
        &ProduceOptions::default(),
    );
    produce(
        Cluster::Target,
        &on_b,
        &spread_records(&format!("{on_b}-more"), 3, 90),
        &ProduceOptions::default(),
    );
    strait.wait_for_counts(Cluster::Target, &remote_a, &[250, 250]);
    strait.wait_for_counts(Cluster::Source, &remote_b, &[130, 130, 130]);

    // A topic refresh of each flow after the remote copies existed: had the copies been
    // eligible, they would have been mirrored back then.
    let late_a = format!("{prefix}.late-a");
    let late_b = format!("{prefix}.late-b");
    refresh_seen(
        &mut strait,
        Cluster::Source,
        &late_a,
        Cluster::Target,
        &format!("A.{late_a}"),
    );
    refresh_seen(
        &mut strait,
        Cluster::Target,
        &late_b,
        Cluster::Source,
        &format!("B.{late_b}"),
    );
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");

    let names =
        |bootstrap| -> Vec<String> { topics_containing(bootstrap, &prefix).into_keys().collect() };
    let mut expected_a = vec![
        on_a.clone(),
        late_a.clone(),
        remote_b.clone(),
        format!("B.{late_b}"),
    ];
    let mut expected_b = vec![
        on_b.clone(),
        late_b.clone(),
        remote_a.clone(),
        format!("A.{late_a}"),
    ];
    expected_a.sort();
    expected_b.sort();
    assert_eq!(
        names(Cluster::Source.bootstrap()),
        expected_a,
        "topics on A"
    );
    assert_eq!(
        names(Cluster::Target.bootstrap()),
        expected_b,
        "topics on B"
    );

    assert_same_records(
        &read_topic(Cluster::Source, &on_a),
        &read_topic(Cluster::Target, &remote_a),
        Compare::EXACT,
    );
    assert_same_records(
        &read_topic(Cluster::Target, &on_b),
        &read_topic(Cluster::Source, &remote_b),
        Compare::EXACT,
    );
}

#[test]
fn clusters_option_runs_only_the_flows_into_the_listed_targets() {
    let prefix = unique_topic("only");
    let on_a = format!("{prefix}.a");
    let on_b = format!("{prefix}.b");
    create_topic(Cluster::Source, &on_a, 1, &[]);
    create_topic(Cluster::Target, &on_b, 1, &[]);
    produce(
        Cluster::Source,
        &on_a,
        &spread_records(&on_a, 1, 50),
        &ProduceOptions::default(),
    );
    produce(
        Cluster::Target,
        &on_b,
        &spread_records(&on_b, 1, 50),
        &ProduceOptions::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), &two_way_file(&prefix, ""));
    let file_arg = file.to_str().unwrap();

    let (code, plan, stderr) = strait_command(&["check", file_arg, "--clusters", "B"]);
    assert_eq!(code, Some(0), "strait check failed: {stderr}");
    assert!(plan.contains("flow A->B"), "{plan}");
    assert!(!plan.contains("flow B->A"), "{plan}");

    // strait prepares every flow it runs (creating their target topics) before any of
    // them copies, so once A->B has copied, B->A would have created its topic.
    let mut strait = Strait::start_with(&file, &["--clusters", "B"]);
    strait.wait_for_counts(Cluster::Target, &format!("A.{on_a}"), &[50]);
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    assert!(
        !topics_containing(Cluster::Source.bootstrap(), &prefix).contains_key(&format!("B.{on_b}")),
        "the flow B->A ran although --clusters lists only B; log:\n{log}"
    );
}

#[test]
fn a_config_changed_on_the_source_reaches_the_target_and_compression_stays_producer() {
    let topic = unique_topic("configs");
    create_topic(
        Cluster::Source,
        &topic,
        1,
        &[("retention.ms", "3600000"), ("compression.type", "gzip")],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut flow = FlowFile::new(Cluster::Source, Cluster::Target, &[&topic]);
    flow.extra = vec![
        "sync.topic.configs.interval.seconds = 1".into(),
        "sync.topic.acls.interval.seconds = 1".into(),
    ];
    let file = flow.write(dir.path());
    let (code, plan, stderr) = strait_command(&["check", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "strait check failed: {stderr}");
    let remote = flow.remote(&topic);
    assert!(
        plan.contains(&format!("configs of {remote} (to be created)"))
            && plan.contains("retention.ms=3600000")
            && plan.contains("compression.type=producer"),
        "{plan}"
    );

    let mut strait = Strait::start(&file);
    let target = Cluster::Target.bootstrap();
    strait.wait_until("the source's retention.ms on the target", || {
        topic_config(target, &remote, "retention.ms").as_deref() == Some("3600000")
    });

    alter_topic_configs(
        Cluster::Source.bootstrap(),
        &topic,
        &[("retention.ms", "7200000"), ("compression.type", "gzip")],
    );
    strait.wait_until("the changed retention.ms on the target", || {
        topic_config(target, &remote, "retention.ms").as_deref() == Some("7200000")
    });
    assert_eq!(
        topic_config(target, &remote, "compression.type").as_deref(),
        Some("producer"),
        "the target must keep forwarded batches as they are"
    );
    // The testbed's brokers have no authorizer: ACL sync says so once, not every round.
    let log_path = strait.log_path();
    let no_authorizer = "has no authorizer: topic ACL sync skipped";
    strait.wait_until("the ACL sync's note on the missing authorizer", || {
        fs::read_to_string(&log_path).is_ok_and(|log| log.contains(no_authorizer))
    });
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    assert_eq!(log.matches(no_authorizer).count(), 1, "{log}");
}

/// A cluster this test starts with the testbed, stopped when dropped.
struct ExtraCluster {
    name: String,
    bootstrap: String,
}

impl ExtraCluster {
    fn start(name: &str, port: u16) -> ExtraCluster {
        let pid = std::process::id().to_string();
        testbed(&["start", name, "--port", &port.to_string(), "--lease", &pid]);
        let bootstrap = testbed(&["bootstrap", name]).trim().to_string();
        ExtraCluster {
            name: name.to_string(),
            bootstrap,
        }
    }
}

impl Drop for ExtraCluster {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testbed/testbed"))
            .args(["stop", &self.name])
            .status();
    }
}

fn create_topic_at(bootstrap: &str, topic: &str, partitions: i32) {
    let admin = admin(bootstrap);
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for result in runtime()
        .block_on(admin.create_topics([&new], &options))
        .expect("create topic")
    {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code}"));
    }
}

/// Writes `count` records with keys `key-<i>` to partition 0 and returns the values.
fn produce_at(bootstrap: &str, topic: &str, count: usize) -> Vec<(String, String)> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let written: Vec<(String, String)> = (0..count)
        .map(|i| (format!("key-{i}"), format!("value {i} of {topic}")))
        .collect();
    for (key, value) in &written {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key(key.as_str())
                    .payload(value.as_str()),
            )
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
        producer.poll(Duration::ZERO);
    }
    producer.flush(ADMIN_TIMEOUT).expect("flush");
    written
}

#[test]
fn hub_and_spoke_three_sources_into_one_hub_from_one_process() {
    let third = ExtraCluster::start("strait-spoke", 23092);
    let prefix = unique_topic("hub");
    let one = format!("{prefix}.one");
    let two = format!("{prefix}.two");
    let three = format!("{prefix}.three");
    create_topic(Cluster::Source, &one, 2, &[]);
    create_topic(Cluster::Legacy, &two, 2, &[]);
    create_topic_at(&third.bootstrap, &three, 1);
    produce(
        Cluster::Source,
        &one,
        &spread_records(&one, 2, 200),
        &ProduceOptions::default(),
    );
    produce(
        Cluster::Legacy,
        &two,
        &spread_records(&two, 2, 200),
        &ProduceOptions::default(),
    );
    let written = produce_at(&third.bootstrap, &three, 150);

    let text = format!(
        "clusters = S1, S2, S3, K\n\
         S1.bootstrap.servers = {s1}\n\
         S2.bootstrap.servers = {s2}\n\
         S3.bootstrap.servers = {s3}\n\
         K.bootstrap.servers = {k}\n\
         S1->K.enabled = true\n\
         S2->K.enabled = true\n\
         S3->K.enabled = true\n\
         topics = {p}\\..*\n\
         replication.factor = 1\n\
         heartbeats.replication.enabled = false\n",
        s1 = Cluster::Source.bootstrap(),
        s2 = Cluster::Legacy.bootstrap(),
        s3 = third.bootstrap,
        k = Cluster::Target.bootstrap(),
        p = regex_escape(&prefix),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut strait = Strait::start(&write_file(dir.path(), &text));
    strait.wait_for_counts(Cluster::Target, &format!("S1.{one}"), &[100, 100]);
    strait.wait_for_counts(Cluster::Target, &format!("S2.{two}"), &[100, 100]);
    strait.wait_for_counts(Cluster::Target, &format!("S3.{three}"), &[150]);
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");

    assert_same_records(
        &read_topic(Cluster::Source, &one),
        &read_topic(Cluster::Target, &format!("S1.{one}")),
        Compare::EXACT,
    );
    assert_same_records(
        &read_topic(Cluster::Legacy, &two),
        &read_topic(Cluster::Target, &format!("S2.{two}")),
        Compare::EXACT,
    );
    let copied: Vec<(String, String)> = read_topic(Cluster::Target, &format!("S3.{three}"))
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.expect("key")).unwrap(),
                String::from_utf8(r.value.expect("value")).unwrap(),
            )
        })
        .collect();
    assert_eq!(copied, written, "S3's records on the hub");
    let mut hub: Vec<String> = topics_containing(Cluster::Target.bootstrap(), &prefix)
        .into_keys()
        .collect();
    hub.sort();
    assert_eq!(
        hub,
        vec![
            format!("S1.{one}"),
            format!("S2.{two}"),
            format!("S3.{three}")
        ]
    );
}

fn start_mirror_maker(file: &Path, log: &Path) -> Child {
    let log_file = fs::File::create(log).expect("MM2 log");
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testbed/testbed"))
        .args(["tool", "target", "mirror-maker"])
        .arg(file)
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start MirrorMaker 2")
}

#[test]
fn strait_creates_the_same_target_topics_as_mirror_maker_2() {
    let prefix = unique_topic("mm2");
    let (s, t) = ("mmsrc", "mmdst");
    // Mirrored, excluded by topics.exclude, internal by MM2's default exclusion, and a
    // copy that came from the target (a cycle).
    for (topic, partitions) in [
        (format!("{prefix}.a"), 2),
        (format!("{prefix}.b-c.d"), 3),
        (format!("{prefix}.skip"), 1),
        (format!("{prefix}.x.internal"), 1),
        (format!("{t}.{prefix}.back"), 1),
    ] {
        create_topic(Cluster::Source, &topic, partitions, &[]);
    }
    let text = format!(
        "clusters = {s}, {t}\n\
         {s}.bootstrap.servers = {a}\n\
         {t}.bootstrap.servers = {b}\n\
         {s}->{t}.enabled = true\n\
         {s}->{t}.topics = .*{p}.*\n\
         {s}->{t}.topics.exclude = .*\\.skip\n\
         replication.factor = 1\n\
         heartbeats.replication.enabled = false\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         offset.storage.replication.factor = 1\n\
         config.storage.replication.factor = 1\n\
         status.storage.replication.factor = 1\n\
         sync.topic.acls.enabled = false\n",
        a = Cluster::Source.bootstrap(),
        b = Cluster::Target.bootstrap(),
        p = regex_escape(&prefix),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), &text);
    let target = Cluster::Target.bootstrap();
    let remote = |topic: &str| format!("{s}.{prefix}.{topic}");

    // MirrorMaker 2 first; it creates every new remote topic in one request.
    let mm2_log = dir.path().join("mm2.log");
    let mut mm2 = start_mirror_maker(&file, &mm2_log);
    wait_for(
        "MirrorMaker 2 creating its remote topics",
        || {
            let topics = topics_containing(target, &prefix);
            topics.contains_key(&remote("a")) || topics.contains_key(&remote("b-c.d"))
        },
        || fs::read_to_string(&mm2_log).unwrap_or_default(),
    );
    let _ = mm2.kill();
    let _ = mm2.wait();
    let by_mm2 = topics_containing(target, &prefix);

    let names: Vec<&str> = by_mm2.keys().map(String::as_str).collect();
    delete_topics(target, &names);
    wait_for(
        "the deletion of MM2's topics",
        || topics_containing(target, &prefix).is_empty(),
        String::new,
    );

    let mut strait = Strait::start(&file);
    strait.wait_until("strait creating its remote topics", || {
        let topics = topics_containing(target, &prefix);
        by_mm2.keys().all(|name| topics.contains_key(name))
    });
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    let by_strait = topics_containing(target, &prefix);
    assert_eq!(
        by_strait, by_mm2,
        "target topics: strait (left), MM2 (right)"
    );
    assert!(
        by_mm2.contains_key(&remote("a")),
        "MM2 made no remote topic: {by_mm2:?}"
    );
}

//! Consumer failover against real brokers: a group that read part of a topic on the
//! source resumes on the target after a checkpoint, reading exactly what it had not
//! read; MM2's own tools read strait's checkpoints; heartbeats; taking over from MM2.
//! The oracle is librdkafka (consumers and their committed offsets) and MM2's jars.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

fn group_consumer(cluster: Cluster, group: &str) -> BaseConsumer {
    cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("create consumer")
}

fn assign(consumer: &BaseConsumer, topic: &str, partitions: i32, offset: Offset) {
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, offset)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
}

/// (partition, key) of each record a group member reads.
type Read = Vec<(i32, String)>;

fn key_of(message: &rdkafka::message::BorrowedMessage<'_>) -> String {
    String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned()
}

fn value_of(message: &rdkafka::message::BorrowedMessage<'_>) -> String {
    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned()
}

type Identify = fn(&rdkafka::message::BorrowedMessage<'_>) -> String;

fn read_part_and_commit(topic: &str, group: &str, take: &[usize]) -> Read {
    read_part_and_commit_by(topic, group, take, key_of)
}

fn read_part_and_commit_values(topic: &str, group: &str, take: &[usize]) -> Read {
    read_part_and_commit_by(topic, group, take, value_of)
}

fn read_rest(cluster: Cluster, topic: &str, group: &str, partitions: i32) -> Read {
    read_rest_by(cluster, topic, group, partitions, key_of)
}

fn read_rest_values(cluster: Cluster, topic: &str, group: &str, partitions: i32) -> Read {
    read_rest_by(cluster, topic, group, partitions, value_of)
}

/// Group `group` reads the first `take[p]` records of each partition of `topic` on the
/// source and commits its position.
fn read_part_and_commit_by(topic: &str, group: &str, take: &[usize], identify: Identify) -> Read {
    let consumer = group_consumer(Cluster::Source, group);
    assign(&consumer, topic, take.len() as i32, Offset::Beginning);
    let mut read: Read = Vec::new();
    let mut counts = vec![0usize; take.len()];
    let mut paused = BTreeSet::new();
    let started = Instant::now();
    while paused.len() < take.len() {
        assert!(
            started.elapsed() < LIMIT,
            "the source group read {counts:?} of {take:?}"
        );
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = match result {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(_)) => continue,
            Err(error) => panic!("reading {topic} on the source: {error}"),
        };
        let partition = message.partition() as usize;
        if counts[partition] >= take[partition] {
            continue;
        }
        counts[partition] += 1;
        read.push((message.partition(), identify(&message)));
        // The position to commit is after the last record taken, so the message is
        // stored here, not by librdkafka on every poll.
        consumer.store_offset_from_message(&message).unwrap();
        if counts[partition] == take[partition] {
            let mut pause = TopicPartitionList::new();
            pause.add_partition(topic, partition as i32);
            consumer.pause(&pause).unwrap();
            paused.insert(partition);
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    read
}

/// What group `group` reads on `cluster` from its committed offsets to the end.
fn read_rest_by(
    cluster: Cluster,
    topic: &str,
    group: &str,
    partitions: i32,
    identify: Identify,
) -> Read {
    let consumer = group_consumer(cluster, group);
    assign(&consumer, topic, partitions, Offset::Stored);
    let mut unfinished: BTreeSet<i32> = (0..partitions).collect();
    let mut read = Vec::new();
    let started = Instant::now();
    while !unfinished.is_empty() {
        assert!(
            started.elapsed() < LIMIT,
            "{topic}: partitions {unfinished:?} never reached their end"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => read.push((message.partition(), identify(&message))),
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                unfinished.remove(&partition);
            }
            Some(Err(error)) => panic!("reading {topic} on {cluster:?}: {error}"),
        }
    }
    read
}

/// The offsets `group` has committed for `topic` on `cluster`.
fn committed(cluster: Cluster, topic: &str, group: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer = group_consumer(cluster, group);
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect()
}

/// Records per partition in what a group read.
fn counts_by_partition(read: &Read, partitions: i32) -> BTreeMap<i32, i64> {
    (0..partitions)
        .map(|p| (p, read.iter().filter(|(q, _)| *q == p).count() as i64))
        .collect()
}

/// Waits until the offsets of `group` on the target sit right after what it read on
/// the source. A remote partition holds the source partition's readable records in
/// order from offset 0, so that is the number of records the group read there. While
/// the mirror is behind the group its checkpoint is the conservative target end, which
/// moves forward once the mirror catches up.
fn wait_for_exact_sync(
    strait: &mut Strait,
    remote: &str,
    group: &str,
    read: &Read,
    partitions: i32,
) {
    strait.wait_for_value(
        &format!("offsets of group {group} on {remote} of the target"),
        &counts_by_partition(read, partitions),
        || committed(Cluster::Target, remote, group, partitions),
    );
}

fn failover_flow(topics: &[&str]) -> FlowFile {
    let mut flow = FlowFile::new(Cluster::Source, Cluster::Target, topics);
    flow.extra.extend(
        [
            "emit.checkpoints.interval.seconds = 1",
            "sync.group.offsets.enabled = true",
            "sync.group.offsets.interval.seconds = 1",
            "emit.heartbeats.interval.seconds = 1",
            // The testbed's clusters are shared: no heartbeat traffic unless a test
            // is about it.
            "emit.heartbeats.enabled = false",
            "checkpoints.topic.replication.factor = 1",
            "heartbeats.topic.replication.factor = 1",
            "offset-syncs.topic.replication.factor = 1",
            "offset.flush.interval.ms = 1000",
        ]
        .map(String::from),
    );
    flow
}

/// Every record the source group read plus every record the target group read is
/// the source topic, each record once.
fn assert_exact_failover(topic: &str, before: &Read, after: &Read) {
    let source: Vec<(i32, String)> = read_topic(Cluster::Source, topic)
        .into_iter()
        .map(|r| {
            (
                r.partition,
                String::from_utf8_lossy(r.key.as_deref().unwrap()).into_owned(),
            )
        })
        .collect();
    assert_exact_split(topic, &source, before, after);
}

/// `before` and `after` together are `source`, each record once.
fn assert_exact_split(topic: &str, source: &[(i32, String)], before: &Read, after: &Read) {
    let mut seen: BTreeMap<&(i32, String), usize> = BTreeMap::new();
    for record in before.iter().chain(after) {
        *seen.entry(record).or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    let missing: Vec<_> = source.iter().filter(|r| !seen.contains_key(r)).collect();
    assert!(
        duplicates.is_empty() && missing.is_empty(),
        "{topic}: {} duplicates {:?}, {} missing {:?}",
        duplicates.len(),
        duplicates.iter().take(5).collect::<Vec<_>>(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(
        seen.len(),
        source.len(),
        "{topic}: only source records were read"
    );
    assert!(
        !before.is_empty() && !after.is_empty(),
        "{topic}: the drill splits the topic"
    );
}

fn records(tag: &str, round: usize, count: usize, partitions: i32) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            NewRecord::new()
                .in_partition(i as i32 % partitions)
                .with_key(format!("{tag}-{round}-{i}"))
                .with_value(format!("{tag} round {round} record {i}"))
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Transaction {
    Commit,
    Abort,
}

/// `rounds` times: `plain` records, then one transaction of `per_transaction` records
/// for each outcome, in the order given.
fn produce_rounds(
    topic: &str,
    partitions: i32,
    rounds: std::ops::Range<usize>,
    plain: usize,
    per_transaction: usize,
    outcomes: &[Transaction],
) {
    let options = ProduceOptions::default();
    for round in rounds {
        produce(
            Cluster::Source,
            topic,
            &records("plain", round, plain, partitions),
            &options,
        );
        let steps: Vec<TxnStep> = outcomes
            .iter()
            .map(|outcome| match outcome {
                Transaction::Commit => {
                    TxnStep::Commit(records("committed", round, per_transaction, partitions))
                }
                Transaction::Abort => {
                    TxnStep::Abort(records("aborted", round, per_transaction, partitions))
                }
            })
            .collect();
        produce_transactions(Cluster::Source, topic, &steps, &options);
    }
}

#[test]
fn a_group_fails_over_exactly_across_transactions() {
    const PARTITIONS: i32 = 2;
    let topic = unique_topic("failover-txn");
    let group = unique_topic("failover-group");
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    produce_rounds(
        &topic,
        PARTITIONS,
        0..3,
        40,
        20,
        &[Transaction::Commit, Transaction::Abort],
    );
    // 20 + 10: the first partition stops right after a transaction (its position is
    // the commit marker), the second inside one.
    let before = read_part_and_commit(&topic, &group, &[30, 25]);

    let dir = tempfile::tempdir().unwrap();
    let flow = failover_flow(&[&topic]);
    let remote = flow.remote(&topic);
    let mut strait = Strait::start(&flow.write(dir.path()));
    wait_for_exact_sync(&mut strait, &remote, &group, &before, PARTITIONS);
    let after = read_rest(Cluster::Target, &remote, &group, PARTITIONS);
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    assert_exact_failover(&topic, &before, &after);

    // Each map write supersedes the previous one of its partition: the topic must roll
    // segments often enough for compaction to drop them.
    let maps_topic = format!("strait.offset-maps.{}.internal", flow.source_alias);
    let described = kafka_tool(
        Cluster::Target,
        "configs",
        &[
            "--bootstrap-server",
            Cluster::Target.bootstrap(),
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            &maps_topic,
        ],
    );
    let described = String::from_utf8_lossy(&described.stdout);
    assert!(
        described.contains("cleanup.policy=compact") && described.contains("segment.ms=3600000"),
        "{maps_topic} configs:\n{described}"
    );
}

/// MM2's `RemoteClusterUtils.translateOffsets` for `group`, read from the
/// checkpoints on the target: sorted `topic partition offset` lines.
fn mm2_translate(source_alias: &str, group: &str) -> String {
    let classpath = testbed(&["classpath", &Cluster::Target.kafka_version()]);
    let caller = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testbed/mm2-translate/TranslateOffsets.java"
    );
    let output = std::process::Command::new("java")
        .args([
            "-cp",
            classpath.trim(),
            caller,
            Cluster::Target.bootstrap(),
            source_alias,
            group,
        ])
        .output()
        .expect("run java");
    assert!(
        output.status.success(),
        "TranslateOffsets failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn mm2_reads_straits_checkpoints_as_strait_translates() {
    const PARTITIONS: i32 = 3;
    let topic = unique_topic("failover-mm2-tools");
    let group = unique_topic("failover-mm2-group");
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    produce_rounds(
        &topic,
        PARTITIONS,
        0..2,
        60,
        30,
        &[Transaction::Abort, Transaction::Commit],
    );
    read_part_and_commit(&topic, &group, &[5, 25, 50]);

    let dir = tempfile::tempdir().unwrap();
    let flow = failover_flow(&[&topic]);
    let config = flow.write(dir.path());
    let remote = flow.remote(&topic);
    let mut strait = Strait::start(&config);
    let counts: Vec<i64> = (0..PARTITIONS).map(|_| 60).collect();
    strait.wait_for_counts(Cluster::Target, &remote, &counts);
    let config = config.to_str().unwrap();
    let translate = || {
        let (code, stdout, stderr) =
            strait_command(&["offsets", config, "translate", "--group", &group]);
        assert_eq!(code, Some(0), "strait offsets translate failed: {stderr}");
        stdout
    };
    // The offset maps persist at each progress commit (every second here).
    strait.wait_until(
        "strait offsets translate answers for every partition",
        || translate().lines().count() == PARTITIONS as usize,
    );
    let expected = translate();
    // Checkpoints land every second; the one written after the copy is complete is
    // the exact one.
    strait.wait_until(
        "MM2's translateOffsets agrees with strait offsets translate",
        || mm2_translate(&flow.source_alias, &group) == expected,
    );
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");

    // The translation is where the group resumes with nothing read twice or skipped.
    let synced = committed(Cluster::Target, &remote, &group, PARTITIONS);
    let printed: BTreeMap<i32, i64> = expected
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields[0], remote);
            (fields[1].parse().unwrap(), fields[2].parse().unwrap())
        })
        .collect();
    assert_eq!(
        printed, synced,
        "the group synced to the target resumes at the translation"
    );

    // A single offset: the first committed record after an aborted transaction.
    let (code, stdout, stderr) = strait_command(&[
        "offsets",
        config,
        "translate",
        "--topic",
        &topic,
        "--partition",
        "0",
        "--offset",
        "0",
    ]);
    assert_eq!(
        (code, stdout.trim()),
        (Some(0), format!("{remote} 0 0").as_str()),
        "{stderr}"
    );
}

/// Heartbeat records (key: source alias, target alias) on `topic` of `cluster`.
fn heartbeats(cluster: Cluster, topic: &str) -> Vec<(String, String, i64)> {
    fn string(bytes: &[u8], at: &mut usize) -> String {
        let len = i16::from_be_bytes([bytes[*at], bytes[*at + 1]]) as usize;
        let text = String::from_utf8_lossy(&bytes[*at + 2..*at + 2 + len]).into_owned();
        *at += 2 + len;
        text
    }
    // The topic appears once strait has prepared the flow.
    if try_end_offsets(cluster, topic).is_none() {
        return Vec::new();
    }
    read_topic(cluster, topic)
        .into_iter()
        .map(|record| {
            let key = record.key.expect("heartbeat key");
            let value = record.value.expect("heartbeat value");
            let mut at = 0;
            let source = string(&key, &mut at);
            let target = string(&key, &mut at);
            assert_eq!(at, key.len(), "heartbeat key has two strings");
            assert_eq!(
                value.len(),
                10,
                "heartbeat value: INT16 version, INT64 timestamp"
            );
            assert_eq!(&value[..2], &[0, 0], "heartbeat version 0");
            let timestamp = i64::from_be_bytes(value[2..].try_into().unwrap());
            (source, target, timestamp)
        })
        .collect()
}

#[test]
fn heartbeats_of_a_flow_land_on_its_targets_heartbeats_topic() {
    let unique = unique_topic("hb").replace(['-', '.', '_'], "");
    let (a, b) = (format!("{unique}a"), format!("{unique}b"));
    let dir = tempfile::tempdir().unwrap();
    // A topic that does not exist: the flow copies nothing, it only beats.
    let nothing = unique_topic("hb-none");
    let mut flow = failover_flow(&[&nothing]);
    flow.source_alias = a.clone();
    flow.target_alias = b.clone();
    flow.extra
        .retain(|line| !line.starts_with("emit.heartbeats.enabled"));
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut strait = Strait::start(&flow.write(dir.path()));
    // As MM2's MirrorHeartbeatTask: key (source alias, target alias) on the target's
    // `heartbeats`, one per interval; a flow from b then replicates them as
    // `b.heartbeats`.
    let beats = || -> Vec<i64> {
        heartbeats(Cluster::Target, "heartbeats")
            .into_iter()
            .filter(|(s, t, _)| *s == a && *t == b)
            .map(|(_, _, timestamp)| timestamp)
            .collect()
    };
    strait.wait_until("two heartbeats of the flow on the target", || {
        beats().len() >= 2
    });
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    let beats = beats();
    let stopped = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        beats.iter().all(|&t| (started..=stopped).contains(&t)),
        "heartbeat timestamps {beats:?} are the time of writing, within {started}..{stopped}"
    );
    assert!(
        beats.windows(2).all(|w| w[0] < w[1]),
        "{beats:?} move forward"
    );
}

#[test]
fn heartbeats_of_a_to_b_and_b_to_a_show_each_path_as_mm2_documents() {
    let (a, b) = (unique_alias("a"), unique_alias("b"));
    let dir = tempfile::tempdir().unwrap();
    // Each flow copies its source's `heartbeats` topic alone. MM2's
    // heartbeats.replication copies every `*.heartbeats` topic of the source, and on
    // clusters that every test shares under ever new aliases, cycle prevention cannot
    // tell those copies apart: each run would copy all earlier copies again.
    let text = format!(
        "clusters = {a}, {b}\n\
         {a}.bootstrap.servers = {source}\n\
         {b}.bootstrap.servers = {target}\n\
         {a}->{b}.enabled = true\n\
         {b}->{a}.enabled = true\n\
         topics = heartbeats\n\
         heartbeats.replication.enabled = false\n\
         replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         emit.heartbeats.interval.seconds = 1\n\
         refresh.topics.interval.seconds = 1\n\
         strait.status.interval.seconds = 1\n",
        source = Cluster::Source.bootstrap(),
        target = Cluster::Target.bootstrap(),
    );
    let config = dir.path().join("mirror.properties");
    std::fs::write(&config, text).unwrap();
    let mut strait = Strait::start(&config);
    // As MM2: each flow beats on its target's `heartbeats`, and a flow replicates its
    // source's `heartbeats` as `<source>.heartbeats`, so B's `a.heartbeats` holds
    // B->A's beats (the path B->A->B) and A's `b.heartbeats` holds A->B's.
    let has_beat = |cluster: Cluster, topic: &str, from: &str, to: &str| {
        heartbeats(cluster, topic)
            .iter()
            .any(|(s, t, _)| s == from && t == to)
    };
    strait.wait_until("A->B and B->A beat on their targets", || {
        has_beat(Cluster::Target, "heartbeats", &a, &b)
            && has_beat(Cluster::Source, "heartbeats", &b, &a)
    });
    strait.wait_until("each flow replicated the other's heartbeats", || {
        has_beat(Cluster::Target, &format!("{a}.heartbeats"), &b, &a)
            && has_beat(Cluster::Source, &format!("{b}.heartbeats"), &a, &b)
    });
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    // Flows of other tests that replicate heartbeats would copy these forever after.
    delete_topic(Cluster::Target, &format!("{a}.heartbeats"));
    delete_topic(Cluster::Source, &format!("{b}.heartbeats"));
}

/// Whether the log cleaner removed records of `topic` (its offsets have holes).
fn has_compaction_holes(topic: &str) -> bool {
    let mut records = read_topic(Cluster::Source, topic);
    records.sort_by_key(|r| (r.partition, r.offset));
    records
        .windows(2)
        .any(|w| w[0].partition == w[1].partition && w[1].offset > w[0].offset + 1)
}

#[test]
fn a_group_fails_over_exactly_across_a_compacted_topic() {
    const PARTITIONS: i32 = 2;
    let topic = unique_topic("failover-compacted");
    let group = unique_topic("failover-compacted-group");
    create_topic(Cluster::Source, &topic, PARTITIONS, COMPACTED_AT_ONCE);
    let options = ProduceOptions {
        linger_ms: 50,
        ..ProduceOptions::default()
    };
    for round in 0..30 {
        let batch: Vec<NewRecord> = (0..60)
            .map(|i| {
                NewRecord::new()
                    .in_partition(i % PARTITIONS)
                    // Keys written once survive between keys rewritten every
                    // round, so compaction leaves holes inside the log.
                    .with_key(if i % 3 == 0 {
                        format!("once-{round}-{i}")
                    } else {
                        format!("key-{}", i % 25)
                    })
                    .with_value(format!("round {round} value {i}"))
            })
            .collect();
        produce(Cluster::Source, &topic, &batch, &options);
        std::thread::sleep(Duration::from_millis(150));
    }
    let started = Instant::now();
    while !has_compaction_holes(&topic) {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the source's log cleaner did not compact {topic}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The source must not change while it is compared: stop the cleaner.
    stop_log_cleaner(Cluster::Source, &topic);
    // Keys repeat, so the drill compares (partition, key, value) sets below.
    let surviving = read_topic(Cluster::Source, &topic);
    let per_partition = |p: i32| surviving.iter().filter(|r| r.partition == p).count();
    let before = read_part_and_commit_values(
        &topic,
        &group,
        &[per_partition(0) / 3, per_partition(1) / 2],
    );

    let dir = tempfile::tempdir().unwrap();
    let flow = failover_flow(&[&topic]);
    let remote = flow.remote(&topic);
    let mut strait = Strait::start(&flow.write(dir.path()));
    wait_for_exact_sync(&mut strait, &remote, &group, &before, PARTITIONS);
    let after = read_rest_values(Cluster::Target, &remote, &group, PARTITIONS);
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    let source: Vec<(i32, String)> = surviving
        .iter()
        .map(|r| {
            (
                r.partition,
                String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned(),
            )
        })
        .collect();
    assert_exact_split(&topic, &source, &before, &after);
}

/// A running MirrorMaker 2 (dedicated mode) from the testbed's Kafka jars.
struct MirrorMaker2 {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl MirrorMaker2 {
    fn start(
        dir: &std::path::Path,
        source_alias: &str,
        target_alias: &str,
        topic: &str,
        extra: &[&str],
    ) -> Self {
        let properties = format!(
            "clusters = {source_alias}, {target_alias}\n\
             {source_alias}.bootstrap.servers = {source}\n\
             {target_alias}.bootstrap.servers = {target}\n\
             {source_alias}->{target_alias}.enabled = true\n\
             {source_alias}->{target_alias}.topics = {topic}\n\
             replication.factor = 1\n\
             checkpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\n\
             offset.storage.replication.factor = 1\n\
             config.storage.replication.factor = 1\n\
             status.storage.replication.factor = 1\n\
             emit.heartbeats.enabled = false\n\
             heartbeats.replication.enabled = false\n\
             offset.flush.interval.ms = 1000\n",
            source = Cluster::Source.bootstrap(),
            target = Cluster::Target.bootstrap(),
        );
        let properties = format!("{properties}{}\n", extra.join("\n"));
        let file = dir.join("mm2.properties");
        std::fs::write(&file, properties).unwrap();
        let log = dir.join("mm2.log");
        let out = std::fs::File::create(&log).unwrap();
        let child =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testbed/testbed"))
                .args(["tool", "target", "mirror-maker", file.to_str().unwrap()])
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("start MirrorMaker 2");
        MirrorMaker2 { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM: MM2 stops its tasks and commits their offsets.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < LIMIT,
                "MM2 did not stop; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for MirrorMaker2 {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn strait_takes_over_from_mm2_without_copying_twice() {
    const PARTITIONS: i32 = 2;
    let topic = unique_topic("takeover");
    let unique = topic.replace(['-', '.', '_'], "");
    let (source_alias, target_alias) = (format!("{unique}s"), format!("{unique}t"));
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    let options = ProduceOptions::default();
    produce(
        Cluster::Source,
        &topic,
        &records("by-mm2", 0, 200, PARTITIONS),
        &options,
    );

    let dir = tempfile::tempdir().unwrap();
    let remote = format!("{source_alias}.{topic}");
    let mm2 = MirrorMaker2::start(
        dir.path(),
        &source_alias,
        &target_alias,
        &topic,
        &[
            "emit.checkpoints.enabled = false",
            "sync.group.offsets.enabled = false",
        ],
    );
    let started = Instant::now();
    while try_end_offsets(Cluster::Target, &remote) != Some(vec![100; PARTITIONS as usize]) {
        assert!(
            started.elapsed() < LIMIT,
            "MM2 did not copy {topic}; log:\n{}",
            mm2.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    mm2.stop();
    produce(
        Cluster::Source,
        &topic,
        &records("by-strait", 1, 100, PARTITIONS),
        &options,
    );

    let mut flow = FlowFile::new(Cluster::Source, Cluster::Target, &[&topic]);
    flow.source_alias = source_alias.clone();
    flow.target_alias = target_alias;
    flow.extra.push("emit.checkpoints.enabled = false".into());
    flow.extra.push("emit.heartbeats.enabled = false".into());
    let mut strait = Strait::start(&flow.write(dir.path()));
    strait.wait_for_counts(Cluster::Target, &remote, &[150, 150]);
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    assert!(
        log.contains("where MM2 stopped"),
        "strait says it took over:\n{log}"
    );
    let source = read_topic(Cluster::Source, &topic);
    let target = read_topic(Cluster::Target, &remote);
    assert_same_records(&source, &target, Compare::IGNORE_OFFSETS);
}

/// What a failover got wrong, for the figures printed next to MM2's.
#[derive(Debug, Default, PartialEq, Eq)]
struct FailoverErrors {
    /// Records read on both clusters, or twice on the target.
    duplicates: usize,
    /// Source records read on neither.
    missing: usize,
    /// Records read on the target that a read_committed consumer of the source never
    /// sees (aborted transactions).
    foreign: usize,
}

fn failover_errors(source: &[(i32, String)], before: &Read, after: &Read) -> FailoverErrors {
    let mut seen: BTreeMap<&(i32, String), usize> = BTreeMap::new();
    for record in before.iter().chain(after) {
        *seen.entry(record).or_default() += 1;
    }
    let readable: BTreeSet<&(i32, String)> = source.iter().collect();
    FailoverErrors {
        duplicates: seen.values().map(|n| n - 1).sum(),
        missing: source.iter().filter(|r| !seen.contains_key(r)).count(),
        foreign: after.iter().filter(|r| !readable.contains(r)).count(),
    }
}

#[test]
fn the_drill_with_mm2_on_the_same_data_re_reads_where_strait_does_not() {
    const PARTITIONS: i32 = 2;
    let topic = unique_topic("failover-vs-mm2");
    let group = unique_topic("failover-vs-mm2-group");
    let unique = topic.replace(['-', '.', '_'], "");
    let (mm2_source, mm2_target) = (format!("{unique}s"), format!("{unique}t"));
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    produce_rounds(
        &topic,
        PARTITIONS,
        0..2,
        200,
        40,
        &[Transaction::Commit, Transaction::Abort],
    );
    let source: Vec<(i32, String)> = read_topic(Cluster::Source, &topic)
        .into_iter()
        .map(|r| {
            (
                r.partition,
                String::from_utf8_lossy(r.key.as_deref().unwrap()).into_owned(),
            )
        })
        .collect();
    let visible: Vec<i64> = (0..PARTITIONS)
        .map(|p| source.iter().filter(|(q, _)| *q == p).count() as i64)
        .collect();

    // strait and MM2 mirror the same topic to two remote topics; each syncs the
    // group's offsets for its own remote topic. The group reads on the source once
    // both have copied everything, so each translates with all it will ever know.
    let dir = tempfile::tempdir().unwrap();
    let flow = failover_flow(&[&topic]);
    let strait_remote = flow.remote(&topic);
    let mut strait = Strait::start(&flow.write(dir.path()));
    let mm2_remote = format!("{mm2_source}.{topic}");
    let mm2 = MirrorMaker2::start(
        dir.path(),
        &mm2_source,
        &mm2_target,
        &topic,
        &[
            "emit.checkpoints.interval.seconds = 1",
            "sync.group.offsets.enabled = true",
            "sync.group.offsets.interval.seconds = 1",
            "refresh.groups.interval.seconds = 1",
        ],
    );
    strait.wait_for_counts(Cluster::Target, &strait_remote, &visible);
    // MM2's consumers read uncommitted by default: it copies aborted records too.
    let uncommitted = read_topic_with(Cluster::Source, &topic, Isolation::ReadUncommitted);
    let mm2_copy: Vec<i64> = (0..PARTITIONS)
        .map(|p| uncommitted.iter().filter(|r| r.partition == p).count() as i64)
        .collect();
    strait.wait_until("MM2 copied the topic", || {
        try_end_offsets(Cluster::Target, &mm2_remote).as_ref() == Some(&mm2_copy)
    });
    let before = read_part_and_commit(&topic, &group, &[130, 170]);
    wait_for_exact_sync(&mut strait, &strait_remote, &group, &before, PARTITIONS);
    strait.wait_until("MM2 synced the group's offsets", || {
        committed(Cluster::Target, &mm2_remote, &group, PARTITIONS).len() == PARTITIONS as usize
    });
    let after_strait = read_rest(Cluster::Target, &strait_remote, &group, PARTITIONS);
    let after_mm2 = read_rest(Cluster::Target, &mm2_remote, &group, PARTITIONS);
    mm2.stop();
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");

    let strait_errors = failover_errors(&source, &before, &after_strait);
    let mm2_errors = failover_errors(&source, &before, &after_mm2);
    println!(
        "failover drill: the group read {} of {} records on the source, then resumed on the \
         target: strait {strait_errors:?}, MM2 {mm2_errors:?}",
        before.len(),
        source.len()
    );
    assert_eq!(strait_errors, FailoverErrors::default());
}

#[test]
fn a_planned_switch_over_commits_the_translated_offsets_with_strait_offsets_failover() {
    const PARTITIONS: i32 = 2;
    let topic = unique_topic("switch-over");
    let group = unique_topic("switch-over-group");
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    produce_rounds(
        &topic,
        PARTITIONS,
        0..1,
        60,
        20,
        &[Transaction::Abort, Transaction::Commit],
    );
    let before = read_part_and_commit(&topic, &group, &[35, 10]);

    let dir = tempfile::tempdir().unwrap();
    let mut flow = failover_flow(&[&topic]);
    flow.extra
        .retain(|line| !line.starts_with("sync.group.offsets"));
    let config = flow.write(dir.path());
    let config = config.to_str().unwrap();
    let remote = flow.remote(&topic);
    let mut strait = Strait::start(std::path::Path::new(config));
    strait.wait_for_counts(Cluster::Target, &remote, &[40, 40]);
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    // A second run copies the rest: the group's positions, in what the first run
    // copied, translate only if the second run read the first run's maps back.
    produce(
        Cluster::Source,
        &topic,
        &records("later", 1, 40, PARTITIONS),
        &ProduceOptions::default(),
    );
    let mut strait = Strait::start(std::path::Path::new(config));
    strait.wait_for_counts(Cluster::Target, &remote, &[60, 60]);
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");

    let (code, dry_run, stderr) =
        strait_command(&["offsets", config, "failover", "--group", &group]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dry_run.lines().count(), PARTITIONS as usize, "{dry_run}");
    assert!(
        committed(Cluster::Target, &remote, &group, PARTITIONS).is_empty(),
        "a dry run commits nothing"
    );
    let (code, applied, stderr) =
        strait_command(&["offsets", config, "failover", "--group", &group, "--apply"]);
    assert_eq!((code, &applied), (Some(0), &dry_run), "{stderr}");
    let printed: BTreeMap<i32, i64> = applied
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields[1].parse().unwrap(), fields[2].parse().unwrap())
        })
        .collect();
    assert_eq!(
        committed(Cluster::Target, &remote, &group, PARTITIONS),
        printed
    );

    let (code, shown, stderr) = strait_command(&["offsets", config, "--group", &group]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        shown.lines().skip(1).all(|line| line.ends_with(" 0")),
        "the target group is where the source group is, no lag:\n{shown}"
    );

    let after = read_rest(Cluster::Target, &remote, &group, PARTITIONS);
    assert_exact_failover(&topic, &before, &after);
}

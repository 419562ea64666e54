//! strait mirrors a flow between real brokers; librdkafka (and Kafka's own log dump tool)
//! check the target record by record against the source.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{
    assert_same_records, base_timestamp, counts_per_partition, create_topic, end_offsets,
    kafka_tool, produce, produce_transactions, read_topic, stop_log_cleaner, strait_command,
    unique_topic, Cluster, Compare, Compression, FlowFile, NewRecord, ProduceOptions, Record,
    Strait, TxnStep, COMPACTED_AT_ONCE,
};

/// Keys, null keys, null and empty values, headers (repeated keys, null values),
/// explicit timestamps, spread over `partitions` partitions.
fn varied_records(count: usize, partitions: i32, tag: &str) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            let mut record = NewRecord::new().in_partition(i as i32 % partitions);
            if i % 7 != 0 {
                record = record.with_key(format!("key-{}", i % 5_000));
            }
            match i % 31 {
                0 => {}
                1 => record = record.with_value(""),
                _ => record = record.with_value(format!("{tag}-{i}-{}", "v".repeat(i % 90))),
            }
            if i % 3 == 1 {
                record = record.with_header("origin", tag);
            }
            if i % 3 == 2 {
                record = record
                    .with_header("dup", "a")
                    .with_header("dup", "b")
                    .with_null_header("none");
            }
            record.with_timestamp(base_timestamp() + i as i64)
        })
        .collect()
}

/// Runs strait on one flow until each topic's copy holds the records of `expected`
/// (per partition), stops it with SIGTERM and returns strait's log.
fn mirror_until_copied(flow: &FlowFile, expected: &[(&str, &[Record], i32)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut strait = Strait::start(&flow.write(dir.path()));
    for (topic, records, partitions) in expected {
        strait.wait_for_counts(
            flow.target,
            &flow.remote(topic),
            &counts_per_partition(records, *partitions),
        );
    }
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    log
}

/// One batch as Kafka's DumpLogSegments describes it: records, codec, bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredBatch {
    count: u64,
    codec: String,
    size: u64,
    /// lastOffset - baseOffset + 1 differs from count after compaction.
    offset_span: u64,
}

/// The batches of every partition of `topic`, read from the broker's own log files
/// with Kafka's tools (the broker names its log directory).
fn stored_batches(cluster: Cluster, topic: &str) -> BTreeMap<i32, Vec<StoredBatch>> {
    let output = kafka_tool(
        cluster,
        "log-dirs",
        &[
            "--bootstrap-server",
            cluster.bootstrap(),
            "--describe",
            "--topic-list",
            topic,
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let log_dir = regex::Regex::new(r#""logDir":"([^"]+)""#)
        .unwrap()
        .captures(&stdout)
        .unwrap_or_else(|| panic!("no logDir in log-dirs output: {stdout}"))[1]
        .to_string();
    let field = |line: &str, name: &str| -> String {
        let start = line
            .find(&format!("{name}: "))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            + name.len()
            + 2;
        line[start..].split(' ').next().unwrap().to_string()
    };
    let mut batches = BTreeMap::new();
    for partition in 0..end_offsets(cluster, topic).len() as i32 {
        let dir = std::path::Path::new(&log_dir).join(format!("{topic}-{partition}"));
        let mut segments: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "log"))
            .collect();
        segments.sort();
        let mut list = Vec::new();
        for segment in segments {
            let dump = kafka_tool(cluster, "dump-log", &["--files", segment.to_str().unwrap()]);
            for line in String::from_utf8_lossy(&dump.stdout).lines() {
                if !line.starts_with("baseOffset:") {
                    continue;
                }
                let base: u64 = field(line, "baseOffset").parse().unwrap();
                let last: u64 = field(line, "lastOffset").parse().unwrap();
                list.push(StoredBatch {
                    count: field(line, "count").parse().unwrap(),
                    codec: field(line, "compresscodec"),
                    size: field(line, "size").parse().unwrap(),
                    offset_span: last - base + 1,
                });
            }
        }
        batches.insert(partition, list);
    }
    batches
}

#[test]
fn every_codec_arrives_record_by_record_and_the_target_keeps_the_compressed_bytes() {
    const PARTITIONS: i32 = 8;
    const RECORDS: usize = 200_000;
    let topics: Vec<(Compression, String)> = Compression::ALL
        .iter()
        .map(|codec| {
            (
                *codec,
                unique_topic(&format!("codec-{}", codec.config_name())),
            )
        })
        .collect();
    let mut expected = HashMap::new();
    for (codec, topic) in &topics {
        create_topic(Cluster::Source, topic, PARTITIONS, &[]);
        let options = ProduceOptions {
            compression: *codec,
            linger_ms: 20,
            batch_size: 64 * 1024,
            ..ProduceOptions::default()
        };
        produce(
            Cluster::Source,
            topic,
            &varied_records(RECORDS, PARTITIONS, topic),
            &options,
        );
        expected.insert(topic.clone(), read_topic(Cluster::Source, topic));
    }

    let names: Vec<&str> = topics.iter().map(|(_, t)| t.as_str()).collect();
    let flow = FlowFile::new(Cluster::Source, Cluster::Target, &names);
    let wanted: Vec<(&str, &[Record], i32)> = topics
        .iter()
        .map(|(_, t)| (t.as_str(), expected[t].as_slice(), PARTITIONS))
        .collect();
    mirror_until_copied(&flow, &wanted);

    for (codec, topic) in &topics {
        let source = &expected[topic];
        assert_eq!(
            source.len(),
            RECORDS,
            "{topic}: the source holds what was produced"
        );
        let target = read_topic(Cluster::Target, &flow.remote(topic));
        assert_same_records(source, &target, Compare::EXACT);

        let source_batches = stored_batches(Cluster::Source, topic);
        let target_batches = stored_batches(Cluster::Target, &flow.remote(topic));
        assert_eq!(
            target_batches, source_batches,
            "{codec:?}: the target's batches (records, codec, bytes) must be the source's"
        );
        // Named in full when it fails: once in CI (2026-11-23) a source batch was not of
        // the codec asked for, and a producer may store a batch uncompressed when
        // compression would not shrink it.
        let other_codecs: Vec<(&i32, &StoredBatch)> = source_batches
            .iter()
            .flat_map(|(partition, batches)| batches.iter().map(move |b| (partition, b)))
            .filter(|(_, b)| b.codec != codec.config_name())
            .collect();
        assert!(
            other_codecs.is_empty(),
            "{codec:?}: the source topic holds {codec:?} batches, but these (partition, batch) are not: {other_codecs:?}"
        );
    }
}

#[test]
fn transactions_arrive_committed_only_without_control_records() {
    const PARTITIONS: i32 = 3;
    let topic = unique_topic("txn");
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    let options = ProduceOptions::default();
    let batch = |round: usize, label: &str| -> Vec<NewRecord> {
        (0..300)
            .map(|i| {
                NewRecord::new()
                    .in_partition(i % PARTITIONS)
                    .with_key(format!("{label}-{round}-{i}"))
                    .with_value(format!("{label} round {round} record {i}"))
                    .with_timestamp(base_timestamp() + (round * 1_000 + i as usize) as i64)
            })
            .collect()
    };
    for round in 0..4 {
        produce(Cluster::Source, &topic, &batch(round, "plain"), &options);
        produce_transactions(
            Cluster::Source,
            &topic,
            &[
                TxnStep::Commit(batch(round, "committed")),
                TxnStep::Abort(batch(round, "aborted")),
                TxnStep::Commit(batch(round, "committed-again")),
            ],
            &options,
        );
    }
    let source = read_topic(Cluster::Source, &topic);
    assert_eq!(source.len(), 4 * 900, "plain and committed records only");

    let flow = FlowFile::new(Cluster::Source, Cluster::Target, &[&topic]);
    mirror_until_copied(&flow, &[(&topic, &source, PARTITIONS)]);

    let target = read_topic(Cluster::Target, &flow.remote(&topic));
    assert_same_records(&source, &target, Compare::IGNORE_OFFSETS);
    assert!(
        target
            .iter()
            .all(|r| !String::from_utf8_lossy(r.key.as_deref().unwrap()).starts_with("aborted")),
        "no aborted record reaches the target"
    );
    let stored = stored_batches(Cluster::Target, &flow.remote(&topic));
    let target_records: u64 = stored.values().flatten().map(|b| b.count).sum();
    assert_eq!(
        target_records,
        target.len() as u64,
        "the target log holds no control records"
    );
}

#[test]
fn a_compacted_topic_arrives_with_its_surviving_records_in_order() {
    const PARTITIONS: i32 = 2;
    let topic = unique_topic("compacted");
    create_topic(Cluster::Source, &topic, PARTITIONS, COMPACTED_AT_ONCE);
    let options = ProduceOptions {
        linger_ms: 50,
        ..ProduceOptions::default()
    };
    let mut produced = 0;
    for round in 0..30 {
        let records: Vec<NewRecord> = (0..100)
            .map(|i| {
                NewRecord::new()
                    .in_partition(i % PARTITIONS)
                    .with_key(format!("key-{}", i % 40))
                    .with_value(format!("round {round} value {i}"))
                    .with_header("round", round.to_string())
                    .with_timestamp(base_timestamp() + round * 1_000 + i as i64)
            })
            .collect();
        produced += records.len();
        produce(Cluster::Source, &topic, &records, &options);
        std::thread::sleep(std::time::Duration::from_millis(150));
    }

    // Wait for the cleaner to remove records from inside batches, then stop it, so the
    // source no longer changes while it is being compared.
    let started = std::time::Instant::now();
    loop {
        let batches = stored_batches(Cluster::Source, &topic);
        if batches
            .values()
            .flatten()
            .any(|b| b.count > 0 && b.count < b.offset_span)
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the source's log cleaner did not compact {topic}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    stop_log_cleaner(Cluster::Source, &topic);
    let source = read_topic(Cluster::Source, &topic);
    assert!(source.len() < produced, "compaction removed records");

    let flow = FlowFile::new(Cluster::Source, Cluster::Target, &[&topic]);
    let log = mirror_until_copied(&flow, &[(&topic, &source, PARTITIONS)]);
    assert!(
        log.contains("compacted"),
        "the status line counts compacted batches:\n{log}"
    );

    let target = read_topic(Cluster::Target, &flow.remote(&topic));
    assert_same_records(&source, &target, Compare::IGNORE_OFFSETS);
}

/// With more fetch connections than partitions, strait reads each partition ahead of
/// itself on several connections at offsets estimated from the bytes per offset (what
/// fills a long link when partitions are few). Answers then arrive out of order, start
/// inside transactions, overlap or leave gaps; the target must still get every
/// committed record once, in order, and no aborted one.
#[test]
fn partitions_read_ahead_on_many_connections_arrive_whole_and_in_order() {
    const PARTITIONS: i32 = 2;
    let topic = unique_topic("read-ahead");
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    // Small batches, so that one fetch holds many and estimates have room to miss.
    let options = ProduceOptions {
        batch_size: 4_000,
        ..ProduceOptions::default()
    };
    for round in 0..6 {
        produce(
            Cluster::Source,
            &topic,
            &varied_records(1_500, PARTITIONS, &format!("plain{round}")),
            &options,
        );
        produce_transactions(
            Cluster::Source,
            &topic,
            &[
                TxnStep::Commit(varied_records(
                    500,
                    PARTITIONS,
                    &format!("committed{round}"),
                )),
                TxnStep::Abort(varied_records(500, PARTITIONS, &format!("aborted{round}"))),
                TxnStep::Commit(varied_records(500, PARTITIONS, &format!("again{round}"))),
            ],
            &options,
        );
    }
    let source = read_topic(Cluster::Source, &topic);
    assert_eq!(source.len(), 6 * 2_500, "plain and committed records only");

    let mut flow = FlowFile::new(Cluster::Source, Cluster::Target, &[&topic]);
    // Six connections per partition, fetches of 64 KiB.
    flow.extra
        .push("strait.fetch.connections.per.broker = 12".into());
    flow.extra.push(format!(
        "{}.consumer.max.partition.fetch.bytes = 65536",
        flow.source_alias
    ));
    let log = mirror_until_copied(&flow, &[(&topic, &source, PARTITIONS)]);
    let read_ahead: u64 = log
        .lines()
        .filter_map(|line| line.split(", read ahead ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        read_ahead > 0,
        "no fetch was read ahead, so this test proved nothing:\n{log}"
    );

    let target = read_topic(Cluster::Target, &flow.remote(&topic));
    assert_same_records(&source, &target, Compare::IGNORE_OFFSETS);
    assert!(
        !target.iter().any(|r| r
            .value
            .as_deref()
            .is_some_and(|v| v.starts_with(b"aborted"))),
        "no aborted record reaches the target"
    );
}

#[test]
fn batches_above_the_targets_limit_are_split_and_large_records_pass() {
    const PARTITIONS: i32 = 1;
    let topic = unique_topic("large");
    create_topic(
        Cluster::Source,
        &topic,
        PARTITIONS,
        &[("max.message.bytes", "8000000")],
    );
    // One record just under the target's default max.message.bytes (1048588 for the
    // whole batch), then a batch of 40 x 100 KB records: 4 MB, four times the target's limit.
    let near_limit = NewRecord::new()
        .with_key("near-limit")
        .with_value(vec![b'n'; 1_048_000])
        .with_timestamp(base_timestamp());
    let big_batch: Vec<NewRecord> = (0..40)
        .map(|i| {
            NewRecord::new()
                .with_key(format!("big-{i}"))
                .with_value(vec![b'a' + (i % 26) as u8; 100_000])
                .with_timestamp(base_timestamp() + 1 + i as i64)
        })
        .collect();
    let options = ProduceOptions {
        linger_ms: 500,
        batch_size: 6_000_000,
        max_request_bytes: 7_000_000,
        ..ProduceOptions::default()
    };
    produce(Cluster::Source, &topic, &[near_limit], &options);
    produce(Cluster::Source, &topic, &big_batch, &options);
    let source_batches = stored_batches(Cluster::Source, &topic);
    assert!(
        source_batches[&0].iter().any(|b| b.size > 1_048_588),
        "the source holds a batch above the target's limit: {source_batches:?}"
    );
    let source = read_topic(Cluster::Source, &topic);

    // The target keeps Kafka's default limit: its topic exists before strait starts,
    // and config sync (which would copy the source's 8 MB limit, as MM2 does) is off.
    let mut flow = FlowFile::new(Cluster::Source, Cluster::Target, &[&topic]);
    flow.extra.push("sync.topic.configs.enabled = false".into());
    create_topic(Cluster::Target, &flow.remote(&topic), PARTITIONS, &[]);
    mirror_until_copied(&flow, &[(&topic, &source, PARTITIONS)]);

    let target = read_topic(Cluster::Target, &flow.remote(&topic));
    assert_same_records(&source, &target, Compare::EXACT);
    let target_batches = stored_batches(Cluster::Target, &flow.remote(&topic));
    assert!(
        target_batches[&0].iter().all(|b| b.size <= 1_048_588),
        "every target batch fits the target's limit: {target_batches:?}"
    );
}

#[test]
fn malformed_property_files_are_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.properties");
    std::fs::write(
        &file,
        "clusters = A, B\nA.bootstrap.servers = localhost\nB.bootstrap.servers = b:9092\nA->C.enabled = true\n",
    )
    .unwrap();
    for command in ["run", "check"] {
        let (code, _stdout, stderr) = strait_command(&[command, file.to_str().unwrap()]);
        assert_eq!(
            code,
            Some(2),
            "strait {command} exits 2 on a bad file: {stderr}"
        );
        assert!(
            stderr.contains("bad.properties:2: A.bootstrap.servers"),
            "{stderr}"
        );
        assert!(
            stderr.contains("bad.properties:4"),
            "the undeclared cluster C is named: {stderr}"
        );
    }
}

/// Records of `varied_records` differ in timestamp at least.
fn identity(record: &Record) -> (i32, String, Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        record.partition,
        format!("{:?}", record.timestamp),
        record.key.clone(),
        record.value.clone(),
    )
}

/// Per partition, the target may hold re-copies of what a crash left unacknowledged,
/// but after removing repeats it must be exactly the source, in order.
fn assert_no_loss_in_order(source: &[Record], target: &[Record]) {
    let mut seen = std::collections::HashSet::new();
    let first_copies: Vec<Record> = target
        .iter()
        .filter(|r| seen.insert(identity(r)))
        .cloned()
        .collect();
    assert_same_records(source, &first_copies, Compare::IGNORE_OFFSETS);
}

#[test]
fn killed_three_times_mid_copy_strait_loses_nothing() {
    const PARTITIONS: i32 = 4;
    const RECORDS: usize = 400_000;
    let topic = unique_topic("crash");
    create_topic(Cluster::Source, &topic, PARTITIONS, &[]);
    let options = ProduceOptions {
        compression: Compression::Lz4,
        linger_ms: 20,
        batch_size: 32 * 1024,
        ..ProduceOptions::default()
    };
    produce(
        Cluster::Source,
        &topic,
        &varied_records(RECORDS, PARTITIONS, &topic),
        &options,
    );
    let source = read_topic(Cluster::Source, &topic);

    let dir = tempfile::tempdir().unwrap();
    let mut flow = FlowFile::new(Cluster::Source, Cluster::Target, &[&topic]);
    // Commit often and copy in small steps, so that each kill lands between commits.
    flow.extra.push("offset.flush.interval.ms = 200".into());
    flow.extra.push(format!(
        "{}.consumer.max.partition.fetch.bytes = 16384",
        flow.source_alias
    ));
    let config = flow.write(dir.path());
    let remote = flow.remote(&topic);
    let copied = || -> i64 {
        std::panic::catch_unwind(|| end_offsets(Cluster::Target, &remote).iter().sum()).unwrap_or(0)
    };
    for (round, share) in [0.2, 0.45, 0.7].into_iter().enumerate() {
        let threshold = (RECORDS as f64 * share) as i64;
        let mut strait = Strait::start(&config);
        strait.wait_until(
            &format!("copy past {threshold} records (round {round})"),
            || copied() >= threshold,
        );
        strait.kill();
    }
    // The last run copies the rest; its status line reports no lag once it is done.
    let mut strait = Strait::start(&config);
    let log_path = strait.log_path();
    strait.wait_until("the last run to catch up", || {
        copied() >= RECORDS as i64
            && std::fs::read_to_string(&log_path).is_ok_and(|log| log.contains(" lag 0 records"))
    });
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    let target = read_topic(Cluster::Target, &remote);
    assert_no_loss_in_order(&source, &target);
}

fn mirror_between(source: Cluster, target: Cluster) {
    const PARTITIONS: i32 = 3;
    let topics: Vec<(Compression, String)> =
        [Compression::None, Compression::Zstd, Compression::Snappy]
            .into_iter()
            .map(|codec| {
                (
                    codec,
                    unique_topic(&format!("versions-{}", codec.config_name())),
                )
            })
            .collect();
    let mut expected = HashMap::new();
    for (codec, topic) in &topics {
        create_topic(source, topic, PARTITIONS, &[]);
        let options = ProduceOptions {
            compression: *codec,
            ..ProduceOptions::default()
        };
        produce(
            source,
            topic,
            &varied_records(20_000, PARTITIONS, topic),
            &options,
        );
        produce_transactions(
            source,
            topic,
            &[
                TxnStep::Abort(varied_records(500, PARTITIONS, "aborted")),
                TxnStep::Commit(varied_records(500, PARTITIONS, "committed")),
            ],
            &options,
        );
        expected.insert(topic.clone(), read_topic(source, topic));
    }
    let names: Vec<&str> = topics.iter().map(|(_, t)| t.as_str()).collect();
    let flow = FlowFile::new(source, target, &names);
    let wanted: Vec<(&str, &[Record], i32)> = topics
        .iter()
        .map(|(_, t)| (t.as_str(), expected[t].as_slice(), PARTITIONS))
        .collect();
    mirror_until_copied(&flow, &wanted);
    for (_, topic) in &topics {
        let copy = read_topic(target, &flow.remote(topic));
        assert_same_records(&expected[topic], &copy, Compare::IGNORE_OFFSETS);
    }
}

#[test]
fn kafka_3_9_to_4_x() {
    mirror_between(Cluster::Legacy, Cluster::Target);
}

#[test]
fn kafka_4_x_to_3_9() {
    mirror_between(Cluster::Source, Cluster::Legacy);
}

//! Proves the harness: records written with librdkafka are read back by Kafka's own
//! console consumer, on the newest 4.x broker and on 3.9.x, and both readers agree;
//! then the other helpers (codecs, transactions, the three-broker cluster) are checked
//! against the same brokers.

mod common;

use std::time::Duration;

use common::{
    assert_same_records, base_timestamp, create_topic, delete_topic, end_offsets, produce,
    produce_transactions, read_topic, read_topic_with, read_topic_with_console_consumer,
    unique_topic, Cluster, Compare, Compression, Isolation, NewRecord, ProduceOptions, TxnStep,
};
use rdkafka::consumer::{BaseConsumer, Consumer};

const RECORDS: usize = 10_000;

/// Null keys and values, empty values, no/one/several headers (repeated keys, null
/// values), explicit and producer-assigned timestamps, values of varied length.
fn smoke_records() -> Vec<NewRecord> {
    (0..RECORDS)
        .map(|i| {
            let mut record = NewRecord::new();
            if i % 10 != 0 {
                record = record.with_key(format!("key-{}", i % 1_000));
            }
            if i % 97 == 0 {
                // null value
            } else if i % 89 == 0 {
                record = record.with_value("");
            } else {
                record = record.with_value(format!("value-{i}-{}", "x".repeat(i % 300)));
            }
            if i % 4 >= 1 {
                record = record.with_header("origin", "smoke");
            }
            if i % 4 >= 2 {
                record = record.with_header("seq", i.to_string());
            }
            if i % 4 == 3 {
                record = record
                    .with_header("dup", "1")
                    .with_header("dup", "2")
                    .with_null_header("nullable");
            }
            if i % 50 != 0 {
                record = record.with_timestamp(base_timestamp() + i as i64);
            }
            record
        })
        .collect()
}

fn librdkafka_and_kafka_cli_agree(cluster: Cluster) {
    let topic = unique_topic("smoke");
    create_topic(cluster, &topic, 3, &[]);
    let options = ProduceOptions {
        compression: Compression::Zstd,
        linger_ms: 20,
        batch_size: 64 * 1024,
        ..ProduceOptions::default()
    };
    let produced = produce(cluster, &topic, &smoke_records(), &options);

    let read_by_kafka = read_topic_with_console_consumer(cluster, &topic, RECORDS);
    assert_same_records(&produced, &read_by_kafka, Compare::EXACT);
    let read_by_librdkafka = read_topic(cluster, &topic);
    assert_same_records(&read_by_kafka, &read_by_librdkafka, Compare::EXACT);

    delete_topic(cluster, &topic);
}

#[test]
fn records_from_librdkafka_read_back_by_kafka_console_consumer_on_4x() {
    librdkafka_and_kafka_cli_agree(Cluster::Source);
}

#[test]
fn records_from_librdkafka_read_back_by_kafka_console_consumer_on_3_9() {
    librdkafka_and_kafka_cli_agree(Cluster::Legacy);
}

fn small_records(count: usize, tag: &str) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            NewRecord::new()
                .with_key(format!("{tag}-key-{i}"))
                .with_value(format!("{tag}-value-{i}"))
                .with_header("tag", tag)
                .with_timestamp(base_timestamp() + i as i64)
        })
        .collect()
}

#[test]
fn every_compression_reads_back_unchanged() {
    let cluster = Cluster::Source;
    for compression in Compression::ALL {
        let topic = unique_topic(&format!("codec-{}", compression.config_name()));
        create_topic(cluster, &topic, 2, &[]);
        let options = ProduceOptions {
            compression,
            ..ProduceOptions::default()
        };
        let produced = produce(
            cluster,
            &topic,
            &small_records(500, compression.config_name()),
            &options,
        );
        assert_same_records(&produced, &read_topic(cluster, &topic), Compare::EXACT);
        delete_topic(cluster, &topic);
    }
}

fn scripted_transactions_as_kafka_sees_them(cluster: Cluster) {
    let topic = unique_topic("txn");
    create_topic(cluster, &topic, 1, &[]);
    let steps = [
        TxnStep::Commit(small_records(30, "first")),
        TxnStep::Abort(small_records(20, "aborted")),
        TxnStep::Commit(small_records(10, "second")),
    ];
    let outcome = produce_transactions(cluster, &topic, &steps, &ProduceOptions::default());
    assert_eq!((outcome.committed.len(), outcome.aborted.len()), (40, 20));

    let committed = read_topic(cluster, &topic);
    assert_same_records(&outcome.committed, &committed, Compare::EXACT);
    let by_kafka = read_topic_with_console_consumer(cluster, &topic, outcome.committed.len());
    assert_same_records(&committed, &by_kafka, Compare::EXACT);

    let mut everything = outcome.committed.clone();
    everything.extend(outcome.aborted.iter().cloned());
    assert_same_records(
        &everything,
        &read_topic_with(cluster, &topic, Isolation::ReadUncommitted),
        Compare::EXACT,
    );
    // Each transaction ends with one control record (commit or abort marker).
    assert_eq!(end_offsets(cluster, &topic), vec![60 + 3]);
    delete_topic(cluster, &topic);
}

#[test]
fn scripted_transactions_on_4x() {
    scripted_transactions_as_kafka_sees_them(Cluster::Source);
}

#[test]
fn scripted_transactions_on_3_9() {
    scripted_transactions_as_kafka_sees_them(Cluster::Legacy);
}

#[test]
fn three_broker_cluster_replicates_by_default() {
    let cluster = Cluster::Trio;
    let topic = unique_topic("trio");
    create_topic(cluster, &topic, 3, &[]);
    assert_eq!(replica_counts(cluster, &topic), vec![3, 3, 3]);
    let produced = produce(
        cluster,
        &topic,
        &small_records(300, "trio"),
        &ProduceOptions::default(),
    );
    assert_same_records(&produced, &read_topic(cluster, &topic), Compare::EXACT);
    delete_topic(cluster, &topic);
}

fn replica_counts(cluster: Cluster, topic: &str) -> Vec<usize> {
    let consumer: BaseConsumer = cluster.client_config().create().expect("metadata client");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|partition| partition.replicas().len())
        .collect()
}

//! strait follows the source while it runs: new topics, added partitions and deleted
//! topics, checked with librdkafka record by record; and with discovery off, a flow whose
//! topics match nothing ends at once.

mod common;

use std::time::Duration;

use common::{
    assert_same_records, counts_per_partition, create_topic, end_offsets, kafka_tool,
    partition_count, produce, read_topic, spread_records, unique_topic, Cluster, Compare, FlowFile,
    ProduceOptions, Strait,
};

fn topics_tool(args: &[&str]) {
    let mut all = vec!["--bootstrap-server", Cluster::Source.bootstrap()];
    all.extend_from_slice(args);
    let output = kafka_tool(Cluster::Source, "topics", &all);
    assert!(
        output.status.success(),
        "kafka-topics {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A flow from the source to the target of every topic named `<prefix>.<anything>`.
fn flow_of_topics_under(prefix: &str) -> FlowFile {
    let mut flow = FlowFile::new(Cluster::Source, Cluster::Target, &[]);
    flow.extra.push(format!(
        "{}->{}.topics = {}\\..*",
        flow.source_alias,
        flow.target_alias,
        prefix.replace('-', "\\-")
    ));
    flow
}

#[test]
fn new_topics_added_partitions_and_deleted_topics_are_followed_while_running() {
    let prefix = unique_topic("discover");
    let first = format!("{prefix}.first");
    let later = format!("{prefix}.later");
    create_topic(Cluster::Source, &first, 2, &[]);
    produce(
        Cluster::Source,
        &first,
        &spread_records(&first, 2, 1_000),
        &ProduceOptions::default(),
    );

    let dir = tempfile::tempdir().unwrap();
    let mut flow = flow_of_topics_under(&prefix);
    flow.extra
        .push("refresh.topics.interval.seconds = 1".into());
    let mut strait = Strait::start(&flow.write(dir.path()));
    let source_first = read_topic(Cluster::Source, &first);
    strait.wait_for_counts(
        Cluster::Target,
        &flow.remote(&first),
        &counts_per_partition(&source_first, 2),
    );

    // A topic created while strait runs.
    create_topic(Cluster::Source, &later, 3, &[]);
    produce(
        Cluster::Source,
        &later,
        &spread_records(&later, 3, 900),
        &ProduceOptions::default(),
    );
    let source_later = read_topic(Cluster::Source, &later);
    strait.wait_for_counts(
        Cluster::Target,
        &flow.remote(&later),
        &counts_per_partition(&source_later, 3),
    );

    // Partitions added to a mirrored topic: the target grows, the new partitions flow,
    // the old ones keep flowing.
    topics_tool(&["--alter", "--topic", &first, "--partitions", "4"]);
    produce(
        Cluster::Source,
        &first,
        &spread_records(&format!("{first}-grown"), 4, 800),
        &ProduceOptions::default(),
    );
    let source_first = read_topic(Cluster::Source, &first);
    strait.wait_for_counts(
        Cluster::Target,
        &flow.remote(&first),
        &counts_per_partition(&source_first, 4),
    );
    assert_eq!(partition_count(Cluster::Target, &flow.remote(&first)), 4);

    // A deleted source topic stops cleanly; its copy stays.
    topics_tool(&["--delete", "--topic", &later]);
    let log_path = strait.log_path();
    strait.wait_until("the deleted topic to be reported", || {
        std::fs::read_to_string(&log_path)
            .is_ok_and(|log| log.contains("source topic was deleted") && log.contains(&later))
    });
    let (status, log) = strait.stop();
    assert!(status.success(), "strait exited with {status}; log:\n{log}");

    assert_same_records(
        &source_first,
        &read_topic(Cluster::Target, &flow.remote(&first)),
        Compare::EXACT,
    );
    assert_same_records(
        &source_later,
        &read_topic(Cluster::Target, &flow.remote(&later)),
        Compare::EXACT,
    );
    assert_eq!(
        end_offsets(Cluster::Target, &flow.remote(&later))
            .iter()
            .sum::<i64>(),
        900,
        "the target copy of a deleted topic is kept"
    );
}

/// With `refresh.topics.enabled = false` a flow whose topics match nothing has nothing to
/// wait for: strait says so and exits by itself, without waiting on the offset translation
/// that prepares beside the plan.
#[test]
fn a_flow_matching_no_topic_without_discovery_exits_saying_so() {
    let prefix = unique_topic("nomatch");
    let dir = tempfile::tempdir().unwrap();
    let mut flow = flow_of_topics_under(&prefix);
    flow.extra.push("refresh.topics.enabled = false".into());
    let strait = Strait::start(&flow.write(dir.path()));
    let (status, log) = strait.wait_for_exit(Duration::from_secs(60));
    assert!(status.success(), "strait exited with {status}; log:\n{log}");
    assert!(
        log.contains("nothing to mirror"),
        "strait's log does not say there is nothing to mirror:\n{log}"
    );
    assert!(
        !log.contains("partition starts"),
        "a partition started although no topic matches:\n{log}"
    );
}

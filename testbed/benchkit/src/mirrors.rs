//! The mirrors under test: their configuration files and how each is started.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::java::Kafka;
use crate::options::System;
use crate::process::{self, Child};
use crate::workload::Workload;

/// The target cluster's alias in every configuration.
const TARGET_ALIAS: &str = "target";

/// Everything a mirror run needs to know.
pub struct MirrorJob<'a> {
    pub system: System,
    pub workload: Workload,
    /// The source cluster's alias: unique per run, so that target topics
    /// (`<alias>.<topic>`) and each mirror's progress start clean.
    pub alias: String,
    /// The source topics: the filled one, and the one the latency phase writes.
    pub topics: Vec<String>,
    pub source: &'a str,
    pub target: &'a str,
    /// The clusters are across an emulated WAN: the tuned side that crosses it (the
    /// consumer, or beside the source the producer) autotunes its socket buffers.
    pub long_link: bool,
    /// Added to strait's configuration.
    pub strait_settings: &'a [(String, String)],
    /// The network namespace the mirror runs in when not the benchmark's (beside the
    /// source: then its produce requests cross the link).
    pub namespace: Option<&'a str>,
    pub dir: PathBuf,
}

pub struct Programs<'a> {
    pub strait: &'a Path,
    pub kafka: &'a Kafka,
    pub legacy_kafka: &'a Kafka,
}

impl MirrorJob<'_> {
    /// The name of `source_topic`'s copy on the target.
    pub fn target_topic(&self, source_topic: &str) -> String {
        match self.system {
            // MirrorMaker 1 cannot rename topics.
            System::Mm1 => source_topic.to_string(),
            _ => format!("{}.{source_topic}", self.alias),
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.alias))
    }

    /// Fetches cross the emulated link (the mirror beside the target).
    fn consumer_across_link(&self) -> bool {
        self.long_link && self.namespace.is_none()
    }

    /// Produce requests cross the emulated link (the mirror beside the source).
    fn producer_across_link(&self) -> bool {
        self.long_link && self.namespace.is_some()
    }

    pub fn start(&self, programs: &Programs) -> anyhow::Result<Child> {
        let name = self.system.name();
        let log = self.log();
        match self.system {
            System::Strait => {
                let config = self.write("properties", &self.strait_config())?;
                let run = ["run".to_string(), config];
                // `ip netns exec` becomes strait, so the child's pid is strait's own.
                let (program, args) = match self.namespace {
                    None => (programs.strait, run.to_vec()),
                    Some(namespace) => {
                        let mut args = vec![
                            "netns".to_string(),
                            "exec".to_string(),
                            namespace.to_string(),
                            programs.strait.display().to_string(),
                        ];
                        args.extend(run);
                        (Path::new("ip"), args)
                    }
                };
                process::spawn_with_env(
                    name,
                    program,
                    &args,
                    // STRAIT_LOG from the caller (e.g. strait::engine=debug) to look
                    // inside a run; info otherwise.
                    &[(
                        "STRAIT_LOG",
                        std::env::var("STRAIT_LOG").unwrap_or_else(|_| "info".to_string()),
                    )],
                    &log,
                )
            }
            System::Mm2 | System::Mm2Tuned => {
                let config = self.write("properties", &self.mm2_config())?;
                // connect-mirror-maker.sh's heap.
                programs.kafka.spawn_in(
                    self.namespace,
                    name,
                    &["-Xms256M", "-Xmx2G"],
                    "org.apache.kafka.connect.mirror.MirrorMaker",
                    &[config],
                    &log,
                )
            }
            System::Mm1 => {
                let consumer = self.write("consumer.properties", &self.mm1_consumer_config())?;
                let producer = self.write("producer.properties", &self.mm1_producer_config())?;
                // Given MirrorMaker 2's heap rather than kafka-run-class.sh's 256 MiB.
                programs.legacy_kafka.spawn_in(
                    self.namespace,
                    name,
                    &["-Xms256M", "-Xmx2G"],
                    "kafka.tools.MirrorMaker",
                    &[
                        "--consumer.config".to_string(),
                        consumer,
                        "--producer.config".to_string(),
                        producer,
                        "--include".to_string(),
                        self.topics.join("|"),
                        "--num.streams".to_string(),
                        self.workload.partitions().to_string(),
                    ],
                    &log,
                )
            }
            System::Ceiling => unreachable!("the ceiling runs Kafka's perf tools, not a mirror"),
        }
    }

    fn write(&self, suffix: &str, text: &str) -> anyhow::Result<String> {
        let path = self.dir.join(format!("{}.{suffix}", self.alias));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    }

    /// The part strait and MirrorMaker 2 share: clusters, the flow, replication factor 1
    /// for the single-broker clusters.
    fn flow_config(&self) -> String {
        let alias = &self.alias;
        format!(
            "clusters = {alias}, {TARGET_ALIAS}\n\
             {alias}.bootstrap.servers = {source}\n\
             {TARGET_ALIAS}.bootstrap.servers = {target}\n\
             {alias}->{TARGET_ALIAS}.enabled = true\n\
             {alias}->{TARGET_ALIAS}.topics = {topics}\n\
             replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\n\
             checkpoints.topic.replication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\n",
            source = self.source,
            target = self.target,
            topics = self.topics.join(", "),
        )
    }

    fn strait_config(&self) -> String {
        let mut config = self.flow_config();
        config.push_str("strait.status.interval.seconds = 5\n");
        for (key, value) in self.strait_settings {
            config.push_str(&format!("{key} = {value}\n"));
        }
        config
    }

    fn mm2_config(&self) -> String {
        let mut config = self.flow_config();
        config.push_str(
            "offset.storage.replication.factor = 1\n\
             config.storage.replication.factor = 1\n\
             status.storage.replication.factor = 1\n",
        );
        if self.system == System::Mm2Tuned {
            let alias = &self.alias;
            writeln!(config, "tasks.max = {}", self.workload.partitions()).unwrap();
            for (key, value) in tuned_producer(self.workload, self.producer_across_link()) {
                writeln!(config, "{TARGET_ALIAS}.producer.{key} = {value}").unwrap();
            }
            for (key, value) in tuned_consumer(self.consumer_across_link()) {
                writeln!(config, "{alias}.consumer.{key} = {value}").unwrap();
            }
        }
        config
    }

    fn mm1_consumer_config(&self) -> String {
        let mut config = format!(
            "bootstrap.servers = {}\ngroup.id = {}\nauto.offset.reset = earliest\n",
            self.source, self.alias
        );
        for (key, value) in tuned_consumer(self.consumer_across_link()) {
            writeln!(config, "{key} = {value}").unwrap();
        }
        config
    }

    fn mm1_producer_config(&self) -> String {
        let mut config = format!("bootstrap.servers = {}\n", self.target);
        for (key, value) in tuned_producer(self.workload, self.producer_across_link()) {
            writeln!(config, "{key} = {value}").unwrap();
        }
        config
    }
}

/// The tuned Java producer: the source's batch size and codec, a short linger so that a
/// steady trickle still leaves in time, room for many full batches.
///
/// Across a long link (beside the source) a partition has at most five requests, a batch
/// each, on their way per round trip, so batches of at least 1 MiB (about the largest the
/// target broker takes by default, message.max.bytes); a send buffer that the kernel
/// autotunes instead of the fixed 128 KiB that caps a connection at 128 KiB per round
/// trip; five requests on their way, in order through the idempotent producer (Kafka
/// Connect gives its source tasks' producers one, and idempotence off: 14 MiB/s at 300 ms);
/// and the default 32 MiB of buffer memory: with 64 MiB per task MirrorMaker 2's 2 GiB heap
/// ran out (each buffered record stays a Connect record until the target acknowledges
/// it) and four of eight tasks died at 300 ms.
pub fn tuned_producer(workload: Workload, long_link: bool) -> Vec<(&'static str, String)> {
    let batch_size = if long_link {
        workload.batch_size().max(1 << 20)
    } else {
        workload.batch_size()
    };
    let buffer_memory: u64 = if long_link { 32 << 20 } else { 64 << 20 };
    let mut settings = vec![
        ("batch.size", batch_size.to_string()),
        ("linger.ms", "20".to_string()),
        ("compression.type", workload.compression().to_string()),
        ("buffer.memory", buffer_memory.to_string()),
        ("max.request.size", (4u64 << 20).to_string()),
        ("acks", "all".to_string()),
    ];
    if long_link {
        settings.push(("send.buffer.bytes", "-1".to_string()));
        settings.push(("max.in.flight.requests.per.connection", "5".to_string()));
        settings.push(("enable.idempotence", "true".to_string()));
    }
    settings
}

/// The tuned Java consumer: large fetches; across a long link, a receive buffer that
/// the kernel autotunes instead of the fixed 64 KiB that caps a connection at 64 KiB
/// per round trip (tuning/README.md).
pub fn tuned_consumer(long_link: bool) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("fetch.max.bytes", (64u64 << 20).to_string()),
        ("max.partition.fetch.bytes", (4u64 << 20).to_string()),
        ("max.poll.records", "4096".to_string()),
    ];
    if long_link {
        settings.push(("receive.buffer.bytes", "-1".to_string()));
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(system: System) -> MirrorJob<'static> {
        MirrorJob {
            system,
            workload: Workload::W1,
            alias: "w1r1x".to_string(),
            topics: vec!["bench-w1".to_string(), "lat-w1-r1".to_string()],
            source: "127.0.0.1:1",
            target: "127.0.0.1:2",
            long_link: false,
            strait_settings: &[],
            namespace: None,
            dir: PathBuf::from("/nonexistent"),
        }
    }

    fn assert_has_lines(config: &str, lines: &[&str]) {
        for line in lines {
            assert!(
                config.lines().any(|l| l == *line),
                "missing '{line}' in\n{config}"
            );
        }
    }

    #[test]
    fn tuned_mm2_sets_tasks_producer_and_consumer_per_cluster() {
        let config = job(System::Mm2Tuned).mm2_config();
        assert_has_lines(
            &config,
            &[
                "w1r1x->target.topics = bench-w1, lat-w1-r1",
                "tasks.max = 8",
                "target.producer.batch.size = 262144",
                "target.producer.compression.type = lz4",
                "w1r1x.consumer.max.partition.fetch.bytes = 4194304",
                "status.storage.replication.factor = 1",
            ],
        );
        let defaults = job(System::Mm2).mm2_config();
        assert!(!defaults.contains("tasks.max") && !defaults.contains("producer."));
    }

    #[test]
    fn across_a_long_link_tuned_consumers_autotune_their_receive_buffer() {
        let mut far = job(System::Mm2Tuned);
        far.long_link = true;
        assert!(far
            .mm2_config()
            .lines()
            .any(|l| l == "w1r1x.consumer.receive.buffer.bytes = -1"));
        assert!(far
            .mm1_consumer_config()
            .contains("receive.buffer.bytes = -1"));
        assert!(!job(System::Mm2Tuned)
            .mm2_config()
            .contains("receive.buffer"));
        assert!(!far.mm2_config().contains("send.buffer"));
    }

    #[test]
    fn beside_the_source_tuned_producers_autotune_their_send_buffer() {
        let mut near_source = job(System::Mm2Tuned);
        near_source.long_link = true;
        near_source.namespace = Some("bench-a");
        let config = near_source.mm2_config();
        assert_has_lines(
            &config,
            &[
                "target.producer.send.buffer.bytes = -1",
                "target.producer.batch.size = 1048576",
                "target.producer.buffer.memory = 33554432",
                "target.producer.max.in.flight.requests.per.connection = 5",
                "target.producer.enable.idempotence = true",
            ],
        );
        assert!(!config.contains("receive.buffer"), "{config}");
        let mut mm1 = job(System::Mm1);
        mm1.long_link = true;
        mm1.namespace = Some("bench-a");
        assert!(mm1.mm1_producer_config().contains("send.buffer.bytes = -1"));
        assert!(!mm1.mm1_consumer_config().contains("receive.buffer"));
    }

    #[test]
    fn mm1_keeps_topic_names_and_the_others_prefix_the_alias() {
        assert_eq!(job(System::Mm1).target_topic("bench-w1"), "bench-w1");
        assert_eq!(
            job(System::Strait).target_topic("bench-w1"),
            "w1r1x.bench-w1"
        );
        assert_eq!(job(System::Mm2).target_topic("bench-w1"), "w1r1x.bench-w1");
    }
}

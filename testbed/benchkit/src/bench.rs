//! The benchmark proper: fill a workload's source topic once, then for each run let
//! every system copy it into a clean target topic, measure, verify, clean up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::ceiling;
use crate::clusters::Testbed;
use crate::copy::CopyWatch;
use crate::kafka::{Cluster, Fingerprint};
use crate::latency::{LatencyLoad, LatencySummary};
use crate::mirrors::{MirrorJob, Programs};
use crate::options::System;
use crate::procfs;
use crate::report::{self, Measurement, Metrics, WorkloadInfo, WorkloadReport};
use crate::tcp_alone::{self, TcpAlone};
use crate::wan;
use crate::workload::{self, Workload};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;
const STOP_GRACE: Duration = Duration::from_secs(20);
/// How long a run waits for the brokers to remove the topics of the run before.
const DELETION_LIMIT: Duration = Duration::from_secs(120);
/// Record data of one round of the target broker's warm-up.
const WARM_UP_ROUND_BYTES: u64 = 1 << 30;
/// The warm-up ends when a round's broker CPU per GiB is this close to the round before.
const WARM_UP_SETTLED: f64 = 0.1;

pub struct Settings {
    pub size: u64,
    pub runs: u32,
    pub systems: Vec<System>,
    pub latency_rate: u32,
    pub latency_warmup: Duration,
    pub latency_measured: Duration,
    /// Time budget of one copy, from launch to the last record.
    pub time_limit: Duration,
    /// Keep a filled source topic of the right size from an earlier invocation.
    pub reuse_fill: bool,
    /// Record data written to the target before a workload's first run (0: none).
    pub target_warm_up: u64,
    /// The source is across an emulated WAN.
    pub long_link: bool,
    /// Across it, plain TCP connections that carry the source log's size before the
    /// runs (0: none).
    pub tcp_alone_connections: usize,
    /// Added to every strait configuration (`--strait-set`).
    pub strait_settings: Vec<(String, String)>,
    /// Across a WAN, strait runs in the source's namespace and produces across the link.
    pub mirror_beside_source: bool,
}

pub struct Bench<'a> {
    pub settings: &'a Settings,
    /// Makes cluster aliases, topics and groups unique to this invocation, so that
    /// kept clusters hold no progress of an earlier one.
    pub session: String,
    pub out: &'a Path,
    pub testbed: &'a Testbed,
    pub source: &'a Cluster,
    pub target: &'a Cluster,
    pub target_name: &'a str,
    pub source_name: &'a str,
    /// Where programs that belong next to the source run (the fill), when not here.
    pub source_namespace: Option<&'a str>,
    pub programs: Programs<'a>,
}

/// What every run of a workload compares against.
struct Filled {
    workload: Workload,
    topic: String,
    ends: Vec<i64>,
    records: u64,
    log_bytes: u64,
    print: Fingerprint,
    payloads: Vec<Vec<u8>>,
    payload_file: PathBuf,
}

impl Bench<'_> {
    pub fn workload(
        &self,
        workload: Workload,
        on_measurement: &mut dyn FnMut(&Measurement),
    ) -> anyhow::Result<WorkloadReport> {
        let filled = self.fill(workload)?;
        let (target_warm_up_records, target_warm_up_cpu_s_per_gib) = self.warm_target(&filled)?;
        let tcp_alone = self.tcp_alone(&filled)?;
        let info = WorkloadInfo {
            name: workload.name().to_string(),
            description: workload.describe(),
            records: filled.records,
            record_bytes: filled.records * workload.record_size() as u64,
            source_log_bytes: filled.log_bytes,
            latency_records_per_second: self.settings.latency_rate,
            latency_measured_seconds: self.settings.latency_measured.as_secs(),
            target_warm_up_records,
            target_warm_up_cpu_s_per_gib,
            tcp_alone,
        };
        let mut measurements = Vec::new();
        for run in 1..=self.settings.runs {
            for &system in &self.settings.systems {
                let measurement = self.measure(&filled, run, system);
                on_measurement(&measurement);
                measurements.push(measurement);
            }
        }
        if !self.settings.reuse_fill {
            self.source.delete_topic(&filled.topic)?;
        }
        Ok(WorkloadReport {
            info,
            summary: report::summarize(&self.settings.systems, &measurements),
            measurements,
        })
    }

    fn fill(&self, workload: Workload) -> anyhow::Result<Filled> {
        let topic = format!("bench-{}", workload.name());
        let records = self.settings.size / workload.record_size() as u64;
        if records == 0 {
            bail!(
                "--size is smaller than one {} B record",
                workload.record_size()
            );
        }
        let partitions = workload.partitions();
        let payloads = workload::payloads(workload.record_size());
        let payload_file = self.out.join(format!("payloads-{}.txt", workload.name()));
        workload::write_payload_file(&payload_file, &payloads)?;

        let reusable = self.settings.reuse_fill
            && self.source.partitions(&topic)? == Some(partitions as usize)
            && self
                .source
                .end_offsets(&topic, partitions)?
                .iter()
                .sum::<i64>()
                == records as i64;
        if reusable {
            eprintln!("benchkit: {workload}: reusing the filled source topic {topic}");
        } else {
            self.source.delete_topic(&topic)?;
            self.source.create_topic(&topic, partitions, &[])?;
            eprintln!(
                "benchkit: {workload}: filling {topic} with {records} records ({})",
                workload.describe()
            );
            let log = self.out.join(format!("fill-{}.log", workload.name()));
            let args = ceiling::producer_performance_args(
                &self.source.bootstrap,
                &topic,
                workload,
                records,
                &payload_file,
            );
            let filler = self.programs.kafka.spawn_in(
                self.source_namespace,
                "fill",
                &["-Xmx512M"],
                "org.apache.kafka.tools.ProducerPerformance",
                &args,
                &log,
            )?;
            match filler.wait(self.settings.time_limit * 2) {
                Some(finished) if finished.succeeded() => {}
                Some(finished) => bail!(
                    "filling {topic}: ProducerPerformance exited with code {}{} (log: {})",
                    finished.code,
                    filler.last_words(),
                    log.display()
                ),
                None => bail!(
                    "filling {topic} did not finish within {} s (log: {})",
                    (self.settings.time_limit * 2).as_secs(),
                    log.display()
                ),
            }
        }
        let ends = self.source.end_offsets(&topic, partitions)?;
        if ends.iter().sum::<i64>() != records as i64 {
            bail!(
                "source topic {topic} holds {} records, not {records} (end offsets {ends:?})",
                ends.iter().sum::<i64>()
            );
        }
        let log_bytes = self.testbed.log_bytes(self.source_name, &topic)?;
        // Read next to the source: across a long link one reader's window would make this
        // take minutes.
        let read_back = || self.source.fingerprint(&topic, self.settings.time_limit);
        let print = match self.source_namespace {
            Some(namespace) => wan::create_in(namespace, read_back),
            None => read_back(),
        }
        .context("reading the filled source topic back")?;
        eprintln!(
            "benchkit: {workload}: {records} records, {:.0} MiB of record values in {:.0} MiB of source log",
            (records * workload.record_size() as u64) as f64 / MIB,
            log_bytes as f64 / MIB
        );
        Ok(Filled {
            workload,
            topic,
            ends,
            records,
            log_bytes,
            print,
            payloads,
            payload_file,
        })
    }

    /// A target broker fresh from its start validates and appends at about half the speed
    /// it reaches once its JIT has compiled the produce path (loopback, W1 6 GiB, two
    /// strait runs in a row: 140 then 206 MiB/s; the broker's CPU 9.1 then 4.4 s per GiB,
    /// 14 s of it JIT compilation during the first copy), so the first system measured
    /// paid for the warm-up of all the others. Rounds of the workload's own records into
    /// a scratch topic on the target, written next to it, level that: until a round costs
    /// the broker about what the round before did, within `target_warm_up` in all.
    /// Returns the records written and the broker's CPU seconds per GiB of each round.
    fn warm_target(&self, filled: &Filled) -> anyhow::Result<(u64, Vec<f64>)> {
        let workload = filled.workload;
        let record_size = workload.record_size() as u64;
        // Not bounded by the workload's size: the JIT needs what it needs, and a short
        // copy suffers a cold broker the most.
        let budget = self.settings.target_warm_up / record_size;
        let per_round = budget.min(WARM_UP_ROUND_BYTES / record_size);
        let mut written = 0;
        let mut costs: Vec<f64> = Vec::new();
        while per_round > 0 && written + per_round <= budget {
            let topic = format!(
                "warm-up-{}{}-{}",
                workload.name(),
                self.session,
                costs.len()
            );
            let log = self
                .out
                .join(format!("warm-up-{}-{}.log", workload.name(), costs.len()));
            self.recreate(self.target, &topic, workload.partitions())
                .map_err(anyhow::Error::msg)?;
            let run = ceiling::produce(
                self.programs.kafka,
                self.target,
                &topic,
                workload,
                per_round,
                &filled.payload_file,
                self.broker_pid()?,
                &log,
                self.settings.time_limit,
            )
            .map_err(|error| anyhow::anyhow!("warming the target broker up: {error}"))?;
            self.drop_topics(&[(self.target, &topic)]);
            written += per_round;
            let gib = (per_round * record_size) as f64 / GIB;
            let cost = run.window.broker_cpu_seconds / gib;
            eprintln!(
                "benchkit: {workload}: warming the target broker up, round {}: {per_round} records at {:.0} MiB/s, its CPU {cost:.2} s/GiB",
                costs.len() + 1,
                gib * 1024.0 / run.window.copy.as_secs_f64(),
            );
            let settled = costs
                .last()
                .is_some_and(|&before| (before - cost).abs() <= WARM_UP_SETTLED * before);
            costs.push(cost);
            if settled {
                break;
            }
        }
        Ok((written, costs))
    }

    /// What the link gives TCP itself for the copy's bytes, when the source is across one.
    fn tcp_alone(&self, filled: &Filled) -> anyhow::Result<Option<TcpAlone>> {
        let connections = self.settings.tcp_alone_connections;
        let Some(namespace) = self.source_namespace.filter(|_| connections > 0) else {
            return Ok(None);
        };
        let carried = tcp_alone::carry(
            namespace,
            connections,
            filled.log_bytes,
            self.settings.time_limit,
        )
        .context("measuring TCP alone across the link")?;
        eprintln!(
            "benchkit: {}: TCP alone across the link, {connections} connections: {:.0} MiB in {:.2} s, {:.0} MiB/s (middle half {:.0})",
            filled.workload,
            filled.log_bytes as f64 / MIB,
            carried.seconds,
            carried.mib_s(),
            carried.middle_half_mib_s()
        );
        Ok(Some(carried))
    }

    fn measure(&self, filled: &Filled, run: u32, system: System) -> Measurement {
        let alias = format!(
            "{}r{run}{}{}",
            filled.workload.name(),
            system.tag(),
            self.session
        );
        let latency_topic = format!("lat-{alias}");
        let (log, result) = match system {
            System::Ceiling => {
                let logs = [
                    self.out.join(format!("{alias}-consumer.log")),
                    self.out.join(format!("{alias}-producer.log")),
                ];
                let result = self.ceiling(filled, &alias, &latency_topic, &logs);
                (logs.map(|l| l.display().to_string()).join(", "), result)
            }
            _ => {
                let job = |alias: String, topic: &str| MirrorJob {
                    system,
                    workload: filled.workload,
                    alias,
                    topics: vec![topic.to_string()],
                    source: &self.source.bootstrap,
                    target: &self.target.bootstrap,
                    long_link: self.settings.long_link,
                    strait_settings: &self.settings.strait_settings,
                    namespace: self
                        .source_namespace
                        .filter(|_| self.settings.mirror_beside_source),
                    dir: self.out.to_path_buf(),
                };
                // Two launches: a flow with idle partitions next to busy ones would make
                // the copy measure how a mirror copes with those, not how fast it copies.
                let copy = job(alias.clone(), &filled.topic);
                let latency = job(format!("{alias}l"), &latency_topic);
                let result = self.mirror(filled, &copy, &latency);
                (copy.log().display().to_string(), result)
            }
        };
        let (metrics, error) = match result {
            Ok(metrics) => (Some(metrics), None),
            Err(error) => (None, Some(error)),
        };
        Measurement {
            workload: filled.workload.name().to_string(),
            run,
            system,
            log,
            error,
            metrics,
        }
    }

    /// Copies the filled topic with `copy`, verifies it, then measures latency through
    /// `latency`.
    fn mirror(
        &self,
        filled: &Filled,
        copy: &MirrorJob,
        latency: &MirrorJob,
    ) -> Result<Metrics, String> {
        let partitions = filled.workload.partitions();
        let target_topic = copy.target_topic(&filled.topic);
        let log = copy.log();
        let progress_file = log.with_extension("progress.tsv");
        let name = copy.system.name();
        let fail = |what: String| format!("{what} (log: {})", log.display());
        let mut keep_copy = false;
        let result = (|| {
            // Empty target topics wait for every system: MirrorMaker 1 creates none (and
            // the brokers do not create them), and a partition that is still getting its
            // leader when the first produce arrives would measure the start-up, not the
            // copy.
            self.recreate(self.target, &target_topic, partitions)?;
            write_back_page_cache();
            let launched = Instant::now();
            let child = copy.start(&self.programs).map_err(|e| format!("{e:#}"))?;
            let watched = CopyWatch {
                target: self.target,
                topic: &target_topic,
                expected: &filled.ends,
                per_partition: copy.system != System::Mm1,
                writer: &child,
                broker_pid: self.broker_pid().map_err(|e| format!("{e:#}"))?,
                launched,
                limit: self.settings.time_limit,
                link_device: self.settings.long_link.then_some(wan::LINK_DEVICE),
                progress_file: Some(&progress_file),
            }
            .run();
            let window = match watched {
                Ok(window) => window,
                Err(error) => {
                    child.stop(STOP_GRACE);
                    return Err(fail(error));
                }
            };
            let peak_rss = procfs::peak_rss(child.pid).unwrap_or(0);
            report_odd_exit(name, child.stop(STOP_GRACE).code, &log);
            let target_bytes = self
                .testbed
                .log_bytes(self.target_name, &target_topic)
                .map_err(|e| format!("{e:#}"))?;
            let copied = self
                .target
                .fingerprint(&target_topic, self.settings.time_limit)
                .map_err(|e| fail(format!("{e:#}")))?;
            let (difference, verified) = if copy.system == System::Mm1 {
                (
                    filled.print.differs_in_total(&copied),
                    "same records in total (MirrorMaker 1 does not keep partitions)",
                )
            } else {
                (
                    filled.print.differs_per_partition(&copied),
                    "same records per partition, in order",
                )
            };
            if let Some(why) = difference {
                keep_copy = true;
                return Err(fail(format!(
                    "{name}'s copy is wrong: {why}; {target_topic} is kept on {} for a look",
                    self.target_name
                )));
            }
            let copy_seconds = window.copy.as_secs_f64();
            let gib = filled.log_bytes as f64 / GIB;
            let (latency, latency_error) = split_latency(self.mirrored_latency(filled, latency));
            Ok(Metrics {
                throughput_mib_s: filled.log_bytes as f64 / MIB / copy_seconds,
                second_half_mib_s: Some(
                    filled.log_bytes as f64
                        / 2.0
                        / MIB
                        / window.second_half.as_secs_f64().max(1e-3),
                ),
                middle_half_mib_s: Some(
                    filled.log_bytes as f64
                        / 2.0
                        / MIB
                        / window.middle_half.as_secs_f64().max(1e-3),
                ),
                link_middle_half_mib_s: window
                    .link_middle_half_bytes
                    .map(|bytes| bytes as f64 / MIB / window.middle_half.as_secs_f64().max(1e-3)),
                machine_busy_percent: window.machine_busy_percent,
                machine_steal_percent: window.machine_steal_percent,
                records_per_s: filled.records as f64 / copy_seconds,
                copy_seconds,
                startup_seconds: Some(window.startup.as_secs_f64()),
                cpu_s_per_gib: window.writer_cpu_seconds / gib,
                broker_cpu_s_per_gib: window.broker_cpu_seconds / gib,
                peak_rss_mib: peak_rss as f64 / MIB,
                target_bytes_ratio: target_bytes as f64 / filled.log_bytes as f64,
                latency,
                latency_error,
                verified: verified.to_string(),
            })
        })();
        if !keep_copy {
            self.drop_topics(&[(self.target, target_topic.as_str())]);
        }
        result
    }

    /// Latency through a mirror of its own that copies only the latency topic.
    fn mirrored_latency(&self, filled: &Filled, job: &MirrorJob) -> anyhow::Result<LatencySummary> {
        let partitions = filled.workload.partitions();
        let source_topic = &job.topics[0];
        let target_topic = job.target_topic(source_topic);
        let measured = (|| {
            self.recreate(self.source, source_topic, partitions)
                .map_err(anyhow::Error::msg)?;
            self.recreate(self.target, &target_topic, partitions)
                .map_err(anyhow::Error::msg)?;
            let child = job.start(&self.programs)?;
            let latency = self.latency(filled, source_topic, self.target, &target_topic);
            report_odd_exit(job.system.name(), child.stop(STOP_GRACE).code, &job.log());
            latency.with_context(|| format!("log: {}", job.log().display()))
        })();
        self.drop_topics(&[(self.source, source_topic), (self.target, &target_topic)]);
        measured
    }

    /// Creates an empty topic, deleting what a failed earlier run may have left.
    fn recreate(&self, cluster: &Cluster, topic: &str, partitions: i32) -> Result<(), String> {
        cluster
            .delete_topic(topic)
            .and_then(|()| cluster.create_topic(topic, partitions, &[]))
            .map_err(|e| format!("{e:#}"))
    }

    fn ceiling(
        &self,
        filled: &Filled,
        alias: &str,
        latency_topic: &str,
        logs: &[PathBuf; 2],
    ) -> Result<Metrics, String> {
        let partitions = filled.workload.partitions();
        let target_topic = format!("{alias}.{}", filled.topic);
        let result = (|| {
            let consumed = ceiling::consume(
                self.programs.kafka,
                self.source,
                &filled.topic,
                filled.records,
                alias,
                &logs[0],
                self.settings.time_limit,
                self.settings.long_link,
            )?;
            self.target
                .create_topic(&target_topic, partitions, &[])
                .map_err(|e| format!("{e:#}"))?;
            let produced = ceiling::produce(
                self.programs.kafka,
                self.target,
                &target_topic,
                filled.workload,
                filled.records,
                &filled.payload_file,
                self.broker_pid().map_err(|e| format!("{e:#}"))?,
                &logs[1],
                self.settings.time_limit,
            )?;
            let written: i64 = self
                .target
                .end_offsets(&target_topic, partitions)
                .map_err(|e| format!("{e:#}"))?
                .iter()
                .sum();
            if written != filled.records as i64 {
                return Err(format!(
                    "the ceiling producer wrote {written} records, not {} (log: {})",
                    filled.records,
                    logs[1].display()
                ));
            }
            let target_bytes = self
                .testbed
                .log_bytes(self.target_name, &target_topic)
                .map_err(|e| format!("{e:#}"))?;
            self.source
                .create_topic(latency_topic, partitions, &[])
                .map_err(|e| format!("{e:#}"))?;
            let latency = self.latency(filled, latency_topic, self.source, latency_topic);

            let gib = filled.log_bytes as f64 / GIB;
            let consume_seconds = consumed.fetch.as_secs_f64();
            let produce_seconds = produced.window.copy.as_secs_f64();
            // The slower of the two bounds a mirror that does both.
            let copy_seconds = consume_seconds.max(produce_seconds);
            let (latency, latency_error) = split_latency(latency);
            Ok(Metrics {
                throughput_mib_s: filled.log_bytes as f64 / MIB / copy_seconds,
                second_half_mib_s: None,
                middle_half_mib_s: None,
                link_middle_half_mib_s: None,
                machine_busy_percent: None,
                machine_steal_percent: None,
                records_per_s: filled.records as f64 / copy_seconds,
                copy_seconds,
                startup_seconds: None,
                cpu_s_per_gib: (consumed.cpu_seconds + produced.window.writer_cpu_seconds) / gib,
                broker_cpu_s_per_gib: produced.window.broker_cpu_seconds / gib,
                peak_rss_mib: consumed.max_rss_bytes.max(produced.max_rss_bytes) as f64 / MIB,
                target_bytes_ratio: target_bytes as f64 / filled.log_bytes as f64,
                latency,
                latency_error,
                verified: format!(
                    "consumer read {n} records in {consume_seconds:.2} s; producer wrote {n} in {produce_seconds:.2} s \
                     ({:.2} CPU s in all)",
                    produced.cpu_seconds_total,
                    n = filled.records
                ),
            })
        })();
        self.drop_topics(&[(self.target, &target_topic), (self.source, latency_topic)]);
        result
    }

    fn latency(
        &self,
        filled: &Filled,
        source_topic: &str,
        reader: &Cluster,
        reader_topic: &str,
    ) -> anyhow::Result<LatencySummary> {
        let partitions = filled.workload.partitions();
        LatencyLoad {
            source: self.source,
            source_topic,
            source_namespace: self.source_namespace,
            reader,
            reader_topic,
            partitions,
            records_per_second: self.settings.latency_rate,
            warmup: self.settings.latency_warmup,
            measured: self.settings.latency_measured,
            compression: filled.workload.compression(),
            payloads: &filled.payloads,
        }
        .run()
    }

    fn broker_pid(&self) -> anyhow::Result<i32> {
        self.testbed.broker_pid(self.target_name)
    }

    fn drop_topics(&self, topics: &[(&Cluster, &str)]) {
        for (cluster, topic) in topics {
            if let Err(error) = cluster.delete_topic(topic) {
                eprintln!("benchkit: cleaning up: {error:#}");
            }
        }
        // The next run starts once the brokers have removed the files.
        let deadline = Instant::now() + DELETION_LIMIT;
        for (cluster, topic) in topics {
            while self.testbed.topic_log_dirs(&cluster.name, topic) > 0 {
                if Instant::now() > deadline {
                    eprintln!(
                        "benchkit: {} still removes deleted topics after {} s; going on",
                        cluster.name,
                        DELETION_LIMIT.as_secs()
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn report_odd_exit(name: &str, code: i32, log: &Path) {
    if code != 0 && code != 128 + libc::SIGTERM {
        eprintln!(
            "benchkit: {name} exited with code {code} when stopped (log: {})",
            log.display()
        );
    }
}

fn split_latency(
    latency: anyhow::Result<LatencySummary>,
) -> (Option<LatencySummary>, Option<String>) {
    match latency {
        Ok(summary) => (Some(summary), None),
        Err(error) => (None, Some(format!("{error:#}"))),
    }
}

/// Writes the page cache back before a copy: the fill (or the run before) leaves gigabytes
/// dirty, and once writers pass vm.dirty_ratio the kernel holds them back, so a copy
/// would be measured against the fill's writeback (a 6 GiB copy's target broker slowed to
/// 40 MiB/s for seconds near its end). A source cluster in production has its log on disk.
fn write_back_page_cache() {
    let started = Instant::now();
    let dirty = procfs::dirty_bytes();
    match std::process::Command::new("sync").status() {
        Ok(status) if status.success() => eprintln!(
            "benchkit: sync: wrote back {} MiB of page cache in {:.1} s",
            dirty.map_or(0, |b| b >> 20),
            started.elapsed().as_secs_f64()
        ),
        Ok(status) => {
            eprintln!("benchkit: sync exited with {status}; the copy may wait for writeback")
        }
        Err(error) => {
            eprintln!("benchkit: cannot run sync ({error}); the copy may wait for writeback")
        }
    }
}

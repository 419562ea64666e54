//! benchkit: the end-to-end benchmark of strait against MirrorMaker 2 and 1, run by
//! `testbed/bench`. It starts its own source and target clusters, fills a topic per
//! workload, lets each system copy it in turn, and writes a report under target/bench/.

mod bench;
mod ceiling;
mod clock;
mod clusters;
mod copy;
mod java;
mod kafka;
mod latency;
mod mirrors;
mod options;
mod process;
mod procfs;
mod report;
mod tcp_alone;
mod wan;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::bench::{Bench, Settings};
use crate::clusters::ClusterSpec;
use crate::clusters::Testbed;
use crate::java::Kafka;
use crate::kafka::Cluster;
use crate::mirrors::Programs;
use crate::options::{parse_list, ByteSize, System};
use crate::report::{Environment, Report};
use crate::wan::{Link, WanSpec};
use crate::workload::Workload;

const KAFKA_VERSION: &str = "4.3.1";
const LEGACY_KAFKA_VERSION: &str = "3.9.2";
/// `--target-warm-up`'s default, in bytes.
const DEFAULT_TARGET_WARM_UP: u64 = 6 << 30;
const DEFAULT_TCP_ALONE_CONNECTIONS: usize = 32;

/// strait against MirrorMaker 2 and 1 on the same local brokers.
#[derive(Parser)]
#[command(name = "benchkit")]
struct Cli {
    /// The strait checkout (for testbed/testbed and target/bench).
    #[arg(long)]
    repo: PathBuf,
    /// The strait binary to measure (a release build).
    #[arg(long)]
    strait: PathBuf,
    /// Record data per workload (values only): 1GiB, 256MiB, ...
    #[arg(long, default_value = "1GiB")]
    size: ByteSize,
    /// Runs of every system, interleaved (A B C, A B C, ...).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Comma-separated: strait, mm2, mm2-tuned, mm1, ceiling.
    #[arg(long, default_value = "strait,mm2,mm2-tuned,mm1,ceiling")]
    systems: String,
    /// Comma-separated: w1, w2.
    #[arg(long, default_value = "w1,w2")]
    workload: String,
    /// Emulated WAN between the source cluster and the mirror (which runs next to the
    /// target), e.g. rtt=100ms,rate=1gbit,loss=0.1%; also queue=, mtu=, offload=off (the
    /// link without segmentation offload, as before 2026-11-23), and tune= (a sysctl
    /// profile such as tuning/wan-100ms.conf applied at both ends).
    #[arg(long)]
    wan: Option<WanSpec>,
    /// Across a WAN, the side the mirrors run on: target (the default: fetches cross the
    /// link) or source (produce requests cross it, the target broker autotunes its
    /// receive buffers, tuned Java producers their send buffers). Not for the ceiling.
    #[arg(long, default_value = "target", value_parser = ["target", "source"])]
    mirror_beside: String,
    /// Records per second of the latency load (1 KiB each).
    #[arg(long, default_value_t = 1000)]
    latency_rate: u32,
    /// Seconds of latency load that are measured, after a warm-up.
    #[arg(long, default_value_t = 20)]
    latency_seconds: u64,
    #[arg(long, default_value_t = 5)]
    latency_warmup_seconds: u64,
    /// Time budget of one copy in seconds, from launch to the last record.
    #[arg(long, default_value_t = 900)]
    time_limit: u64,
    /// Heap of each benchmark broker.
    #[arg(long, default_value = "2g")]
    broker_heap: String,
    /// A strait setting for every strait run, e.g. `strait.memory.budget.bytes=1073741824`
    /// (repeatable): what the report measured with it is in its command line.
    #[arg(long = "strait-set", value_name = "KEY=VALUE")]
    strait_set: Vec<String>,
    /// Leave the benchmark clusters and the filled topics for the next invocation
    /// (and reuse them if they are there).
    #[arg(long)]
    keep_clusters: bool,
    /// At most this much record data (values) of each workload is written to scratch
    /// topics on the target before its first run, in rounds of 1 GiB until the broker's
    /// CPU per GiB settles, so that no system is measured against a cold broker JVM;
    /// 0 measures the first run against a freshly started target broker.
    #[arg(long, default_value_t = ByteSize(DEFAULT_TARGET_WARM_UP))]
    target_warm_up: ByteSize,
    /// Across a WAN, before a workload's runs: send its source log's size in bytes over
    /// this many plain TCP connections from the source's namespace to the target's, to
    /// measure what the link gives TCP itself (32: strait's fetch connections to one
    /// source broker at 300 ms with W1's 8 partitions); 0 skips it.
    #[arg(long, default_value_t = DEFAULT_TCP_ALONE_CONNECTIONS)]
    tcp_alone_connections: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let keep = cli.keep_clusters;
    if let Err(error) = install_signal_cleanup(keep) {
        eprintln!("benchkit: {error:#}");
        return ExitCode::FAILURE;
    }
    // The work runs on a thread of its own: across a WAN that thread moves into the
    // target's network namespace, while this one stays where the link is managed from,
    // so that taking the link down (which stops what runs inside) leaves this process be.
    let outcome = std::thread::spawn(move || run(cli))
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the benchmark thread panicked")));
    cleanup(keep);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchkit: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn cleanup(keep_clusters: bool) {
    process::kill_all(Duration::from_secs(10));
    if !keep_clusters {
        clusters::stop_all_started();
    }
    wan::take_down();
}

/// Ctrl-C, SIGTERM, SIGHUP: stop every process and cluster this run started, then exit.
fn install_signal_cleanup(keep_clusters: bool) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            eprintln!("benchkit: signal {signal}: stopping what the benchmark started");
            cleanup(keep_clusters);
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.wan.is_some() && cli.keep_clusters {
        anyhow::bail!(
            "--keep-clusters does not go with --wan: the link, and the clusters in its namespaces, end with the run"
        );
    }
    let systems: Vec<System> = parse_list(&cli.systems)?;
    let mirror_beside_source = cli.mirror_beside == "source";
    if mirror_beside_source && cli.wan.is_none() {
        anyhow::bail!("--mirror-beside source needs --wan: without a link both sides are one");
    }
    if mirror_beside_source && systems.contains(&System::Ceiling) {
        anyhow::bail!(
            "--mirror-beside source does not go with the ceiling (Kafka's perf tools run beside the target); leave ceiling out of --systems"
        );
    }
    let workloads: Vec<Workload> = parse_list(&cli.workload)?;
    if cli.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    let strait = cli
        .strait
        .canonicalize()
        .with_context(|| format!("strait binary {}", cli.strait.display()))?;
    let repo = cli.repo.canonicalize().context("--repo")?;

    let stamp = clock::utc_stamp();
    let bench_dir = repo.join("target/bench");
    let out = bench_dir.join(format!(
        "{}-{}",
        stamp.replace([' ', ':'], ""),
        cli.workload.replace(',', "-")
    ));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    eprintln!("benchkit: logs and results in {}", out.display());

    let testbed = Testbed::new(&repo);
    let kafka = Kafka::new(&testbed.script, KAFKA_VERSION, "INFO", &out)?;
    let legacy_kafka = Kafka::new(&testbed.script, LEGACY_KAFKA_VERSION, "INFO", &out)?;
    let specs = match &cli.wan {
        None => ClusterSpec::loopback(),
        Some(spec) => {
            eprintln!("benchkit: bringing up the WAN link ({spec})");
            let link = Link::up(&repo, spec, &out.join("wan.log"))?;
            // Before any client or child exists: they all start on the target's side.
            link.enter_target_side()?;
            ClusterSpec::wan(wan::source_namespace(), mirror_beside_source)
        }
    };
    let mut bootstraps = Vec::new();
    for spec in &specs {
        eprintln!(
            "benchkit: starting cluster {} (Kafka {KAFKA_VERSION}, -Xmx{})",
            spec.name, cli.broker_heap
        );
        let log = out.join(format!("{}-start.log", spec.name));
        bootstraps.push(testbed.start(spec, &cli.broker_heap, cli.keep_clusters, &log)?);
    }
    let [source_spec, target_spec] = &specs;
    let source = Cluster::connect(source_spec.name, &bootstraps[0])?;
    let target = Cluster::connect(target_spec.name, &bootstraps[1])?;

    let settings = Settings {
        size: cli.size.0,
        runs: cli.runs,
        systems: systems.clone(),
        latency_rate: cli.latency_rate,
        latency_warmup: Duration::from_secs(cli.latency_warmup_seconds),
        latency_measured: Duration::from_secs(cli.latency_seconds),
        time_limit: Duration::from_secs(cli.time_limit),
        reuse_fill: cli.keep_clusters,
        target_warm_up: cli.target_warm_up.0,
        long_link: cli.wan.is_some(),
        tcp_alone_connections: cli.tcp_alone_connections,
        mirror_beside_source,
        strait_settings: strait_settings(&cli.strait_set)?,
    };
    let bench = Bench {
        settings: &settings,
        session: clock::session_tag(),
        out: &out,
        testbed: &testbed,
        source: &source,
        target: &target,
        source_name: source_spec.name,
        target_name: target_spec.name,
        source_namespace: source_spec.namespace.as_deref(),
        programs: Programs {
            strait: &strait,
            kafka: &kafka,
            legacy_kafka: &legacy_kafka,
        },
    };
    let mut report = Report {
        environment: environment(&repo, &cli, &stamp),
        workloads: Vec::new(),
    };
    for workload in workloads {
        let mut done = Vec::new();
        let workload_report = bench.workload(workload, &mut |measurement| {
            eprintln!("benchkit: {}", one_line(measurement, settings.runs));
            done.push(measurement.clone());
            let partial = out.join("measurements-so-far.json");
            if let Ok(json) = serde_json::to_string_pretty(&done) {
                let _ = std::fs::write(partial, json);
            }
        })?;
        report.workloads.push(workload_report);
        report.environment.load_average_at_end = load_average();
        write_report(&report, &out, &bench_dir)?;
    }
    println!("{}", report::markdown(&report));
    eprintln!(
        "benchkit: report in {} and {}",
        out.join("report.md").display(),
        bench_dir.join("latest.md").display()
    );
    Ok(())
}

fn write_report(report: &Report, out: &Path, bench_dir: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    let markdown = report::markdown(report);
    for (dir, stem) in [(out, "report"), (bench_dir, "latest")] {
        std::fs::write(dir.join(format!("{stem}.json")), &json)?;
        std::fs::write(dir.join(format!("{stem}.md")), &markdown)?;
    }
    Ok(())
}

fn one_line(m: &report::Measurement, runs: u32) -> String {
    let head = format!("{} run {}/{runs} {}", m.workload, m.run, m.system.name());
    match (&m.metrics, &m.error) {
        (Some(x), _) => {
            let latency = match (&x.latency, &x.latency_error) {
                (Some(l), _) => format!(
                    "latency p50 {:.1} p99 {:.1} p99.9 {:.1} ms",
                    l.p50_ms, l.p99_ms, l.p999_ms
                ),
                (None, Some(e)) => format!("latency failed: {e}"),
                (None, None) => String::new(),
            };
            format!(
                "{head}: {} MiB/s{}, {:.2} CPU s/GiB, target broker {:.2} CPU s/GiB, peak RSS {:.0} MiB, {latency}",
                report::rate(x.throughput_mib_s),
                match (x.second_half_mib_s, x.middle_half_mib_s) {
                    (Some(second), Some(middle)) => format!(
                        " ({} in the second half, {} in the middle half)",
                        report::rate(second),
                        report::rate(middle)
                    ),
                    _ => String::new(),
                },
                x.cpu_s_per_gib, x.broker_cpu_s_per_gib, x.peak_rss_mib
            )
        }
        (None, Some(error)) => format!("{head}: FAILED: {error}"),
        (None, None) => format!("{head}: no result"),
    }
}

fn environment(repo: &Path, cli: &Cli, stamp: &str) -> Environment {
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let network = match &cli.wan {
        None => "loopback network".to_string(),
        Some(spec) if cli.mirror_beside == "source" => format!(
            "emulated WAN {spec} (testbed/wan; source cluster and mirror in namespace {}, target cluster in {} with socket.receive.buffer.bytes=-1; tuned Java producers with send.buffer.bytes=-1)",
            wan::source_namespace(),
            wan::target_namespace()
        ),
        Some(spec) => format!(
            "emulated WAN {spec} (testbed/wan; source cluster in namespace {}, target cluster and mirror in {})",
            wan::source_namespace(),
            wan::target_namespace()
        ),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / f64::from(1 << 20));
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let java = command_output("java", &["-version"], true);
    let revision = command_output(
        "git",
        &[
            "-C",
            &repo.display().to_string(),
            "describe",
            "--always",
            "--dirty",
        ],
        false,
    );
    Environment {
        date_utc: stamp.to_string(),
        command: format!(
            "testbed/bench --size {} --runs {} --systems {} --workload {}{}{}{}{}{}",
            cli.size,
            cli.runs,
            cli.systems,
            cli.workload,
            cli.wan.as_ref().map_or(String::new(), |w| format!(" --wan {w}")),
            if cli.mirror_beside == "source" {
                " --mirror-beside source"
            } else {
                ""
            },
            if cli.target_warm_up.0 == DEFAULT_TARGET_WARM_UP {
                String::new()
            } else {
                format!(" --target-warm-up {}", cli.target_warm_up)
            },
            if cli.tcp_alone_connections == DEFAULT_TCP_ALONE_CONNECTIONS {
                String::new()
            } else {
                format!(" --tcp-alone-connections {}", cli.tcp_alone_connections)
            },
            cli.strait_set
                .iter()
                .map(|set| format!(" --strait-set {set}"))
                .collect::<String>()
        ),
        machine: format!("{cpu}, {cores} cores, {memory_gib:.0} GiB RAM, Linux {kernel}, {network}"),
        versions: format!(
            "strait {revision} (release build); brokers Kafka {KAFKA_VERSION} (KRaft, 1 broker each, -Xmx{}); \
             MirrorMaker 2 {KAFKA_VERSION}; MirrorMaker 1 {LEGACY_KAFKA_VERSION}; {java}",
            cli.broker_heap
        ),
        load_average_at_start: load_average(),
        load_average_at_end: String::new(),
    }
}

fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn command_output(program: &str, args: &[&str], stderr: bool) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(if stderr { &o.stderr } else { &o.stdout })
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| format!("{program}: unknown"))
}

/// `--strait-set` values as `(key, value)`, each checked for its `=`.
fn strait_settings(sets: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    sets.iter()
        .map(|set| match set.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.trim().to_string()))
            }
            _ => anyhow::bail!("--strait-set {set:?}: expected KEY=VALUE, e.g. strait.memory.budget.bytes=1073741824"),
        })
        .collect()
}

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use strait::config::{FlowConfig, MirrorConfig};
use strait::engine::{FlowReport, FlowRunner};
use strait::failover::OffsetsView;
use strait::offsets::{TopicPartition, Translation};
use strait::topology::TopologySync;

/// How long a stop waits for the failover tasks after the flows have stopped.
const FAILOVER_STOP_LIMIT: Duration = Duration::from_secs(90);

/// strait mirrors Kafka topics between clusters, forwarding record batches as they are.
#[derive(Parser)]
#[command(name = "strait", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mirror every enabled flow of an MM2 properties file until SIGINT/SIGTERM.
    Run {
        /// MirrorMaker 2's connect-mirror-maker.properties (or strait's own, same syntax).
        file: PathBuf,
        /// Run only the flows whose target is one of these aliases (as MM2's --clusters).
        #[arg(long, num_args = 1..)]
        clusters: Vec<String>,
        /// Do not start partitions where MM2 stopped (read from MM2's offsets topic on
        /// the target) when strait has no progress for them yet.
        #[arg(long)]
        no_mm2_takeover: bool,
    },
    /// A consumer group's offsets on both clusters of a flow, translated exactly.
    Offsets {
        file: PathBuf,
        /// The flow, as `source->target`; needed when the file enables several.
        #[arg(long)]
        flow: Option<String>,
        /// Show this group's offsets on both clusters and the target group's lag.
        #[arg(long)]
        group: Option<String>,
        #[command(subcommand)]
        action: Option<OffsetsAction>,
    },
    /// Validate the file, connect to the source clusters and print what would be mirrored.
    Check {
        file: PathBuf,
        #[arg(long, num_args = 1..)]
        clusters: Vec<String>,
    },
    /// Show what would keep one TCP connection from filling a link of this round-trip
    /// time and rate on this machine, and the sysctl and strait settings that fix it.
    Tune {
        /// Round-trip time of the link, e.g. 100ms or 0.3s (a running flow's status line
        /// shows the one it measures).
        #[arg(long, value_parser = strait::tune::parse_rtt, required_unless_present = "measure")]
        rtt: Option<std::time::Duration>,
        /// Rate of the link in bits per second, e.g. 1gbit or 500mbit.
        #[arg(long, value_parser = strait::tune::parse_bandwidth)]
        bandwidth: u64,
        /// Also check this properties file's socket buffers and memory budgets.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Measure the round-trip time to the source clusters of --config's flows (TCP
        /// handshakes to their bootstrap servers) instead of taking --rtt.
        #[arg(long, requires = "config", conflicts_with = "rtt")]
        measure: bool,
    },
}

#[derive(Subcommand)]
enum OffsetsAction {
    /// Print the target offsets of a group (`--group`) or of one source offset
    /// (`--topic --partition --offset`) as `topic partition offset`.
    Translate {
        #[arg(long)]
        group: Option<String>,
        #[arg(long, requires_all = ["partition", "offset"], conflicts_with = "group")]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        #[arg(long)]
        offset: Option<i64>,
    },
    /// Commit a group's translated offsets on the target for a switch-over; a dry run
    /// unless `--apply`. The group must have no members on the target.
    Failover {
        #[arg(long)]
        group: String,
        #[arg(long)]
        apply: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRAIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("strait: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("strait: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The longest round trip to the bootstrap servers of the flows' source clusters.
async fn measured_source_rtt(config: &MirrorConfig) -> anyhow::Result<std::time::Duration> {
    let mut longest = None;
    for flow in &config.flows {
        let Some(cluster) = config.cluster(&flow.source) else {
            continue;
        };
        for address in &cluster.bootstrap_servers {
            match strait::tune::measure_rtt(address).await {
                Ok(rtt) => {
                    println!(
                        "measured rtt to {} ({address}): {:.1} ms (quickest of {} TCP handshakes)",
                        cluster.alias,
                        rtt.as_secs_f64() * 1e3,
                        strait::tune::HANDSHAKES
                    );
                    longest = longest.max(Some(rtt));
                }
                Err(reason) => eprintln!("strait tune: {reason}"),
            }
        }
    }
    longest.ok_or_else(|| {
        anyhow::anyhow!("no source broker answered; give the round trip with --rtt instead")
    })
}

fn load(file: &PathBuf) -> Result<MirrorConfig, ExitCode> {
    match MirrorConfig::load(file) {
        Ok((config, warnings)) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            Ok(config)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Err(ExitCode::from(2))
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Tune {
            rtt,
            bandwidth,
            config,
            measure,
        } => {
            use strait::tune::{advise, KernelLimits, LinkSpec, ProcSys, StraitSettings};
            let config = match config {
                Some(file) => match load(&file) {
                    Ok(config) => Some(config),
                    Err(code) => return Ok(code),
                },
                None => None,
            };
            let settings = config.as_ref().map(StraitSettings::from_config);
            let rtt = match (rtt, &config, measure) {
                (Some(rtt), _, _) => rtt,
                (None, Some(config), true) => measured_source_rtt(config).await?,
                _ => anyhow::bail!("give --rtt, or --config with --measure"),
            };
            let link = LinkSpec {
                rtt,
                bits_per_second: bandwidth,
            };
            let kernel = KernelLimits::read(&ProcSys::default());
            print!("{}", advise(&link, &kernel, settings.as_ref()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file, clusters } => {
            let config = match load(&file) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            let flows = match config.flows_for_targets(&clusters) {
                Ok(flows) => flows,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(ExitCode::from(2));
                }
            };
            for flow in flows {
                let source = strait::run::source_client(&config, flow)
                    .with_context(|| format!("flow {}: the source's settings", flow.name()))?;
                let plan = strait::run::plan(&source, flow).await.with_context(|| {
                    format!("flow {}: reading the source's topics", flow.name())
                })?;
                print!("{plan}");
                let preview = strait::run::sync_preview(&config, flow, &plan)
                    .await
                    .with_context(|| format!("flow {}: connecting", flow.name()))?;
                print!("{preview}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Offsets {
            file,
            flow,
            group,
            action,
        } => {
            let config = match load(&file) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            offsets_command(&config, flow.as_deref(), group, action).await
        }
        Command::Run {
            file,
            clusters,
            no_mm2_takeover,
        } => {
            let config = match load(&file) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            let flows = match config.flows_for_targets(&clusters) {
                Ok(flows) => flows,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(ExitCode::from(2));
                }
            };
            // Installed before any flow starts: a signal while flows are still being
            // prepared stops the ones already running cleanly instead of killing strait.
            let stopped = stop_on_signal().context("installing the SIGINT/SIGTERM handlers")?;
            tracing::info!(
                flows = flows.len(),
                "starting; SIGINT or SIGTERM stops strait cleanly at any point"
            );
            let mut running = Vec::new();
            let mut failovers = Vec::new();
            // All at once: across long links each flow's start takes seconds of round
            // trips, which one after another would add up (hub and spoke: one per region).
            let (config, stopped) = (&config, &stopped);
            let mut starting: FuturesUnordered<_> = flows
                .iter()
                .map(|&flow| async move {
                    (
                        flow,
                        start_flow(config, flow, no_mm2_takeover, stopped).await,
                    )
                })
                .collect();
            let mut not_started: Vec<&FlowConfig> = flows.clone();
            let mut signalled = stopped.clone();
            loop {
                let started = tokio::select! {
                    started = starting.next() => match started {
                        Some((flow, started)) => {
                            not_started.retain(|other| !std::ptr::eq(*other, flow));
                            started?
                        }
                        None => break,
                    },
                    _ = signalled.wait_for(|stop| *stop) => {
                        for flow in &not_started {
                            tracing::info!(flow = %flow.name(), "stopped before this flow had started");
                        }
                        break;
                    }
                };
                if let Some((flow_task, failover_task)) = started {
                    running.push(flow_task);
                    failovers.push(failover_task);
                }
            }
            // Cancels the preparation of flows a stop signal overtook.
            drop(starting);
            let mut stopped_partitions = 0;
            for flow in running {
                let report = flow.await.context("a flow task panicked")?;
                stopped_partitions += report.stopped_partitions.len();
                for partition in &report.stopped_partitions {
                    eprintln!("stopped partition {partition}");
                }
            }
            // Each step of a failover task is bounded, but a stop must never hang on one:
            // past this limit strait exits and says so.
            for failover in failovers {
                match tokio::time::timeout(FAILOVER_STOP_LIMIT, failover).await {
                    Ok(joined) => joined.context("a failover task panicked")?,
                    Err(_) => tracing::warn!(
                        "offset translation did not finish its last writes within {}s of the flow stopping; exiting without them; the warnings above name the step that stalled",
                        FAILOVER_STOP_LIMIT.as_secs()
                    ),
                }
            }
            Ok(if stopped_partitions > 0 {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// Prepares one flow and spawns its tasks: the flow itself, its offset translation and its
/// topology sync. `None` when there is nothing to mirror and nothing to wait for.
async fn start_flow(
    config: &MirrorConfig,
    flow: &FlowConfig,
    no_mm2_takeover: bool,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<Option<(JoinHandle<FlowReport>, JoinHandle<()>)>> {
    let (source_endpoint, target_endpoint) = strait::run::flow_endpoints(config, flow)
        .with_context(|| format!("flow {}: the clusters' settings", flow.name()))?;
    // Offset translation prepares beside the plan and the runner: across a long link it
    // takes round trips of its own (it creates a topic on the source), and the first
    // fetch waits for it. Either failing stops the flow before anything is copied; with
    // nothing to mirror it is dropped unfinished.
    let failover = strait::run::prepare_failover(flow, &source_endpoint, &target_endpoint);
    tokio::pin!(failover);
    let mut failover_prepared = None;
    let runner = prepare_runner(config, flow, no_mm2_takeover);
    tokio::pin!(runner);
    let runner = loop {
        tokio::select! {
            runner = &mut runner => break runner,
            prepared = &mut failover, if failover_prepared.is_none() => {
                failover_prepared = Some(prepared);
            }
        }
    };
    let Some(mut runner) = runner? else {
        return Ok(None);
    };
    let failover = match failover_prepared {
        Some(prepared) => prepared,
        None => failover.await,
    };
    let failover =
        failover.with_context(|| format!("flow {}: preparing offset translation", flow.name()))?;
    let failover = strait::run::spawn_failover(failover, &mut runner);
    let (source, target) = strait::run::flow_clients(config, flow)?;
    let sync = TopologySync::new(flow.clone(), source, target, runner.routes());
    if sync.enabled() {
        tokio::spawn(sync.run(stopped.clone()));
    }
    Ok(Some((tokio::spawn(runner.run(stopped.clone())), failover)))
}

/// The plan, MM2's progress taken over, and the flow's runner prepared; `None` when
/// there is nothing to mirror and nothing to wait for.
async fn prepare_runner(
    config: &MirrorConfig,
    flow: &FlowConfig,
    no_mm2_takeover: bool,
) -> anyhow::Result<Option<FlowRunner>> {
    let source_client = strait::run::source_client(config, flow)
        .with_context(|| format!("flow {}: the source's settings", flow.name()))?;
    let plan = strait::run::plan(&source_client, flow)
        .await
        .with_context(|| format!("flow {}: reading the source's topics", flow.name()))?;
    if plan.topics.is_empty() {
        match flow.refresh_topics {
            Some(interval) => tracing::warn!(flow = %flow.name(),
                "no source topic matches this flow's topics setting yet; looking again every {}s", interval.as_secs()),
            None => {
                tracing::warn!(flow = %flow.name(),
                    "no source topic matches this flow's topics setting, and refresh.topics.enabled is false: nothing to mirror");
                return Ok(None);
            }
        }
    }
    let spec = strait::run::flow_spec(config, flow, &plan)?;
    if !no_mm2_takeover {
        let taken = strait::run::take_over_from_mm2(flow, &spec)
            .await
            .with_context(|| {
                format!(
                    "flow {}: reading MM2's progress (--no-mm2-takeover skips it)",
                    flow.name()
                )
            })?;
        for seed in taken {
            tracing::info!(flow = %flow.name(), topic = %seed.topic_partition.topic,
                partition = seed.topic_partition.partition, start = seed.offset,
                "partition starts where MM2 stopped");
        }
    }
    let runner = FlowRunner::prepare(spec, source_client)
        .await
        .with_context(|| format!("flow {}: preparing", flow.name()))?;
    Ok(Some(runner))
}

async fn offsets_command(
    config: &MirrorConfig,
    flow: Option<&str>,
    group: Option<String>,
    action: Option<OffsetsAction>,
) -> anyhow::Result<ExitCode> {
    let flows = config
        .flows_for_targets::<&str>(&[])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let flow = match flow {
        Some(name) => flows.into_iter().find(|f| f.name() == name),
        None if flows.len() == 1 => flows.into_iter().next(),
        None => {
            eprintln!("the file enables several flows: name one with --flow source->target");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(flow) = flow else {
        eprintln!("no such enabled flow in the file");
        return Ok(ExitCode::from(2));
    };
    let cluster = |alias: &str| config.cluster(alias).expect("flows name declared clusters");
    let source = strait::run::endpoint(cluster(&flow.source))?;
    let target = strait::run::endpoint(cluster(&flow.target))?;
    let remote = flow.clone();
    let view = OffsetsView::connect(&source, &target, move |t| remote.remote_topic(t))
        .await
        .with_context(|| format!("flow {}: reading offset maps", flow.name()))?;
    match action {
        None => {
            let Some(group) = group else {
                eprintln!("name the group: strait offsets <file> --group G");
                return Ok(ExitCode::from(2));
            };
            println!("SOURCE-TOPIC PARTITION SOURCE-OFFSET TARGET-TOPIC TARGET-OFFSET TARGET-COMMITTED TARGET-LAG");
            let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
            for p in view.group_positions(&group).await? {
                println!(
                    "{} {} {} {} {} {} {}",
                    p.source.topic,
                    p.source.partition,
                    p.source_offset,
                    p.target.topic,
                    show(p.target_offset()),
                    show(p.target_committed),
                    show(p.target_lag())
                );
            }
        }
        Some(OffsetsAction::Translate {
            group: Some(group), ..
        }) => {
            for p in view.group_positions(&group).await? {
                if let Some(offset) = p.target_offset() {
                    println!("{} {} {offset}", p.target.topic, p.target.partition);
                }
            }
        }
        Some(OffsetsAction::Translate {
            topic: Some(topic),
            partition: Some(partition),
            offset: Some(offset),
            ..
        }) => {
            let source = TopicPartition { topic, partition };
            match view.translate(&source, offset) {
                Some((target, Translation::Exact(at))) => {
                    println!("{} {} {at}", target.topic, target.partition)
                }
                Some((target, Translation::Ahead { target_end })) => {
                    println!("{} {} {target_end}", target.topic, target.partition);
                    eprintln!(
                        "offset {offset} is not mirrored yet: the target's end is the safe answer"
                    );
                }
                Some((_, Translation::BeforeMap { start })) => {
                    eprintln!("offset {offset} is older than strait's map (it starts at {start}): no exact answer");
                    return Ok(ExitCode::FAILURE);
                }
                Some((_, Translation::NotMirrored)) | None => {
                    eprintln!(
                        "strait has mirrored nothing of {}-{partition} yet",
                        source.topic
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Some(OffsetsAction::Translate { .. }) => {
            eprintln!("translate needs --group G, or --topic T --partition P --offset O");
            return Ok(ExitCode::from(2));
        }
        Some(OffsetsAction::Failover { group, apply }) => {
            let offsets = view.failover(&group, apply).await?;
            for o in &offsets {
                println!(
                    "{} {} {}",
                    o.topic_partition.topic, o.topic_partition.partition, o.offset
                );
            }
            if apply {
                eprintln!(
                    "committed {} offsets of group {group} on {}",
                    offsets.len(),
                    flow.target
                );
            } else {
                eprintln!(
                    "dry run: add --apply to commit these offsets of group {group} on {}",
                    flow.target
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Registers the SIGINT and SIGTERM handlers now, so that from here on a signal asks for
/// a clean stop instead of ending the process, and returns the flag that turns true then.
fn stop_on_signal() -> std::io::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("signal received: finishing sends in flight and committing progress");
        let _ = stop.send(true);
    });
    Ok(stopped)
}

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use strait::config::MirrorConfig;
use strait::engine::FlowRunner;
use strait::topology::TopologySync;

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
                let plan = strait::run::plan(&config, flow).await.with_context(|| {
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
        Command::Run { file, clusters } => {
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
            let (stop, stopped) = watch::channel(false);
            let mut running = Vec::new();
            for flow in flows {
                let plan = strait::run::plan(&config, flow).await.with_context(|| {
                    format!("flow {}: reading the source's topics", flow.name())
                })?;
                if plan.topics.is_empty() {
                    match flow.refresh_topics {
                        Some(interval) => tracing::warn!(flow = %flow.name(),
                            "no source topic matches this flow's topics setting yet; looking again every {}s", interval.as_secs()),
                        None => {
                            tracing::warn!(flow = %flow.name(),
                                "no source topic matches this flow's topics setting, and refresh.topics.enabled is false: nothing to mirror");
                            continue;
                        }
                    }
                }
                let spec = strait::run::flow_spec(&config, flow, &plan)?;
                let runner = FlowRunner::prepare(spec)
                    .await
                    .with_context(|| format!("flow {}: preparing", flow.name()))?;
                let (source, target) = strait::run::flow_clients(&config, flow)?;
                let sync = TopologySync::new(flow.clone(), source, target, runner.routes());
                if sync.enabled() {
                    tokio::spawn(sync.run(stopped.clone()));
                }
                running.push(tokio::spawn(runner.run(stopped.clone())));
            }
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!(
                    "signal received: finishing sends in flight and committing progress"
                );
                let _ = stop.send(true);
            });
            let mut stopped_partitions = 0;
            for flow in running {
                let report = flow.await.context("a flow task panicked")?;
                stopped_partitions += report.stopped_partitions.len();
                for partition in &report.stopped_partitions {
                    eprintln!("stopped partition {partition}");
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

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

//! Results: one measurement per (workload, run, system), medians per system, each
//! peer's ratio to strait from the same run, as JSON and as markdown tables.

use std::fmt::Write as _;

use serde::Serialize;

use crate::latency::LatencySummary;
use crate::options::System;
use crate::tcp_alone::TcpAlone;

#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub workload: String,
    pub run: u32,
    pub system: System,
    /// The log of the system's process(es).
    pub log: String,
    /// Why the run does not count; `None` when it does.
    pub error: Option<String>,
    pub metrics: Option<Metrics>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    /// Source log bytes / time from the first to the last record on the target.
    pub throughput_mib_s: f64,
    /// The second half of the source log bytes / the time the target took to go from
    /// half of the records to all of them: the rate once start-up is behind. None for
    /// the ceiling (its consumer tool reports only a total).
    pub second_half_mib_s: Option<f64>,
    /// Half of the source log bytes / the time the target took from a quarter of the
    /// records to three quarters: the steady rate, with buffers that fill at the start
    /// and drain at the end left out. None for the ceiling.
    pub middle_half_mib_s: Option<f64>,
    /// Across an emulated link: bytes the link carried in the middle half / its time,
    /// resent and fetched-twice bytes included; how full the link was.
    pub link_middle_half_mib_s: Option<f64>,
    /// Busy share of the whole machine's CPU during the copy, in percent: near 100, the
    /// run measured the machine, not the mirror.
    pub machine_busy_percent: Option<f64>,
    /// The share of the machine's CPU time the hypervisor gave to others, in percent.
    pub machine_steal_percent: Option<f64>,
    pub records_per_s: f64,
    pub copy_seconds: f64,
    /// From launch to the first record on the target (none for the ceiling).
    pub startup_seconds: Option<f64>,
    /// CPU seconds of the mirror process (the ceiling: both tools) within the copy
    /// window, per GiB of source log bytes.
    pub cpu_s_per_gib: f64,
    /// CPU seconds of the target broker within the copy window, per GiB.
    pub broker_cpu_s_per_gib: f64,
    /// VmHWM of the mirror process at its end (the ceiling: the larger tool).
    pub peak_rss_mib: f64,
    /// Log bytes of the copy on the target / source log bytes.
    pub target_bytes_ratio: f64,
    pub latency: Option<LatencySummary>,
    pub latency_error: Option<String>,
    /// How the copy was checked.
    pub verified: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadInfo {
    pub name: String,
    pub description: String,
    pub records: u64,
    pub record_bytes: u64,
    pub source_log_bytes: u64,
    pub latency_records_per_second: u32,
    pub latency_measured_seconds: u64,
    /// Records of the workload written to the target before its first run.
    pub target_warm_up_records: u64,
    /// The target broker's CPU seconds per GiB in each round of its warm-up.
    pub target_warm_up_cpu_s_per_gib: Vec<f64>,
    /// Across a WAN: the source log's size carried by plain TCP across the link.
    pub tcp_alone: Option<TcpAlone>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub system: System,
    pub runs: usize,
    pub runs_ok: usize,
    pub throughput_mib_s: Option<f64>,
    pub throughput_vs_strait: Option<f64>,
    pub second_half_mib_s: Option<f64>,
    pub middle_half_mib_s: Option<f64>,
    pub link_middle_half_mib_s: Option<f64>,
    pub machine_busy_percent: Option<f64>,
    pub machine_steal_percent: Option<f64>,
    pub cpu_s_per_gib: Option<f64>,
    pub cpu_vs_strait: Option<f64>,
    pub broker_cpu_s_per_gib: Option<f64>,
    pub broker_cpu_vs_strait: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub startup_seconds: Option<f64>,
    pub target_bytes_ratio: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_p999_ms: Option<f64>,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    pub info: WorkloadInfo,
    pub summary: Vec<Summary>,
    pub measurements: Vec<Measurement>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    pub date_utc: String,
    pub command: String,
    pub machine: String,
    pub versions: String,
    pub load_average_at_start: String,
    /// Updated after each workload: other work on the machine shows here.
    pub load_average_at_end: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub environment: Environment,
    pub workloads: Vec<WorkloadReport>,
}

pub fn summarize(systems: &[System], measurements: &[Measurement]) -> Vec<Summary> {
    systems
        .iter()
        .map(|&system| {
            let mine: Vec<&Measurement> =
                measurements.iter().filter(|m| m.system == system).collect();
            let ok: Vec<&Metrics> = mine.iter().filter_map(|m| m.metrics.as_ref()).collect();
            let of = |pick: fn(&Metrics) -> Option<f64>| median(ok.iter().filter_map(|m| pick(m)));
            let ratio = |pick: fn(&Metrics) -> f64| {
                median(mine.iter().filter_map(|m| {
                    let strait = measurements.iter().find(|s| {
                        s.system == System::Strait && s.run == m.run && s.workload == m.workload
                    })?;
                    let (peer, strait) = (m.metrics.as_ref()?, strait.metrics.as_ref()?);
                    let base = pick(strait);
                    (base > 0.0).then(|| pick(peer) / base)
                }))
            };
            Summary {
                system,
                runs: mine.len(),
                runs_ok: ok.len(),
                throughput_mib_s: of(|m| Some(m.throughput_mib_s)),
                throughput_vs_strait: ratio(|m| m.throughput_mib_s),
                second_half_mib_s: of(|m| m.second_half_mib_s),
                middle_half_mib_s: of(|m| m.middle_half_mib_s),
                link_middle_half_mib_s: of(|m| m.link_middle_half_mib_s),
                machine_busy_percent: of(|m| m.machine_busy_percent),
                machine_steal_percent: of(|m| m.machine_steal_percent),
                cpu_s_per_gib: of(|m| Some(m.cpu_s_per_gib)),
                cpu_vs_strait: ratio(|m| m.cpu_s_per_gib),
                broker_cpu_s_per_gib: of(|m| Some(m.broker_cpu_s_per_gib)),
                broker_cpu_vs_strait: ratio(|m| m.broker_cpu_s_per_gib),
                peak_rss_mib: of(|m| Some(m.peak_rss_mib)),
                startup_seconds: of(|m| m.startup_seconds),
                target_bytes_ratio: of(|m| Some(m.target_bytes_ratio)),
                latency_p50_ms: of(|m| m.latency.map(|l| l.p50_ms)),
                latency_p99_ms: of(|m| m.latency.map(|l| l.p99_ms)),
                latency_p999_ms: of(|m| m.latency.map(|l| l.p999_ms)),
                errors: mine
                    .iter()
                    .filter_map(|m| {
                        let run = m.run;
                        m.error
                            .as_ref()
                            .map(|e| format!("run {run}: {e}"))
                            .or_else(|| {
                                let latency = m.metrics.as_ref()?.latency_error.as_ref()?;
                                Some(format!("run {run} latency: {latency}"))
                            })
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The middle value (mean of the two middle ones for an even count).
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

pub fn markdown(report: &Report) -> String {
    let env = &report.environment;
    let mut out = String::new();
    writeln!(out, "Date (UTC): {}  ", env.date_utc).unwrap();
    writeln!(out, "Machine: {}  ", env.machine).unwrap();
    writeln!(out, "Versions: {}  ", env.versions).unwrap();
    writeln!(
        out,
        "Load average (1, 5, 15 min) at start: {}; at end: {}  ",
        env.load_average_at_start, env.load_average_at_end
    )
    .unwrap();
    writeln!(out, "Command: `{}`", env.command).unwrap();
    for workload in &report.workloads {
        out.push('\n');
        out.push_str(&workload_markdown(workload));
    }
    out
}

/// How the target broker was prepared before the workload's first run.
fn warm_up_sentence(info: &WorkloadInfo) -> String {
    if info.target_warm_up_records == 0 {
        return "The target broker was not warmed up: the first run met a cold JVM.".to_string();
    }
    let costs: Vec<String> = info
        .target_warm_up_cpu_s_per_gib
        .iter()
        .map(|cost| format!("{cost:.2}"))
        .collect();
    format!(
        "Before the first run the target broker took {} records of this workload in {} rounds \
         to warm its JIT up (its CPU per GiB in each: {} s).",
        info.target_warm_up_records,
        costs.len(),
        costs.join(", ")
    )
}

fn workload_markdown(workload: &WorkloadReport) -> String {
    let info = &workload.info;
    let mut out = String::new();
    writeln!(
        out,
        "### {}\n\n{} records, {:.0} MiB of record values, {:.0} MiB of source log (record batches as stored). \
         Latency load: {} records/s for {} s. {}{}\n",
        info.description,
        info.records,
        mib(info.record_bytes),
        mib(info.source_log_bytes),
        info.latency_records_per_second,
        info.latency_measured_seconds,
        warm_up_sentence(info),
        info.tcp_alone
            .as_ref()
            .map_or(String::new(), |tcp| format!(" {}", tcp.sentence())),
    )
    .unwrap();
    out.push_str(
        "| system | MiB/s | × strait | 2nd half MiB/s | middle half MiB/s | link in middle half MiB/s | machine busy % | of it stolen % | CPU s/GiB | × strait | target broker CPU s/GiB | × strait \
         | peak RSS MiB | latency p50 / p99 / p99.9 ms | startup s | target/source bytes | runs ok |\n",
    );
    out.push_str(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in &workload.summary {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} | {} | {}/{} |",
            s.system.name(),
            rate_cell(s.throughput_mib_s),
            ratio(s.system, s.throughput_vs_strait),
            rate_cell(s.second_half_mib_s),
            rate_cell(s.middle_half_mib_s),
            rate_cell(s.link_middle_half_mib_s),
            number(s.machine_busy_percent, 0),
            number(s.machine_steal_percent, 1),
            number(s.cpu_s_per_gib, 2),
            ratio(s.system, s.cpu_vs_strait),
            number(s.broker_cpu_s_per_gib, 2),
            ratio(s.system, s.broker_cpu_vs_strait),
            number(s.peak_rss_mib, 0),
            number(s.latency_p50_ms, 1),
            number(s.latency_p99_ms, 1),
            number(s.latency_p999_ms, 1),
            number(s.startup_seconds, 1),
            number(s.target_bytes_ratio, 2),
            s.runs_ok,
            s.runs,
        )
        .unwrap();
    }
    if let Some(tcp) = &info.tcp_alone {
        writeln!(out, "\n{}", against_tcp_alone(tcp, &workload.summary)).unwrap();
    }
    let errors: Vec<String> = workload
        .summary
        .iter()
        .flat_map(|s| {
            s.errors
                .iter()
                .map(move |e| format!("- {}: {e}", s.system.name()))
        })
        .collect();
    if !errors.is_empty() {
        writeln!(out, "\nFailures (not counted):\n\n{}", errors.join("\n")).unwrap();
    }
    out
}

/// Each system's median copy as a share of what TCP alone carried across the link.
fn against_tcp_alone(tcp: &TcpAlone, summary: &[Summary]) -> String {
    let shares: Vec<String> = summary
        .iter()
        .filter_map(|s| {
            let whole = s.throughput_mib_s? / tcp.mib_s() * 100.0;
            let middle = s.middle_half_mib_s? / tcp.middle_half_mib_s() * 100.0;
            Some(format!(
                "{} {whole:.0} % (middle half {middle:.0} %)",
                s.system.name()
            ))
        })
        .collect();
    format!(
        "Against TCP alone ({:.0} MiB/s whole, {:.0} in the middle half): {}.",
        tcp.mib_s(),
        tcp.middle_half_mib_s(),
        if shares.is_empty() {
            "no run succeeded".to_string()
        } else {
            shares.join(", ")
        }
    )
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// A rate in MiB/s: whole numbers from 10 on, two significant digits below (MirrorMaker 2
/// with defaults moves 0.3 MiB/s across 300 ms, which whole numbers print as 0).
pub fn rate(mib_s: f64) -> String {
    match mib_s.abs() {
        r if r >= 9.95 || r == 0.0 => format!("{mib_s:.0}"),
        r if r >= 0.995 => format!("{mib_s:.1}"),
        _ => format!("{mib_s:.2}"),
    }
}

fn rate_cell(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), rate)
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_string(), |v| format!("{v:.decimals$}"))
}

fn ratio(system: System, value: Option<f64>) -> String {
    if system == System::Strait {
        return "1".to_string();
    }
    value.map_or_else(|| "–".to_string(), |v| format!("{v:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(system: System, run: u32, throughput: f64, cpu: f64) -> Measurement {
        Measurement {
            workload: "w1".to_string(),
            run,
            system,
            log: String::new(),
            error: None,
            metrics: Some(Metrics {
                throughput_mib_s: throughput,
                second_half_mib_s: Some(throughput),
                middle_half_mib_s: Some(throughput),
                link_middle_half_mib_s: None,
                machine_busy_percent: None,
                machine_steal_percent: None,
                records_per_s: 0.0,
                copy_seconds: 1.0,
                startup_seconds: Some(1.0),
                cpu_s_per_gib: cpu,
                broker_cpu_s_per_gib: 1.0,
                peak_rss_mib: 10.0,
                target_bytes_ratio: 1.0,
                latency: None,
                latency_error: None,
                verified: String::new(),
            }),
        }
    }

    #[test]
    fn medians_take_the_middle() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn ratios_pair_runs_and_failed_runs_do_not_count() {
        let mut failed = measured(System::Mm2, 3, 0.0, 0.0);
        failed.metrics = None;
        failed.error = Some("timed out".to_string());
        let measurements = vec![
            measured(System::Strait, 1, 100.0, 1.0),
            measured(System::Mm2, 1, 50.0, 4.0),
            measured(System::Strait, 2, 200.0, 1.0),
            measured(System::Mm2, 2, 50.0, 2.0),
            measured(System::Strait, 3, 100.0, 1.0),
            failed,
        ];
        let summary = summarize(&[System::Strait, System::Mm2], &measurements);
        let mm2 = &summary[1];
        assert_eq!((mm2.runs, mm2.runs_ok), (3, 2));
        assert_eq!(mm2.throughput_mib_s, Some(50.0));
        // Per run: 0.5 and 0.25, not the ratio of the medians (50 / 100).
        assert_eq!(mm2.throughput_vs_strait, Some(0.375));
        assert_eq!(mm2.cpu_vs_strait, Some(3.0));
        assert_eq!(mm2.errors, ["run 3: timed out"]);
        assert_eq!(summary[0].throughput_mib_s, Some(100.0));
    }

    #[test]
    fn each_system_is_set_against_tcp_alone() {
        let mut failed = measured(System::Mm2, 1, 0.0, 0.0);
        failed.metrics = None;
        failed.error = Some("timed out".to_string());
        let measurements = vec![measured(System::Strait, 1, 90.0, 1.0), failed];
        let summary = summarize(&[System::Strait, System::Mm2], &measurements);
        // 120 MiB in 1.2 s whole, its middle half (60 MiB) in 0.5 s.
        let tcp = TcpAlone {
            connections: 32,
            bytes: 120 << 20,
            seconds: 1.2,
            first_tenth_seconds: 0.3,
            middle_tenths_seconds: 0.8,
            last_tenth_seconds: 0.1,
            middle_half_seconds: 0.5,
        };
        assert_eq!(
            against_tcp_alone(&tcp, &summary),
            "Against TCP alone (100 MiB/s whole, 120 in the middle half): strait 90 % \
             (middle half 75 %)."
        );
        assert_eq!(
            against_tcp_alone(&tcp, &summary[1..]),
            "Against TCP alone (100 MiB/s whole, 120 in the middle half): no run succeeded."
        );
    }

    #[test]
    fn the_report_says_how_the_target_broker_was_warmed_up() {
        let mut info = WorkloadInfo {
            name: "w1".to_string(),
            description: "W1".to_string(),
            records: 10,
            record_bytes: 10240,
            source_log_bytes: 5000,
            latency_records_per_second: 1000,
            latency_measured_seconds: 3,
            target_warm_up_records: 0,
            target_warm_up_cpu_s_per_gib: Vec::new(),
            tcp_alone: None,
        };
        assert_eq!(
            warm_up_sentence(&info),
            "The target broker was not warmed up: the first run met a cold JVM."
        );
        info.target_warm_up_records = 2048;
        info.target_warm_up_cpu_s_per_gib = vec![7.031, 3.04];
        assert_eq!(
            warm_up_sentence(&info),
            "Before the first run the target broker took 2048 records of this workload in 2 rounds \
             to warm its JIT up (its CPU per GiB in each: 7.03, 3.04 s)."
        );
    }

    #[test]
    fn slow_rates_keep_two_significant_digits() {
        let shown: Vec<String> = [0.0, 0.311, 4.24, 9.96, 41.13, 108.6]
            .into_iter()
            .map(rate)
            .collect();
        assert_eq!(shown, ["0", "0.31", "4.2", "10", "41", "109"]);
    }
}

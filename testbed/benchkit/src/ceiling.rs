//! The ceiling: Kafka's own ConsumerPerformance reading the source topic alone, and
//! ProducerPerformance writing as many records of the same size and batching into the
//! target alone. A mirror does both at once, so neither rate is one it can beat.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::clock;
use crate::copy::{CopyWatch, CopyWindow};
use crate::java::Kafka;
use crate::kafka::Cluster;
use crate::mirrors::tuned_consumer;
use crate::process::Child;
use crate::procfs;
use crate::workload::Workload;

const DATE_FORMAT: &str = "yyyy-MM-dd HH:mm:ss.SSS";

pub struct ConsumerRun {
    pub fetch: Duration,
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
}

/// Reads `records` records of `topic` with ConsumerPerformance, tuned like the tuned
/// mirrors' consumers. The measured window is the tool's own fetch time (without its
/// group join); the CPU time is the tool's within that window.
#[allow(clippy::too_many_arguments)]
pub fn consume(
    kafka: &Kafka,
    source: &Cluster,
    topic: &str,
    records: u64,
    group: &str,
    log: &Path,
    limit: Duration,
    long_link: bool,
) -> Result<ConsumerRun, String> {
    let mut args = vec![
        "--bootstrap-server".to_string(),
        source.bootstrap.clone(),
        "--topic".to_string(),
        topic.to_string(),
        "--num-records".to_string(),
        records.to_string(),
        "--timeout".to_string(),
        "60000".to_string(),
        "--group".to_string(),
        group.to_string(),
        "--hide-header".to_string(),
        "--date-format".to_string(),
        DATE_FORMAT.to_string(),
    ];
    for (key, value) in tuned_consumer(long_link) {
        args.push("--command-property".to_string());
        args.push(format!("{key}={value}"));
    }
    let child = kafka
        .spawn(
            "ceiling consumer",
            &["-Xmx512M"],
            "org.apache.kafka.tools.ConsumerPerformance",
            &args,
            log,
        )
        .map_err(|e| format!("{e:#}"))?;
    let series = cpu_series_until_exit(&child, limit)?;
    let finished = child.exited().ok_or_else(|| {
        format!(
            "ceiling consumer: lost track of its process (log: {})",
            log.display()
        )
    })?;
    if !finished.succeeded() {
        return Err(format!(
            "ceiling consumer exited with code {}{} (log: {})",
            finished.code,
            child.last_words(),
            log.display()
        ));
    }
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let stats = parse_consumer_stats(&text)
        .map_err(|e| format!("ceiling consumer: {e:#} (log: {})", log.display()))?;
    if stats.records != records {
        return Err(format!(
            "ceiling consumer read {} of {records} records (log: {})",
            stats.records,
            log.display()
        ));
    }
    let window_start = stats.end - stats.fetch;
    Ok(ConsumerRun {
        fetch: stats.fetch,
        cpu_seconds: cpu_at(&series, stats.end) - cpu_at(&series, window_start),
        max_rss_bytes: finished.max_rss_bytes,
    })
}

pub struct ProducerRun {
    pub window: CopyWindow,
    pub cpu_seconds_total: f64,
    pub max_rss_bytes: u64,
}

/// Writes `records` records from the payload file into `topic` on the target with
/// ProducerPerformance's arguments for `records` records of `payload_file` at full speed,
/// batched and compressed as `workload` writes (the fill and the ceiling's producer).
pub fn producer_performance_args(
    bootstrap: &str,
    topic: &str,
    workload: Workload,
    records: u64,
    payload_file: &Path,
) -> Vec<String> {
    let mut args = vec![
        "--bootstrap-server".to_string(),
        bootstrap.to_string(),
        "--topic".to_string(),
        topic.to_string(),
        "--num-records".to_string(),
        records.to_string(),
        "--payload-file".to_string(),
        payload_file.display().to_string(),
        "--throughput".to_string(),
        "-1".to_string(),
        "--command-property".to_string(),
    ];
    args.extend(
        workload
            .producer_settings()
            .into_iter()
            .map(|(key, value)| format!("{key}={value}")),
    );
    args
}

/// ProducerPerformance, batching and compressing as the workload's source was written.
#[allow(clippy::too_many_arguments)]
pub fn produce(
    kafka: &Kafka,
    target: &Cluster,
    topic: &str,
    workload: Workload,
    records: u64,
    payload_file: &Path,
    broker_pid: i32,
    log: &Path,
    limit: Duration,
) -> Result<ProducerRun, String> {
    let args = producer_performance_args(&target.bootstrap, topic, workload, records, payload_file);
    let launched = Instant::now();
    let child = kafka
        .spawn(
            "ceiling producer",
            &["-Xmx512M"],
            "org.apache.kafka.tools.ProducerPerformance",
            &args,
            log,
        )
        .map_err(|e| format!("{e:#}"))?;
    let total = records as i64;
    // The producer spreads records over partitions its own way: only the total counts.
    let mut expected = vec![0; workload.partitions() as usize];
    expected[0] = total;
    let window = CopyWatch {
        target,
        topic,
        expected: &expected,
        per_partition: false,
        writer: &child,
        broker_pid,
        launched,
        limit,
        // The ceiling's producer writes on the target's side: nothing crosses the link.
        link_device: None,
        progress_file: None,
    }
    .run()
    .map_err(|e| format!("{e} (log: {})", log.display()))?;
    let finished = child.wait(Duration::from_secs(60)).ok_or_else(|| {
        format!(
            "ceiling producer did not exit after writing everything (log: {})",
            log.display()
        )
    })?;
    if !finished.succeeded() {
        return Err(format!(
            "ceiling producer exited with code {}{} (log: {})",
            finished.code,
            child.last_words(),
            log.display()
        ));
    }
    Ok(ProducerRun {
        window,
        cpu_seconds_total: finished.cpu_seconds,
        max_rss_bytes: finished.max_rss_bytes,
    })
}

/// CPU seconds of the child sampled every 50 ms until it ends (the last sample is taken
/// from the ended, not yet reaped process, so it is its final CPU time).
fn cpu_series_until_exit(child: &Child, limit: Duration) -> Result<Vec<(SystemTime, f64)>, String> {
    let deadline = Instant::now() + limit;
    let mut series = Vec::new();
    loop {
        let ended = child.has_exited();
        if let Ok(sample) = procfs::cpu(child.pid) {
            series.push((SystemTime::now(), sample.seconds));
        }
        if ended {
            return Ok(series);
        }
        if Instant::now() > deadline {
            child.stop(Duration::from_secs(5));
            return Err(format!(
                "{} did not finish within {} s (log: {})",
                child.name,
                limit.as_secs(),
                child.log.display()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// CPU seconds at `at`, interpolated between the samples around it.
fn cpu_at(series: &[(SystemTime, f64)], at: SystemTime) -> f64 {
    let after = series.partition_point(|(t, _)| *t <= at);
    match (after.checked_sub(1).map(|i| series[i]), series.get(after)) {
        (Some((t0, c0)), Some(&(t1, c1))) => {
            let span = t1.duration_since(t0).unwrap_or_default().as_secs_f64();
            let into = at.duration_since(t0).unwrap_or_default().as_secs_f64();
            if span > 0.0 {
                c0 + (c1 - c0) * into / span
            } else {
                c0
            }
        }
        (Some((_, c)), None) => c,
        (None, Some(&(_, c))) => c,
        (None, None) => 0.0,
    }
}

struct ConsumerStats {
    end: SystemTime,
    fetch: Duration,
    records: u64,
}

/// The result line of ConsumerPerformance with --hide-header: start.time, end.time,
/// data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
/// fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec.
fn parse_consumer_stats(output: &str) -> anyhow::Result<ConsumerStats> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.split(", ").count() == 10 && l.starts_with(|c: char| c.is_ascii_digit()))
        .context("no result line in the output of ConsumerPerformance")?;
    let fields: Vec<&str> = line.split(", ").collect();
    let records: u64 = fields[4].trim().parse().context("data.consumed.in.nMsg")?;
    let fetch_ms: u64 = fields[7].trim().parse().context("fetch.time.ms")?;
    Ok(ConsumerStats {
        end: clock::parse_utc(fields[1].trim())?,
        fetch: Duration::from_millis(fetch_ms),
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn the_result_line_is_found_among_warnings() {
        let output = "[2026-11-22 04:10:35,376] WARN something (x.y)\n\
                      2026-11-22 04:10:30.000, 2026-11-22 04:10:35.500, 1024.0000, 190.1, 1048576, 194000.0, 3000, 2500, 409.6, 419430.4\n";
        let stats = parse_consumer_stats(output).unwrap();
        assert_eq!(stats.records, 1_048_576);
        assert_eq!(stats.fetch, Duration::from_millis(2500));
        assert_eq!(
            stats.end,
            clock::parse_utc("2026-11-22 04:10:35.500").unwrap()
        );
        assert!(parse_consumer_stats("no numbers here\n").is_err());
    }

    #[test]
    fn cpu_is_interpolated_between_samples() {
        let t = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        let series = [(t(0), 1.0), (t(100), 2.0), (t(200), 4.0)];
        assert_eq!(cpu_at(&series, t(50)), 1.5);
        assert_eq!(cpu_at(&series, t(150)), 3.0);
        assert_eq!(cpu_at(&series, t(500)), 4.0);
    }
}

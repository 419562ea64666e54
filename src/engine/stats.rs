//! Counters of a flow and the status line printed every interval. Pure.

use std::time::Duration;

use crate::batch::SlowPathCounts;

#[derive(Debug, Default, Clone)]
pub struct FlowCounters {
    pub records: u64,
    pub bytes: u64,
    pub batches: u64,
    pub dropped_control: u64,
    pub dropped_aborted: u64,
    pub slow_path: SlowPathCounts,
    pub produce_retries: u64,
    /// Produce requests sent: with `batches`, how full the target's requests are.
    pub produce_requests: u64,
    /// Answers to fetches ahead of their partition's position that were used.
    pub read_ahead_answers: u64,
    /// Slow fetches that answers read ahead waited for, sent again on another connection.
    pub fetches_sent_twice: u64,
    /// Fetched bytes the flow already had: overlap between fetches of one partition
    /// read ahead on several connections.
    pub fetched_twice_bytes: u64,
    /// Record bytes that arrived in fetch answers, whether used, fetched twice or cut off
    /// at an answer's end: what crossed the link from the source.
    pub fetched_bytes: u64,
    /// Bytes of the last, incomplete batch that ended answers cut by their size limit.
    pub cut_off_bytes: u64,
    /// Fetches sent for gaps that two fetches read ahead left between them.
    pub gaps_fetched: u64,
}

/// A snapshot taken at each status interval.
#[derive(Debug, Clone)]
pub struct StatusSample {
    pub counters: FlowCounters,
    pub lag_records: Option<i64>,
    pub partitions: usize,
    pub failed_partitions: usize,
}

/// One line per interval, e.g.
/// `A->B: 12345 rec/s 11.8 MB/s, copied 1.2M records 1.1 GiB, lag 0, 8 partitions`.
pub fn status_line(
    flow: &str,
    previous: &FlowCounters,
    now: &StatusSample,
    elapsed: Duration,
) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let records_per_second = (now.counters.records - previous.records) as f64 / seconds;
    let megabytes_per_second = (now.counters.bytes - previous.bytes) as f64 / seconds / 1e6;
    let lag = match now.lag_records {
        Some(lag) => lag.to_string(),
        None => "unknown".to_string(),
    };
    let mut line = format!(
        "{flow}: {records_per_second:.0} rec/s {megabytes_per_second:.1} MB/s, copied {} records {}, lag {lag} records, {}",
        now.counters.records,
        human_bytes(now.counters.bytes),
        count(now.partitions as u64, "partition", "partitions"),
    );
    if now.failed_partitions > 0 {
        line.push_str(&format!(
            ", {} STOPPED (see errors above)",
            now.failed_partitions
        ));
    }
    let slow = now.counters.slow_path.total();
    if slow > 0 {
        line.push_str(&format!(
            ", slow path {slow} batches ({})",
            now.counters.slow_path
        ));
    }
    if now.counters.read_ahead_answers > 0 {
        line.push_str(&format!(
            ", read ahead {} (fetched {} for {} copied: {} twice, {} cut off",
            count(now.counters.read_ahead_answers, "fetch", "fetches"),
            human_bytes(now.counters.fetched_bytes),
            human_bytes(now.counters.bytes),
            human_bytes(now.counters.fetched_twice_bytes),
            human_bytes(now.counters.cut_off_bytes)
        ));
        if now.counters.gaps_fetched > 0 {
            line.push_str(&format!(
                ", {} fetched",
                count(now.counters.gaps_fetched, "gap", "gaps")
            ));
        }
        if now.counters.fetches_sent_twice > 0 {
            line.push_str(&format!(
                ", {} sent again",
                count(
                    now.counters.fetches_sent_twice,
                    "slow fetch",
                    "slow fetches"
                )
            ));
        }
        line.push(')');
    }
    line
}

/// `n` with the noun in its singular or plural form.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_reports_rates_over_the_interval_and_stopped_partitions() {
        let previous = FlowCounters {
            records: 1_000,
            bytes: 1_000_000,
            ..FlowCounters::default()
        };
        let now = StatusSample {
            counters: FlowCounters {
                records: 21_000,
                bytes: 21_000_000,
                ..FlowCounters::default()
            },
            lag_records: Some(42),
            partitions: 8,
            failed_partitions: 1,
        };
        let line = status_line("A->B", &previous, &now, Duration::from_secs(10));
        assert_eq!(
            line,
            "A->B: 2000 rec/s 2.0 MB/s, copied 21000 records 20.0 MiB, lag 42 records, 8 partitions, 1 STOPPED (see errors above)"
        );
    }

    #[test]
    fn status_line_counts_what_was_read_ahead() {
        let now = StatusSample {
            counters: FlowCounters {
                records: 10,
                bytes: 40 * 1024 * 1024,
                read_ahead_answers: 12,
                fetched_twice_bytes: 3 * 1024 * 1024,
                fetched_bytes: 45 * 1024 * 1024,
                cut_off_bytes: 1024 * 1024,
                ..FlowCounters::default()
            },
            lag_records: Some(0),
            partitions: 1,
            failed_partitions: 0,
        };
        let line = status_line("A->B", &now.counters, &now, Duration::from_secs(1));
        assert!(
            line.ends_with(
                ", 1 partition, read ahead 12 fetches (fetched 45.0 MiB for 40.0 MiB copied: 3.0 MiB twice, 1.0 MiB cut off)"
            ),
            "{line}"
        );
        let mut gaps = now.clone();
        gaps.counters.gaps_fetched = 2;
        gaps.counters.fetches_sent_twice = 1;
        let line = status_line("A->B", &gaps.counters, &gaps, Duration::from_secs(1));
        assert!(
            line.ends_with(
                ", read ahead 12 fetches (fetched 45.0 MiB for 40.0 MiB copied: 3.0 MiB twice, 1.0 MiB cut off, 2 gaps fetched, 1 slow fetch sent again)"
            ),
            "{line}"
        );
    }

    #[test]
    fn human_bytes_picks_the_largest_fitting_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}

//! CPU time and peak memory of a running process, from /proc.

use std::time::Instant;

use anyhow::Context;

/// User plus system CPU seconds of `pid`, its reaped children included, and the moment
/// they were read.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    pub at: Instant,
    pub seconds: f64,
}

pub fn cpu(pid: i32) -> anyhow::Result<CpuSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone (reading /proc/{pid}/stat)"))?;
    let at = Instant::now();
    Ok(CpuSample {
        at,
        seconds: parse_cpu_ticks(&stat)? as f64 / ticks_per_second(),
    })
}

/// Fields 14-17 of /proc/<pid>/stat: utime, stime, cutime, cstime. The command name
/// (field 2) may hold spaces, so counting starts after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let after_name = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .context("/proc stat without a command name")?;
    // after_name starts at field 3 (state): fields 14..=17 are indices 11..=14.
    after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|field| field.parse::<u64>().context("a CPU field of /proc stat"))
        .sum()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Peak resident set size (VmHWM) of `pid` in bytes.
pub fn peak_rss(pid: i32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone (reading /proc/{pid}/status)"))?;
    parse_vm_hwm(&status).with_context(|| format!("no VmHWM in /proc/{pid}/status"))
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_after_the_command_name() {
        // A real line of a JVM, with a command name holding a space and a parenthesis.
        let stat = "4242 (java (main)) S 1 4242 4242 0 -1 4194560 120 0 0 0 \
                    1500 250 30 7 20 0 42 0 1000 5000000 20000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 1500 + 250 + 30 + 7);
    }

    #[test]
    fn peak_rss_reads_vm_hwm_in_kib() {
        let status = "Name:\tjava\nVmPeak:\t 9000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(123_456 * 1024));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn reads_a_live_process_and_names_a_gone_one() {
        let pid = std::process::id() as i32;
        assert!(cpu(pid).unwrap().seconds >= 0.0);
        assert!(peak_rss(pid).unwrap() > 0);
        let gone = cpu(i32::MAX).unwrap_err().to_string();
        assert!(gone.contains(&i32::MAX.to_string()), "{gone}");
    }
}

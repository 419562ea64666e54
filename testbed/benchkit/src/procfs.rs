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

/// Bytes that network device `device` of the calling thread's network namespace has
/// received (/proc/thread-self/net/dev follows the thread's namespace).
/// Page cache bytes waiting to be written back or being written (Dirty + Writeback in
/// /proc/meminfo): once they pass vm.dirty_ratio, the kernel makes writers wait.
pub fn dirty_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_dirty_bytes(&text)
}

fn parse_dirty_bytes(meminfo: &str) -> Option<u64> {
    let kilobytes = |name: &str| -> Option<u64> {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
    };
    Some((kilobytes("Dirty")? + kilobytes("Writeback")?) * 1024)
}

pub fn received_bytes(device: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/dev").ok()?;
    parse_received_bytes(&text, device)
}

/// The first column after `<device>:` in /proc/net/dev: bytes received.
fn parse_received_bytes(net_dev: &str, device: &str) -> Option<u64> {
    net_dev.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        (name.trim() == device).then(|| counters.split_whitespace().next()?.parse().ok())?
    })
}

/// Busy and total CPU time of the whole machine so far, in ticks (/proc/stat).
#[derive(Clone, Copy, Debug)]
pub struct MachineCpu {
    pub busy: u64,
    pub total: u64,
    /// Time the hypervisor gave this machine's CPUs to others (inside `busy`).
    pub steal: u64,
}

impl MachineCpu {
    /// The share of the machine's CPU time that was busy since `earlier`, in percent.
    pub fn busy_percent_since(&self, earlier: &MachineCpu) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        (total > 0).then(|| 100.0 * busy as f64 / total as f64)
    }

    /// The share of the machine's CPU time the hypervisor took since `earlier`, in percent:
    /// on a shared host, a run with much of it measured the neighbours.
    pub fn steal_percent_since(&self, earlier: &MachineCpu) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let steal = self.steal.checked_sub(earlier.steal)?;
        (total > 0).then(|| 100.0 * steal as f64 / total as f64)
    }
}

pub fn machine_cpu() -> Option<MachineCpu> {
    parse_machine_cpu(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The `cpu` line: user nice system idle iowait irq softirq steal ...; idle and iowait
/// are the idle time, guest time is already inside user.
fn parse_machine_cpu(stat: &str) -> Option<MachineCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some(MachineCpu {
        busy: total - idle,
        total,
        steal: *fields.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_bytes_add_what_waits_and_what_is_being_written() {
        let meminfo = "MemTotal:       24000000 kB\nDirty:              3616 kB\nWriteback:           384 kB\nWritebackTmp:          0 kB\n";
        assert_eq!(parse_dirty_bytes(meminfo), Some(4000 * 1024));
        assert_eq!(parse_dirty_bytes("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn received_bytes_of_one_device() {
        let net_dev = "Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets
    lo:    1200      10    0    0    0     0          0         0     1200      10
  wan0: 2950123456  166566    0    0    0     0          0         0 12600000  150415
";
        assert_eq!(parse_received_bytes(net_dev, "wan0"), Some(2_950_123_456));
        assert_eq!(parse_received_bytes(net_dev, "lo"), Some(1200));
        assert_eq!(parse_received_bytes(net_dev, "eth0"), None);
    }

    #[test]
    fn machine_cpu_counts_idle_and_iowait_as_idle() {
        let stat = "cpu  100 5 50 800 20 3 7 4 0 0\ncpu0 50 2 25 400 10 1 3 2 0 0\n";
        let cpu = parse_machine_cpu(stat).unwrap();
        assert_eq!(cpu.total, 989);
        assert_eq!(cpu.busy, 169);
        assert_eq!(cpu.steal, 4);
        let later = MachineCpu {
            busy: 169 + 90,
            total: 989 + 100,
            steal: 4 + 12,
        };
        assert_eq!(later.busy_percent_since(&cpu), Some(90.0));
        assert_eq!(later.steal_percent_since(&cpu), Some(12.0));
        assert_eq!(cpu.busy_percent_since(&later), None);
    }

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

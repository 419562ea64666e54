//! Command-line options, and the shaping options a running delay line re-reads from its
//! control file on SIGHUP (same syntax: `--rtt 300ms --loss 0.1%`).

use std::path::PathBuf;
use std::time::Duration;

use crate::units::{parse_duration, parse_loss, parse_rate, Cidr};

pub const USAGE: &str = "\
usage: delayline --ns-a NAME --ns-b NAME [options]

Joins network namespaces A and B (they must exist: ip netns add NAME) through a tun
device in each, and forwards packets between them after a one-way delay, at a limited
rate, with random loss.

setup (fixed for the life of the process):
  --ns-a NAME, --ns-b NAME   the two namespaces
  --addr-a CIDR              address of A's device (default 10.77.1.1/24)
  --addr-b CIDR              address of B's device (default 10.77.2.1/24)
  --device NAME              device name inside both namespaces (default wan0)
  --mtu BYTES                MTU of both devices (default 9000)
  --offload on|off           segmentation offload (default on): while the link loses
                             nothing, TCP hands over up to 64 KiB at once, as to a NIC
                             with TSO, and this process moves it as one packet, at a
                             seventh of the CPU; the rate still counts every segment's
                             headers. With random loss, packets are single segments so
                             that loss hits one segment, as on a real link.
  --control FILE             shaping options to re-read on SIGHUP
  --stats INTERVAL           print counters this often when they change (default 10s, 0: never)

shaping (also in the control file):
  --delay D | --rtt R        one-way delay D, or R/2 each way (default 0)
  --rate R                   link rate in each direction, e.g. 1gbit (default unlimited)
  --loss P                   random loss in each direction, e.g. 0.1% (default 0)
  --queue D                  bottleneck buffer, as time at the link rate (default 100ms):
                             packets that would wait longer are dropped; without
                             --rate, so are packets the forwarder falls that far behind
                             with (with it they are delivered late)

signals: SIGTERM/SIGINT stop; SIGHUP re-reads --control; SIGUSR1 cuts the link (every
packet dropped, those in flight too), SIGUSR2 restores it.
";

/// How the link treats packets; the same in both directions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shaping {
    pub delay: Duration,
    /// Bits per second; `None`: as fast as the forwarder goes.
    pub rate_bits: Option<u64>,
    /// Probability that a packet is dropped.
    pub loss: f64,
    /// The longest a packet may wait for the rate limit before it is dropped.
    pub queue: Duration,
}

impl Default for Shaping {
    fn default() -> Self {
        Shaping {
            delay: Duration::ZERO,
            rate_bits: None,
            loss: 0.0,
            queue: Duration::from_millis(100),
        }
    }
}

impl Shaping {
    /// Applies the shaping options among `words` to `self`; other options are errors.
    pub fn apply_words(&mut self, words: &[String]) -> Result<(), String> {
        let mut rest = OptionPairs::new(words);
        while let Some((name, value)) = rest.next_pair()? {
            if !self.apply(name, value)? {
                return Err(format!(
                    "{name} is not a shaping option — the control file takes --delay, --rtt, --rate, --loss, --queue"
                ));
            }
        }
        Ok(())
    }

    /// Returns false when `name` is not a shaping option.
    fn apply(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let with_name = |reason: String| format!("{name}: {reason}");
        match name {
            "--delay" => self.delay = parse_duration(value).map_err(with_name)?,
            "--rtt" => self.delay = parse_duration(value).map_err(with_name)? / 2,
            "--rate" => self.rate_bits = parse_rate(value).map_err(with_name)?,
            "--loss" => self.loss = parse_loss(value).map_err(with_name)?,
            "--queue" => self.queue = parse_duration(value).map_err(with_name)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl std::fmt::Display for Shaping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "delay {:?} each way", self.delay)?;
        match self.rate_bits {
            Some(bits) => write!(f, ", rate {} Mbit/s", bits as f64 / 1e6)?,
            None => write!(f, ", rate unlimited")?,
        }
        write!(f, ", loss {}%, queue {:?}", self.loss * 100.0, self.queue)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub ns_a: String,
    pub ns_b: String,
    pub addr_a: Cidr,
    pub addr_b: Cidr,
    pub device: String,
    pub mtu: u16,
    pub offload: bool,
    pub control: Option<PathBuf>,
    pub stats_interval: Option<Duration>,
    pub shaping: Shaping,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut ns_a = None;
        let mut ns_b = None;
        let mut addr_a = Cidr::parse("10.77.1.1/24")?;
        let mut addr_b = Cidr::parse("10.77.2.1/24")?;
        let mut device = "wan0".to_string();
        let mut mtu = 9000;
        let mut offload = true;
        let mut control = None;
        let mut stats_interval = Some(Duration::from_secs(10));
        let mut shaping = Shaping::default();
        let mut rest = OptionPairs::new(args);
        while let Some((name, value)) = rest.next_pair()? {
            let with_name = |reason: String| format!("{name}: {reason}");
            match name {
                "--ns-a" => ns_a = Some(namespace_name(value)?),
                "--ns-b" => ns_b = Some(namespace_name(value)?),
                "--addr-a" => addr_a = Cidr::parse(value).map_err(with_name)?,
                "--addr-b" => addr_b = Cidr::parse(value).map_err(with_name)?,
                "--device" => device = device_name(value)?,
                "--mtu" => {
                    mtu = value
                        .parse()
                        .ok()
                        .filter(|m| (576..=65535).contains(m))
                        .ok_or_else(|| format!("--mtu {value:?}: write 576 to 65535"))?
                }
                "--offload" => {
                    offload = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("--offload {value:?}: write on or off")),
                    }
                }
                "--control" => control = Some(PathBuf::from(value)),
                "--stats" => {
                    let interval = parse_duration(value).map_err(with_name)?;
                    stats_interval = (!interval.is_zero()).then_some(interval);
                }
                _ => {
                    if !shaping.apply(name, value)? {
                        return Err(format!("unknown option {name}\n\n{USAGE}"));
                    }
                }
            }
        }
        let ns_a = ns_a.ok_or_else(|| format!("--ns-a is missing\n\n{USAGE}"))?;
        let ns_b = ns_b.ok_or_else(|| format!("--ns-b is missing\n\n{USAGE}"))?;
        if ns_a == ns_b {
            return Err(format!(
                "--ns-a and --ns-b are both {ns_a:?} — name two namespaces"
            ));
        }
        if addr_a.overlaps(&addr_b) {
            return Err(format!(
                "--addr-a {addr_a} and --addr-b {addr_b} share a network — give each side its own, e.g. 10.77.1.1/24 and 10.77.2.1/24"
            ));
        }
        Ok(Options {
            ns_a,
            ns_b,
            addr_a,
            addr_b,
            device,
            mtu,
            offload,
            control,
            stats_interval,
            shaping,
        })
    }
}

fn namespace_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !value.starts_with('.');
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{value:?} is not a namespace name — use letters, digits, '-', '_' and '.'"
        ))
    }
}

fn device_name(value: &str) -> Result<String, String> {
    // IFNAMSIZ is 16 with the terminating zero.
    let valid = !value.is_empty()
        && value.len() < 16
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{value:?} is not a device name — use up to 15 letters, digits, '-' and '_'"
        ))
    }
}

/// `--name value` pairs in order.
struct OptionPairs<'a> {
    words: std::slice::Iter<'a, String>,
}

impl<'a> OptionPairs<'a> {
    fn new(words: &'a [String]) -> Self {
        OptionPairs {
            words: words.iter(),
        }
    }

    fn next_pair(&mut self) -> Result<Option<(&'a str, &'a str)>, String> {
        let Some(name) = self.words.next() else {
            return Ok(None);
        };
        if !name.starts_with("--") {
            return Err(format!(
                "{name:?} is not an option — options look like --rtt 100ms"
            ));
        }
        let value = self
            .words
            .next()
            .ok_or_else(|| format!("{name} needs a value"))?;
        Ok(Some((name.as_str(), value.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn full_command_line() {
        let options = Options::parse(&words(
            "--ns-a wan-a --ns-b wan-b --rtt 100ms --rate 1gbit --loss 0.1% --mtu 1500 --stats 0",
        ))
        .unwrap();
        assert_eq!(options.ns_a, "wan-a");
        assert_eq!(options.ns_b, "wan-b");
        assert_eq!(options.addr_a.to_string(), "10.77.1.1/24");
        assert_eq!(options.mtu, 1500);
        assert!(options.offload, "offload is on unless turned off");
        assert_eq!(options.stats_interval, None);
        assert_eq!(options.shaping.delay, Duration::from_millis(50));
        assert_eq!(options.shaping.rate_bits, Some(1_000_000_000));
        assert_eq!(options.shaping.loss, 0.001);
        assert_eq!(options.shaping.queue, Duration::from_millis(100));
    }

    #[test]
    fn command_line_mistakes_are_named() {
        let error = Options::parse(&words("--ns-a a")).unwrap_err();
        assert!(error.starts_with("--ns-b is missing"), "{error}");
        let error = Options::parse(&words("--ns-a a --ns-b a")).unwrap_err();
        assert!(error.contains("name two namespaces"), "{error}");
        let error = Options::parse(&words("--ns-a a --ns-b b --addr-b 10.77.1.2/24")).unwrap_err();
        assert!(error.contains("share a network"), "{error}");
        let error = Options::parse(&words("--ns-a a --ns-b b --jitter 1ms")).unwrap_err();
        assert!(error.starts_with("unknown option --jitter"), "{error}");
        let error = Options::parse(&words("--ns-a a --ns-b b --rate")).unwrap_err();
        assert_eq!(error, "--rate needs a value");
        let error = Options::parse(&words("--ns-a a --ns-b b --offload yes")).unwrap_err();
        assert_eq!(error, "--offload \"yes\": write on or off");
        assert!(
            !Options::parse(&words("--ns-a a --ns-b b --offload off"))
                .unwrap()
                .offload
        );
        let error = Options::parse(&words("--ns-a ../x --ns-b b")).unwrap_err();
        assert!(error.contains("not a namespace name"), "{error}");
    }

    #[test]
    fn control_file_changes_only_what_it_names() {
        let mut shaping = Shaping {
            rate_bits: Some(1_000_000_000),
            ..Shaping::default()
        };
        shaping.apply_words(&words("--rtt 300ms --loss 0")).unwrap();
        assert_eq!(shaping.delay, Duration::from_millis(150));
        assert_eq!(shaping.rate_bits, Some(1_000_000_000));
        let error = shaping.apply_words(&words("--mtu 1500")).unwrap_err();
        assert!(error.contains("not a shaping option"), "{error}");
    }
}

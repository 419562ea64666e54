//! `strait tune`'s answer as the operator reads it.

use std::fmt::{self, Display, Formatter};

use crate::config::{DEFAULT_MEMORY_BUDGET_BYTES, LONG_LINK_MEMORY_BUDGET_BYTES};

use super::advice::{Advice, Check, Verdict, BUFFER_FACTOR};
use super::format::{binary, decimal, link_rate, percent_of_link, rate};

/// Kafka brokers' default `socket.send.buffer.bytes` and `socket.receive.buffer.bytes`.
const KAFKA_BROKER_SOCKET_BUFFER: u64 = 102_400;

impl Display for Advice {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let bdp = self.bandwidth_delay_product;
        writeln!(
            f,
            "Link: {} with {} ms round trips. Bandwidth-delay product (BDP): {}.",
            link_rate(self.link.bits_per_second),
            self.link.rtt.as_secs_f64() * 1000.0,
            decimal(bdp)
        )?;
        writeln!(
            f,
            "One TCP connection fills the link only with a BDP in flight: the sender's send buffer and the\n\
             receiver's window must hold it, and Linux needs room beyond it, so the buffer ceilings to aim for\n\
             are {BUFFER_FACTOR} × BDP = {}.",
            binary(self.buffer_goal)
        )?;

        writeln!(
            f,
            "\nThis machine's kernel (/proc/sys of this network namespace):"
        )?;
        write_checks(f, &self.kernel)?;
        for (setting, reason) in &self.unreadable {
            writeln!(f, "  ?      {setting}: cannot read it ({reason})")?;
        }

        writeln!(f)?;
        match &self.connection_cap {
            Some(cap) => {
                let bytes_per_second = self.link.rate_with_window(cap.bytes_per_round_trip);
                writeln!(
                    f,
                    "One connection tops out at ≈ {}, {}, held back by {}.\n\
                     Filling the link takes {} connections in parallel, or these settings:",
                    rate(bytes_per_second),
                    percent_of_link(bytes_per_second, &self.link),
                    cap.cause,
                    cap.connections_to_fill
                )?;
            }
            None if self.sysctl_changes.is_empty() => {
                writeln!(
                    f,
                    "Nothing in this kernel keeps one connection below the link rate."
                )?;
            }
            None => writeln!(
                f,
                "No ceiling is below the BDP, but these settings leave the room a full link needs:"
            )?,
        }
        if !self.sysctl_changes.is_empty() {
            writeln!(f)?;
            for change in &self.sysctl_changes {
                writeln!(f, "  sysctl -w {}=\"{}\"", change.key, change.value)?;
            }
            writeln!(
                f,
                "\nRun them as root; they last until reboot. To keep them, write them as `key = value` lines\n\
                 to /etc/sysctl.d/90-strait.conf and run `sysctl --system`, or start from the profiles in\n\
                 tuning/ (lan.conf, wan-100ms.conf, wan-300ms.conf). Both ends of the link need them: the\n\
                 sending host's tcp_wmem and the receiving host's tcp_rmem count."
            )?;
        }

        writeln!(f, "\nstrait:")?;
        match &self.strait {
            Some(checks) => write_checks(f, checks)?,
            None => writeln!(
                f,
                "  Leave <alias>.receive.buffer.bytes and <alias>.send.buffer.bytes unset (strait's default):\n\
                 \x20 the kernel then autotunes each socket up to the ceilings above. A fixed size turns\n\
                 \x20 autotuning off and is cut to net.core.rmem_max / wmem_max; if you set one, use {} or more.\n\
                 \x20 strait.memory.budget.bytes (default {}, {} once the source is 5 ms or more away)\n\
                 \x20 should be at least 2 × BDP = {}.\n\
                 \x20 Check a properties file with: strait tune --rtt ... --bandwidth ... --config FILE",
                self.buffer_goal,
                binary(DEFAULT_MEMORY_BUDGET_BYTES),
                binary(LONG_LINK_MEMORY_BUDGET_BYTES),
                decimal(2 * bdp)
            )?,
        }

        // The kernel doubles a requested size to cover its bookkeeping.
        let broker_buffer = 2 * KAFKA_BROKER_SOCKET_BUFFER;
        let broker_cap = self.link.rate_with_window(broker_buffer);
        writeln!(
            f,
            "\nKafka brokers at the far end of the link (their own settings, not strait's):\n\
             \x20 Brokers set socket.send.buffer.bytes and socket.receive.buffer.bytes to {} by default,\n\
             \x20 which turns autotuning off: each connection then moves at most {} per round trip\n\
             \x20 (the kernel doubles the request) ≈ {}.\n\
             \x20 On the source brokers set socket.send.buffer.bytes=-1 (fetch responses cross the link);\n\
             \x20 on target brokers that strait reaches across the link, socket.receive.buffer.bytes=-1;\n\
             \x20 and give their hosts the tcp_wmem / tcp_rmem ceilings above.",
            KAFKA_BROKER_SOCKET_BUFFER,
            binary(broker_buffer),
            rate(broker_cap)
        )
    }
}

fn write_checks(f: &mut Formatter<'_>, checks: &[Check]) -> fmt::Result {
    for check in checks {
        let label = match check.verdict {
            Verdict::Ok => "ok    ",
            Verdict::Tight => "TIGHT ",
            Verdict::Limit => "LIMIT ",
        };
        writeln!(f, "  {label} {}: {}", check.subject, check.finding)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::tune::advice::advise;
    use crate::tune::kernel::fixtures::this_machine;
    use crate::tune::kernel::KernelLimits;
    use crate::tune::link::LinkSpec;
    use std::time::Duration;

    #[test]
    fn report_names_the_cap_the_fix_and_the_brokers() {
        let link = LinkSpec {
            rtt: Duration::from_millis(100),
            bits_per_second: 1_000_000_000,
        };
        let report = advise(&link, &KernelLimits::read(&this_machine()), None).to_string();
        let expected_lines = [
            "Link: 1 Gbit/s with 100 ms round trips. Bandwidth-delay product (BDP): 12.5 MB.",
            "  LIMIT  net.ipv4.tcp_wmem max 4 MiB: below the BDP: a connection sends at most 4 MiB per round trip ≈ 41.9 MB/s (336 Mbit/s), 34% of the link",
            "One connection tops out at ≈ 41.9 MB/s (336 Mbit/s), 34% of the link, held back by the send buffer ceiling (net.ipv4.tcp_wmem).",
            "Filling the link takes 3 connections in parallel, or these settings:",
            "  sysctl -w net.ipv4.tcp_wmem=\"4096 16384 67108864\"",
            "  sysctl -w net.ipv4.tcp_slow_start_after_idle=\"0\"",
            "  (the kernel doubles the request) ≈ 2.05 MB/s (16.4 Mbit/s).",
        ];
        for line in expected_lines {
            assert!(
                report.lines().any(|l| l == line),
                "missing line {line:?} in:\n{report}"
            );
        }
    }
}

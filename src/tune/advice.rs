//! What keeps one TCP connection from filling the link, and what to change: pure
//! arithmetic over the link, the kernel's limits and the mirror's settings.

use crate::config::MirrorConfig;

use super::format::{binary, percent_of_link, rate};
use super::kernel::{
    KernelLimits, RMEM_MAX, TCP_CONGESTION_CONTROL, TCP_RMEM, TCP_SLOW_START_AFTER_IDLE,
    TCP_WINDOW_SCALING, TCP_WMEM, WMEM_MAX,
};
use super::link::LinkSpec;

/// Buffers this many times the bandwidth-delay product: Linux advertises only part of
/// a receive buffer as window (about half with large packets) and counts bookkeeping
/// against send buffers, and bbr keeps up to twice the BDP in flight.
pub const BUFFER_FACTOR: u64 = 4;
/// The largest window without window scaling.
const UNSCALED_WINDOW: u64 = 65_535;
/// Linux's initial congestion window, in segments, and a 1500-byte MTU's segment.
const INITIAL_WINDOW_SEGMENTS: u64 = 10;
const ETHERNET_MSS: u64 = 1448;
/// The random loss rate the congestion-control advice is worked out for.
const REFERENCE_LOSS: f64 = 0.001;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    /// Holds the BDP, but with too little room to fill the link reliably.
    Tight,
    /// Caps a connection below the link rate.
    Limit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub verdict: Verdict,
    /// The setting and its current value, e.g. `net.ipv4.tcp_wmem max 4 MiB`.
    pub subject: String,
    pub finding: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlChange {
    pub key: &'static str,
    pub value: String,
}

/// The lowest ceiling of a single connection, when it is below the BDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionCap {
    pub bytes_per_round_trip: u64,
    pub cause: &'static str,
    /// Connections in parallel that would fill the link under this ceiling.
    pub connections_to_fill: u64,
}

/// The mirror's settings that bear on throughput over the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StraitSettings {
    pub flows: Vec<FlowSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSettings {
    /// `source->target`.
    pub name: String,
    pub source: String,
    pub target: String,
    /// `<source>.receive.buffer.bytes`: fetch responses come in on these sockets.
    pub source_receive_buffer: Option<u32>,
    /// `<target>.send.buffer.bytes`: produce requests go out on these sockets.
    pub target_send_buffer: Option<u32>,
    /// `strait.memory.budget.bytes`, None when unset.
    pub memory_budget: Option<u64>,
}

impl StraitSettings {
    pub fn from_config(config: &MirrorConfig) -> StraitSettings {
        let flows = config
            .flows
            .iter()
            .map(|flow| FlowSettings {
                name: flow.name(),
                source: flow.source.clone(),
                target: flow.target.clone(),
                source_receive_buffer: config
                    .cluster(&flow.source)
                    .and_then(|c| c.receive_buffer_bytes),
                target_send_buffer: config
                    .cluster(&flow.target)
                    .and_then(|c| c.send_buffer_bytes),
                memory_budget: flow.memory_budget_bytes,
            })
            .collect();
        StraitSettings { flows }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub link: LinkSpec,
    pub bandwidth_delay_product: u64,
    /// The buffer ceiling to aim for: `BUFFER_FACTOR` × BDP, rounded up to a power of two.
    pub buffer_goal: u64,
    pub kernel: Vec<Check>,
    pub connection_cap: Option<ConnectionCap>,
    pub sysctl_changes: Vec<SysctlChange>,
    /// `None` when no properties file was given.
    pub strait: Option<Vec<Check>>,
    /// (setting, reason) of kernel settings that could not be read.
    pub unreadable: Vec<(String, String)>,
}

pub fn advise(link: &LinkSpec, kernel: &KernelLimits, strait: Option<&StraitSettings>) -> Advice {
    let bdp = link.bandwidth_delay_product();
    let goal = (bdp * BUFFER_FACTOR).next_power_of_two();
    let mut analysis = Analysis {
        link,
        bdp,
        goal,
        checks: Vec::new(),
        changes: Vec::new(),
    };
    analysis.window_scaling(kernel.window_scaling);
    analysis.autotuning_ceiling(TCP_RMEM, kernel.tcp_rmem, "receives");
    analysis.autotuning_ceiling(TCP_WMEM, kernel.tcp_wmem, "sends");
    analysis.explicit_ceiling(RMEM_MAX, kernel.rmem_max, "SO_RCVBUF", "receive");
    analysis.explicit_ceiling(WMEM_MAX, kernel.wmem_max, "SO_SNDBUF", "send");
    analysis.slow_start_after_idle(kernel.slow_start_after_idle);
    analysis.congestion_control(
        kernel.congestion_control.as_deref(),
        kernel.available_congestion_control.as_deref(),
    );

    let ceilings = [
        (kernel.window_scaling == Some(false))
            .then_some((UNSCALED_WINDOW, "the 64 KiB window without window scaling")),
        kernel
            .tcp_rmem
            .map(|[_, _, max]| (max, "the receive buffer ceiling (net.ipv4.tcp_rmem)")),
        kernel
            .tcp_wmem
            .map(|[_, _, max]| (max, "the send buffer ceiling (net.ipv4.tcp_wmem)")),
    ];
    let connection_cap = ceilings
        .into_iter()
        .flatten()
        .min_by_key(|(bytes, _)| *bytes)
        .filter(|(bytes, _)| *bytes < bdp)
        .map(|(bytes, cause)| ConnectionCap {
            bytes_per_round_trip: bytes,
            cause,
            connections_to_fill: bdp.div_ceil(bytes.max(1)),
        });

    let strait = strait.map(|settings| {
        settings
            .flows
            .iter()
            .flat_map(|flow| flow_checks(link, kernel, bdp, goal, flow))
            .collect()
    });

    Advice {
        link: *link,
        bandwidth_delay_product: bdp,
        buffer_goal: goal,
        kernel: analysis.checks,
        connection_cap,
        sysctl_changes: analysis.changes,
        strait,
        unreadable: kernel.unreadable.clone(),
    }
}

struct Analysis<'a> {
    link: &'a LinkSpec,
    bdp: u64,
    goal: u64,
    checks: Vec<Check>,
    changes: Vec<SysctlChange>,
}

impl Analysis<'_> {
    fn check(&mut self, verdict: Verdict, subject: String, finding: String) {
        self.checks.push(Check {
            verdict,
            subject,
            finding,
        });
    }

    fn change(&mut self, key: &'static str, value: String) {
        self.changes.push(SysctlChange { key, value });
    }

    fn window_scaling(&mut self, enabled: Option<bool>) {
        let subject = format!("{TCP_WINDOW_SCALING} =");
        match enabled {
            Some(true) => self.check(
                Verdict::Ok,
                format!("{subject} 1"),
                "windows may grow past 64 KiB".into(),
            ),
            Some(false) => {
                self.check(
                    Verdict::Limit,
                    format!("{subject} 0"),
                    format!(
                        "windows stop at 64 KiB: a connection moves at most 64 KiB per round trip ≈ {}",
                        self.capped_rate(UNSCALED_WINDOW)
                    ),
                );
                self.change(TCP_WINDOW_SCALING, "1".into());
            }
            None => {}
        }
    }

    /// tcp_rmem / tcp_wmem: what autotuned sockets may grow to.
    fn autotuning_ceiling(&mut self, key: &'static str, triple: Option<[u64; 3]>, moves: &str) {
        let Some([min, default, max]) = triple else {
            return;
        };
        let subject = format!("{key} max {}", binary(max));
        if max >= self.goal {
            self.check(
                Verdict::Ok,
                subject,
                format!("at least {BUFFER_FACTOR} × BDP"),
            );
            return;
        }
        let finding = if max < self.bdp {
            format!(
                "below the BDP: a connection {moves} at most {} per round trip ≈ {}",
                binary(max),
                self.capped_rate(max)
            )
        } else {
            format!(
                "holds the BDP, but not the {BUFFER_FACTOR} × BDP = {} that leaves room for the kernel's bookkeeping and bbr's probing: expect less than the link rate, and much less with packet loss",
                binary(self.goal)
            )
        };
        let verdict = if max < self.bdp {
            Verdict::Limit
        } else {
            Verdict::Tight
        };
        self.check(verdict, subject, finding);
        self.change(key, format!("{min} {default} {}", self.goal));
    }

    /// net.core.rmem_max / wmem_max: the most an explicit buffer size gets.
    fn explicit_ceiling(&mut self, key: &'static str, max: Option<u64>, option: &str, side: &str) {
        let Some(max) = max else {
            return;
        };
        let subject = format!("{key} {}", binary(max));
        if max >= self.goal {
            self.check(
                Verdict::Ok,
                subject,
                format!("explicit {side} buffers ({option}) may reach {BUFFER_FACTOR} × BDP"),
            );
            return;
        }
        self.check(
            Verdict::Tight,
            subject,
            format!(
                "programs that set their {side} buffer ({option}: Kafka clients and brokers with *.buffer.bytes other than -1, strait with {side}.buffer.bytes) get at most this, and lose autotuning; strait's default leaves the buffer to autotuning and is not affected"
            ),
        );
        self.change(key, self.goal.to_string());
    }

    fn slow_start_after_idle(&mut self, enabled: Option<bool>) {
        let subject = format!("{TCP_SLOW_START_AFTER_IDLE} =");
        match enabled {
            Some(false) => self.check(
                Verdict::Ok,
                format!("{subject} 0"),
                "a connection keeps its window across pauses".into(),
            ),
            Some(true) => {
                let initial = INITIAL_WINDOW_SEGMENTS * ETHERNET_MSS;
                let round_trips = (self.bdp as f64 / initial as f64).log2().ceil().max(1.0);
                self.check(
                    Verdict::Tight,
                    format!("{subject} 1"),
                    format!(
                        "after a pause of one retransmission timeout (200 ms or more) a connection starts again from 10 packets and needs about {round_trips} round trips ≈ {:.1} s to regrow a BDP-sized window",
                        round_trips * self.link.rtt.as_secs_f64()
                    ),
                );
                self.change(TCP_SLOW_START_AFTER_IDLE, "0".into());
            }
            None => {}
        }
    }

    fn congestion_control(&mut self, current: Option<&str>, available: Option<&[String]>) {
        let Some(current) = current else {
            return;
        };
        let subject = format!("{TCP_CONGESTION_CONTROL} = {current}");
        if current == "bbr" {
            self.check(
                Verdict::Ok,
                subject,
                "does not read random loss as congestion".into(),
            );
            return;
        }
        // Mathis et al.: a loss-based window averages MSS/RTT × 1.22/√p.
        let loss_bound =
            ETHERNET_MSS as f64 / self.link.rtt.as_secs_f64() * 1.22 / REFERENCE_LOSS.sqrt();
        let has_bbr = available.is_some_and(|names| names.iter().any(|n| n == "bbr"));
        let how = if has_bbr {
            "bbr is available"
        } else {
            "bbr is not loaded; setting it loads the tcp_bbr module"
        };
        self.check(
            Verdict::Tight,
            subject,
            format!(
                "shrinks its window on every lost packet: with 0.1% random loss a connection over this link averages about {} (1500-byte packets), whatever the buffers; {how}",
                rate(loss_bound)
            ),
        );
        self.change(TCP_CONGESTION_CONTROL, "bbr".into());
    }

    fn capped_rate(&self, bytes_per_round_trip: u64) -> String {
        let bytes_per_second = self.link.rate_with_window(bytes_per_round_trip);
        format!(
            "{}, {}",
            rate(bytes_per_second),
            percent_of_link(bytes_per_second, self.link)
        )
    }
}

fn flow_checks(
    link: &LinkSpec,
    kernel: &KernelLimits,
    bdp: u64,
    goal: u64,
    flow: &FlowSettings,
) -> Vec<Check> {
    let mut checks = vec![
        buffer_check(
            link,
            bdp,
            goal,
            &format!("{}.receive.buffer.bytes", flow.source),
            flow.source_receive_buffer,
            kernel.rmem_max,
            RMEM_MAX,
            "fetch responses from the source",
        ),
        buffer_check(
            link,
            bdp,
            goal,
            &format!("{}.send.buffer.bytes", flow.target),
            flow.target_send_buffer,
            kernel.wmem_max,
            WMEM_MAX,
            "produce requests to the target",
        ),
    ];
    let budget_bytes =
        crate::engine::memory_budget(flow.memory_budget.map(|b| b as usize), Some(link.rtt)) as u64;
    let subject = match flow.memory_budget {
        Some(bytes) => format!(
            "{} strait.memory.budget.bytes = {}",
            flow.name,
            binary(bytes)
        ),
        None => format!(
            "{} strait.memory.budget.bytes unset: {} on this link",
            flow.name,
            binary(budget_bytes)
        ),
    };
    let wanted = (2 * bdp).next_power_of_two();
    let budget = if budget_bytes >= 2 * bdp {
        Check {
            verdict: Verdict::Ok,
            subject,
            finding: "room for a BDP of fetches in flight and as much on its way to the target"
                .into(),
        }
    } else {
        Check {
            verdict: if budget_bytes < bdp {
                Verdict::Limit
            } else {
                Verdict::Tight
            },
            subject,
            finding: format!(
                "strait holds at most this much fetched data that the target has not acknowledged, and a link this long needs about a BDP on each side: set {}.strait.memory.budget.bytes = {wanted}",
                flow.name
            ),
        }
    };
    checks.push(budget);
    checks
}

#[allow(clippy::too_many_arguments)]
fn buffer_check(
    link: &LinkSpec,
    bdp: u64,
    goal: u64,
    key: &str,
    requested: Option<u32>,
    ceiling: Option<u64>,
    ceiling_key: &str,
    carries: &str,
) -> Check {
    let Some(requested) = requested else {
        return Check {
            verdict: Verdict::Ok,
            subject: format!("{key} unset"),
            finding: format!("the kernel autotunes the sockets that carry {carries}"),
        };
    };
    let requested = u64::from(requested);
    let granted = ceiling.map_or(requested, |max| requested.min(max));
    let subject = format!("{key} = {requested}");
    let cut = if granted < requested {
        format!(", which {ceiling_key} cuts to {}", binary(granted))
    } else {
        String::new()
    };
    let fix = format!(
        "remove the line to let the kernel autotune, or set {goal} (and {ceiling_key} at least as high)"
    );
    if granted >= goal {
        Check {
            verdict: Verdict::Ok,
            subject,
            finding: format!("a fixed buffer of at least {BUFFER_FACTOR} × BDP for {carries}"),
        }
    } else if granted < bdp {
        let bytes_per_second = link.rate_with_window(granted);
        Check {
            verdict: Verdict::Limit,
            subject,
            finding: format!(
                "a fixed buffer for {carries}{cut}: at most ≈ {}, {}, per connection; {fix}",
                rate(bytes_per_second),
                percent_of_link(bytes_per_second, link)
            ),
        }
    } else {
        Check {
            verdict: Verdict::Tight,
            subject,
            finding: format!(
                "a fixed buffer for {carries}{cut} with little room above the BDP; {fix}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::kernel::fixtures::{this_machine, FixedSysctls};
    use crate::tune::kernel::TCP_AVAILABLE_CONGESTION_CONTROL;
    use std::time::Duration;

    fn link(rtt_ms: u64, bits_per_second: u64) -> LinkSpec {
        LinkSpec {
            rtt: Duration::from_millis(rtt_ms),
            bits_per_second,
        }
    }

    fn verdict_of(advice: &Advice, subject_start: &str) -> Verdict {
        advice
            .kernel
            .iter()
            .find(|c| c.subject.starts_with(subject_start))
            .unwrap_or_else(|| panic!("no check of {subject_start}: {:#?}", advice.kernel))
            .verdict
    }

    #[test]
    fn send_buffer_ceiling_caps_one_connection_at_100ms() {
        let kernel = KernelLimits::read(&this_machine());
        let advice = advise(&link(100, 1_000_000_000), &kernel, None);
        assert_eq!(advice.bandwidth_delay_product, 12_500_000);
        assert_eq!(advice.buffer_goal, 64 << 20);
        assert_eq!(verdict_of(&advice, TCP_WMEM), Verdict::Limit);
        assert_eq!(verdict_of(&advice, TCP_RMEM), Verdict::Tight);
        assert_eq!(verdict_of(&advice, TCP_WINDOW_SCALING), Verdict::Ok);
        assert_eq!(verdict_of(&advice, TCP_CONGESTION_CONTROL), Verdict::Ok);
        assert_eq!(
            verdict_of(&advice, TCP_SLOW_START_AFTER_IDLE),
            Verdict::Tight
        );
        // 4 MiB per 100 ms.
        assert_eq!(
            advice.connection_cap,
            Some(ConnectionCap {
                bytes_per_round_trip: 4_194_304,
                cause: "the send buffer ceiling (net.ipv4.tcp_wmem)",
                connections_to_fill: 3,
            })
        );
        let wmem = advice
            .kernel
            .iter()
            .find(|c| c.subject.starts_with(TCP_WMEM))
            .unwrap();
        assert_eq!(wmem.subject, "net.ipv4.tcp_wmem max 4 MiB");
        assert!(
            wmem.finding
                .contains("at most 4 MiB per round trip ≈ 41.9 MB/s (336 Mbit/s), 34% of the link"),
            "{}",
            wmem.finding
        );
    }

    #[test]
    fn sysctl_lines_raise_ceilings_and_keep_the_rest_of_each_triple() {
        let kernel = KernelLimits::read(&this_machine());
        let advice = advise(&link(300, 1_000_000_000), &kernel, None);
        // 4 × 37.5 MB = 150 MB, rounded up to 256 MiB.
        let goal = (256u64 << 20).to_string();
        let changes: Vec<(&str, String)> = advice
            .sysctl_changes
            .iter()
            .map(|c| (c.key, c.value.clone()))
            .collect();
        assert_eq!(
            changes,
            vec![
                (TCP_RMEM, format!("4096 131072 {goal}")),
                (TCP_WMEM, format!("4096 16384 {goal}")),
                (RMEM_MAX, goal.clone()),
                (WMEM_MAX, goal.clone()),
                (TCP_SLOW_START_AFTER_IDLE, "0".to_string()),
            ]
        );
        // At 300 ms even the 32 MiB receive ceiling is below the BDP.
        assert_eq!(verdict_of(&advice, TCP_RMEM), Verdict::Limit);
    }

    #[test]
    fn a_lan_needs_nothing_but_the_idle_setting() {
        let kernel = KernelLimits::read(&this_machine());
        let advice = advise(&link(1, 1_000_000_000), &kernel, None);
        assert_eq!(advice.connection_cap, None);
        let keys: Vec<&str> = advice.sysctl_changes.iter().map(|c| c.key).collect();
        assert_eq!(keys, vec![TCP_SLOW_START_AFTER_IDLE]);
    }

    #[test]
    fn loss_based_congestion_control_gets_bbr_suggested() {
        let mut sysctls = this_machine();
        sysctls.set(TCP_CONGESTION_CONTROL, "cubic");
        sysctls.set(TCP_AVAILABLE_CONGESTION_CONTROL, "reno cubic");
        sysctls.set(TCP_WINDOW_SCALING, "0");
        let kernel = KernelLimits::read(&sysctls);
        let advice = advise(&link(100, 1_000_000_000), &kernel, None);
        let check = advice
            .kernel
            .iter()
            .find(|c| c.subject.starts_with(TCP_CONGESTION_CONTROL))
            .unwrap();
        assert_eq!(check.verdict, Verdict::Tight);
        // 1448 B / 0.1 s × 1.22 / √0.001 ≈ 559 kB/s.
        assert!(
            check.finding.contains("about 559 kB/s (4.47 Mbit/s)"),
            "{}",
            check.finding
        );
        assert!(
            check.finding.contains("bbr is not loaded"),
            "{}",
            check.finding
        );
        assert!(advice.sysctl_changes.contains(&SysctlChange {
            key: TCP_CONGESTION_CONTROL,
            value: "bbr".into()
        }));
        // Without window scaling the 64 KiB window is the lowest ceiling.
        assert_eq!(
            advice.connection_cap.map(|c| c.bytes_per_round_trip),
            Some(UNSCALED_WINDOW)
        );
    }

    #[test]
    fn explicit_strait_buffers_and_budget_are_checked_per_flow() {
        let kernel = KernelLimits::read(&this_machine());
        let settings = StraitSettings {
            flows: vec![FlowSettings {
                name: "east->west".into(),
                source: "east".into(),
                target: "west".into(),
                source_receive_buffer: Some(16 << 20),
                target_send_buffer: None,
                memory_budget: Some(64 << 20),
            }],
        };
        let advice = advise(&link(300, 1_000_000_000), &kernel, Some(&settings));
        let checks = advice.strait.unwrap();
        assert_eq!(checks.len(), 3);
        assert_eq!(checks[0].subject, "east.receive.buffer.bytes = 16777216");
        assert_eq!(checks[0].verdict, Verdict::Limit);
        assert!(
            checks[0]
                .finding
                .contains("which net.core.rmem_max cuts to 4 MiB"),
            "{}",
            checks[0].finding
        );
        assert_eq!(checks[1].subject, "west.send.buffer.bytes unset");
        assert_eq!(checks[1].verdict, Verdict::Ok);
        // 64 MiB holds one BDP of 37.5 MB but not two.
        assert_eq!(checks[2].verdict, Verdict::Tight);
        assert!(
            checks[2]
                .finding
                .ends_with("set east->west.strait.memory.budget.bytes = 134217728"),
            "{}",
            checks[2].finding
        );
    }

    #[test]
    fn an_unset_budget_is_judged_at_the_size_strait_picks_for_the_link() {
        let kernel = KernelLimits::read(&this_machine());
        let settings = |name: &str| StraitSettings {
            flows: vec![FlowSettings {
                name: name.into(),
                source: "east".into(),
                target: "west".into(),
                source_receive_buffer: None,
                target_send_buffer: None,
                memory_budget: None,
            }],
        };
        let far = advise(&link(300, 1_000_000_000), &kernel, Some(&settings("far")));
        let budget = &far.strait.unwrap()[2];
        assert_eq!(
            budget.subject,
            "far strait.memory.budget.bytes unset: 512 MiB on this link"
        );
        assert_eq!(budget.verdict, Verdict::Ok);
        // A 4 ms link keeps the 64 MiB of a near source, short of 2 x 100 Gbit/s x 4 ms.
        let near = advise(&link(4, 100_000_000_000), &kernel, Some(&settings("near")));
        let budget = &near.strait.unwrap()[2];
        assert_eq!(
            budget.subject,
            "near strait.memory.budget.bytes unset: 64 MiB on this link"
        );
        assert_eq!(budget.verdict, Verdict::Tight);
    }

    fn profile(file: &str) -> KernelLimits {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tuning")
            .join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        KernelLimits::read(&FixedSysctls::from_profile(&text))
    }

    #[test]
    fn shipped_profiles_leave_nothing_to_fix_on_their_links() {
        for (file, rtt_ms, bits_per_second) in [
            ("wan-100ms.conf", 100, 1_000_000_000),
            ("wan-300ms.conf", 300, 1_000_000_000),
            ("lan.conf", 2, 25_000_000_000),
        ] {
            let advice = advise(&link(rtt_ms, bits_per_second), &profile(file), None);
            assert_eq!(advice.sysctl_changes, vec![], "{file}");
            assert_eq!(advice.connection_cap, None, "{file}");
            let not_ok: Vec<&Check> = advice
                .kernel
                .iter()
                .filter(|c| c.verdict != Verdict::Ok)
                .collect();
            assert!(not_ok.is_empty(), "{file}: {not_ok:#?}");
        }
    }
}

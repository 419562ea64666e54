//! The flow's measurements of its links to the source brokers: bytes fetched and the
//! kernel's TCP_INFO per broker and period, which feed the lane planner and the
//! diagnosis. Keeps no sockets: the fetch driver hands in what each response showed.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::wire::TcpStats;

use super::diagnosis::{diagnose, Limit, Observation};
use super::lanes::{BrokerSample, LanePlanner};

#[derive(Debug)]
struct BrokerLink {
    planner: LanePlanner,
    bytes: u64,
    held_for_memory: bool,
    rtt: Option<Duration>,
    receive_buffer: usize,
    rate: f64,
}

/// What the flow knows beyond the links when it evaluates a period.
#[derive(Debug, Clone)]
pub struct FlowState {
    pub period: Duration,
    pub backlog: bool,
    pub partitions_by_broker: BTreeMap<i32, usize>,
    pub awaiting_target: usize,
    pub memory_budget: usize,
    pub target_broker: Option<i32>,
}

#[derive(Debug)]
pub struct SourceLinks {
    alias: String,
    configured_lanes: Option<u16>,
    receive_buffer_fixed: Option<usize>,
    autotune_receive_max: Option<usize>,
    brokers: BTreeMap<i32, BrokerLink>,
    limit: Limit,
}

impl SourceLinks {
    pub fn new(
        alias: &str,
        configured_lanes: Option<u16>,
        receive_buffer_fixed: Option<usize>,
        autotune_receive_max: Option<usize>,
    ) -> Self {
        SourceLinks {
            alias: alias.to_string(),
            configured_lanes,
            receive_buffer_fixed,
            autotune_receive_max,
            brokers: BTreeMap::new(),
            limit: Limit::None,
        }
    }

    fn broker(&mut self, broker: i32) -> &mut BrokerLink {
        let configured = self.configured_lanes;
        self.brokers.entry(broker).or_insert_with(|| BrokerLink {
            planner: LanePlanner::new(configured),
            bytes: 0,
            held_for_memory: false,
            rtt: None,
            receive_buffer: 0,
            rate: 0.0,
        })
    }

    pub fn lanes(&self, broker: i32) -> u16 {
        self.brokers.get(&broker).map_or_else(
            || LanePlanner::new(self.configured_lanes).lanes(),
            |link| link.planner.lanes(),
        )
    }

    /// A fetch answered with `bytes` of records; `tcp` is its connection's state then.
    pub fn on_fetched(&mut self, broker: i32, bytes: usize, tcp: Option<TcpStats>) {
        let link = self.broker(broker);
        link.bytes += bytes as u64;
        if let Some(tcp) = tcp {
            let rtt = tcp.round_trip();
            if !rtt.is_zero() {
                link.rtt = Some(rtt);
            }
            link.receive_buffer = link.receive_buffer.max(tcp.receive_buffer);
        }
    }

    /// A fetch to `broker` could not go out for lack of room in the memory budget.
    pub fn on_held_for_memory(&mut self, broker: i32) {
        self.broker(broker).held_for_memory = true;
    }

    /// The longest round trip to any source broker, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.brokers.values().filter_map(|link| link.rtt).max()
    }

    /// Closes a period: lanes grow where they help, and the diagnosis is renewed.
    /// Returns the brokers whose lane count changed, with the new count.
    pub fn evaluate(&mut self, flow: &FlowState) -> Vec<(i32, u16)> {
        let mut changed = Vec::new();
        let mut busiest: Option<(i32, f64)> = None;
        for (&broker, link) in &mut self.brokers {
            let partitions = flow.partitions_by_broker.get(&broker).copied().unwrap_or(0);
            let sample = BrokerSample {
                rtt: link.rtt.unwrap_or_default(),
                bytes: link.bytes,
                period: flow.period,
                backlog: flow.backlog,
                held_for_memory: link.held_for_memory,
                partitions,
            };
            link.rate = sample.rate();
            if let Some(lanes) = link.planner.observe(&sample) {
                changed.push((broker, lanes));
            }
            if busiest.is_none_or(|(_, rate)| link.rate > rate) {
                busiest = Some((broker, link.rate));
            }
        }
        self.limit = match busiest {
            Some((broker, _)) => {
                let link = &self.brokers[&broker];
                let partitions = flow.partitions_by_broker.get(&broker).copied().unwrap_or(0);
                diagnose(&Observation {
                    source_alias: self.alias.clone(),
                    source_broker: broker,
                    rtt: link.rtt.unwrap_or_default(),
                    rate: link.rate,
                    lanes: link.planner.lanes(),
                    lanes_at_limit: link.planner.at_limit(partitions),
                    receive_buffer: link.receive_buffer,
                    receive_buffer_fixed: self.receive_buffer_fixed,
                    autotune_receive_max: self.autotune_receive_max,
                    backlog: flow.backlog,
                    held_for_memory: self.brokers.values().any(|l| l.held_for_memory),
                    awaiting_target: flow.awaiting_target,
                    memory_budget: flow.memory_budget,
                    target_broker: flow.target_broker,
                })
            }
            None => Limit::None,
        };
        for link in self.brokers.values_mut() {
            link.bytes = 0;
            link.held_for_memory = false;
        }
        changed
    }

    pub fn limit(&self) -> &Limit {
        &self.limit
    }

    /// For the status line: "rtt 101 ms, 8 fetch connections".
    pub fn summary(&self) -> Option<String> {
        let rtt = self.rtt()?;
        let connections: u32 = self
            .brokers
            .values()
            .map(|link| u32::from(link.planner.lanes()))
            .sum();
        Some(format!(
            "rtt {:.0} ms, {connections} fetch connections",
            rtt.as_secs_f64() * 1e3
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(rtt_ms: u64, receive_buffer: usize) -> Option<TcpStats> {
        Some(TcpStats {
            rtt: Duration::from_millis(rtt_ms),
            receive_buffer,
            ..TcpStats::default()
        })
    }

    fn flow(backlog: bool) -> FlowState {
        FlowState {
            period: Duration::from_secs(1),
            backlog,
            partitions_by_broker: BTreeMap::from([(1, 8)]),
            awaiting_target: 0,
            memory_budget: 64 << 20,
            target_broker: Some(7),
        }
    }

    #[test]
    fn a_backlogged_long_link_gets_more_lanes_and_a_summary() {
        let mut links = SourceLinks::new("A", None, None, Some(32 << 20));
        assert_eq!(links.lanes(1), 1);
        assert_eq!(links.summary(), None);
        links.on_fetched(1, 40_000_000, tcp(100, 4 << 20));
        assert_eq!(links.evaluate(&flow(true)), vec![(1, 2)]);
        assert_eq!(links.lanes(1), 2);
        assert_eq!(
            links.summary().as_deref(),
            Some("rtt 100 ms, 2 fetch connections")
        );
        // Caught up: nothing grows and nothing limits.
        links.on_fetched(1, 100_000_000, tcp(100, 4 << 20));
        assert_eq!(links.evaluate(&flow(false)), vec![]);
        assert_eq!(links.limit(), &Limit::None);
    }

    #[test]
    fn the_busiest_broker_is_diagnosed_and_the_period_starts_afresh() {
        let mut links = SourceLinks::new("A", Some(1), Some(65536), None);
        links.on_fetched(1, 650_000, tcp(100, 131072));
        links.on_fetched(2, 10, tcp(100, 131072));
        links.evaluate(&flow(true));
        let text = links.limit().to_string();
        assert!(text.contains("A.receive.buffer.bytes=65536"), "{text}");
        links.on_held_for_memory(1);
        links.evaluate(&flow(true));
        assert!(matches!(links.limit(), Limit::MemoryBudget { .. }));
        links.on_fetched(1, 650_000, tcp(100, 131072));
        links.evaluate(&flow(true));
        assert!(matches!(links.limit(), Limit::ReceiveWindow { .. }));
        links.evaluate(&flow(true));
        assert_eq!(links.limit(), &Limit::Stalled { broker: 1 });
    }
}

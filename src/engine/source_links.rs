//! The flow's measurements of its links to the source brokers: the kernel's TCP_INFO of
//! each fetch connection, read once per period (bytes received, round trip, buffers),
//! which feeds the lane planner and the diagnosis. Keeps no sockets: the driver reads
//! them and hands in the figures.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use crate::wire::TcpStats;

use super::diagnosis::{diagnose, Limit, Observation};
use super::lanes::{fetches_per_lane, periods_to_settle, BrokerSample, LanePlanner};
use super::stats::count;

/// Less waiting data than this cannot fill a link for long: a period that moved little
/// with so little waiting says nothing about windows.
const MIN_BACKLOG_BYTES: f64 = 4.0 * 1024.0 * 1024.0;

/// A connection that received less than this fraction of what its broker's median
/// connection did in a period counts as held back, not as sharing the link: one recovering
/// from losses at 300 ms received 0-0.1 MB per second for 3 s while the others carried
/// 3-7 MB each (and then 0.1-0.9 MB per second alone), so the fetch that the partition's
/// answers waited for took 12 s.
const HELD_BACK_FRACTION: u64 = 4;

/// Less than this in a period is no share of a link: the empty answers of partitions at
/// their log's end, while one connection still carries data.
const SHARE_MIN_BYTES: u64 = 64 * 1024;

/// A fetch connection that fell behind the others over this many periods in a row, owing
/// an answer all along, is replaced by a new one. At 300 ms a source host's bbr, after losses
/// on one connection, paced it at 0.1-0.5 MB/s for 20 s (its long-term, policer-proof
/// estimate holds 48 round trips) while 31 others carried 3-4 MB/s each; a new connection
/// takes its share within a few round trips. Losses alone hold a connection back for 2-4
/// periods at most in the same runs.
pub const TRICKLING_PERIODS: usize = 5;

/// Behind the others over `TRICKLING_PERIODS` periods means receiving less than this
/// fraction of what their median did in the same periods, summed. A quarter in each
/// period, five in a row, missed a connection at 300 ms that carried 0.1-1.8 MB a second
/// all through a copy against a median of 1.5-5.4: below a quarter in some seconds, about
/// a third in others, it held its partition's tail 4 s. Connections sharing a full link
/// unevenly stay above a third over five seconds.
const BEHIND_OVER_PERIODS_FRACTION: u64 = 3;

/// True when the source held more than twice what the link carried per round trip: then
/// the link, not the supply of data, set the pace.
fn backlogged(backlog_bytes: u64, rate: f64, rtt: Duration) -> bool {
    backlog_bytes as f64 >= (2.0 * rate * rtt.as_secs_f64()).max(MIN_BACKLOG_BYTES)
}

#[derive(Debug)]
struct BrokerLink {
    planner: LanePlanner,
    bytes: u64,
    /// Connections that received data in the period: at the end of a copy some lanes'
    /// partitions are done, and their idle connections say nothing about windows.
    active_lanes: u16,
    held_for_memory: bool,
    rtt: Option<Duration>,
    receive_buffer: usize,
    rate: f64,
}

/// What the flow knows beyond the links when it evaluates a period.
#[derive(Debug, Clone)]
pub struct FlowState {
    pub period: Duration,
    /// Bytes the source holds beyond what was copied, estimated from the lag in records
    /// at the size of the records copied so far; `None` while nothing was copied yet and
    /// records have no size: a lag then counts as a backlog for opening connections, but
    /// no verdict is drawn from it.
    pub backlog_bytes: Option<u64>,
    pub partitions_by_broker: BTreeMap<i32, usize>,
    pub awaiting_target: usize,
    /// How long in the period a partition with data to read waited for the target to
    /// take what it held.
    pub waited_for_target: Duration,
    pub memory_budget: usize,
    pub partition_fetch_bytes: usize,
    pub target_broker: Option<i32>,
    pub produce_connections: u16,
    /// The round trip to the target (see `TargetPath`).
    pub target_rtt: Option<Duration>,
    pub target_send_buffer: usize,
    /// Produce connections opened across a long path may still be in slow start.
    pub target_settling: bool,
    /// The target topic's batch limit, and the most one produce connection may have on
    /// its way (see `Observation`).
    pub target_batch_limit: usize,
    pub target_in_flight_cap: usize,
    /// Bytes the target acknowledged in the period.
    pub produced_bytes: u64,
}

/// A fetch connection that fell behind the others for long: what it received and the sum
/// of the others' medians over the `TRICKLING_PERIODS` periods it was judged on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TricklingLane {
    pub broker: i32,
    pub lane: u16,
    pub received: u64,
    pub others_median: u64,
}

#[derive(Debug)]
pub struct SourceLinks {
    alias: String,
    configured_lanes: Option<u16>,
    receive_buffer_fixed: Option<usize>,
    autotune_receive_max: Option<usize>,
    brokers: BTreeMap<i32, BrokerLink>,
    /// Bytes received so far per (broker, lane) connection, to count each period's share.
    received: HashMap<(i32, u16), u64>,
    /// Bytes each (broker, lane) connection received in order in the latest period: a
    /// loss holds the stream back until its retransmission arrives.
    received_last_period: HashMap<(i32, u16), u64>,
    /// Each connection's latest periods in a row in which it owed an answer and others
    /// carried a share: what it received and the others' median, oldest first, at most
    /// `TRICKLING_PERIODS`.
    compared_periods: HashMap<(i32, u16), VecDeque<(u64, u64)>>,
    /// Connections replaced for trickling, for the status line.
    replaced: u64,
    /// Periods a replacing connection is not judged yet: alone in slow start among
    /// connections at full pace it receives little (at 300 ms 0.0, 0.03, 0.11, 0.09, 0.25
    /// and 0.37 of the median in its first six seconds, and it was replaced again).
    starting_lanes: HashMap<(i32, u16), u32>,
    /// The latest period's length, to count a slow start's round trips in periods.
    period: Duration,
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
            received: HashMap::new(),
            received_last_period: HashMap::new(),
            compared_periods: HashMap::new(),
            replaced: 0,
            starting_lanes: HashMap::new(),
            period: Duration::from_secs(1),
            limit: Limit::None,
        }
    }

    fn broker(&mut self, broker: i32) -> &mut BrokerLink {
        let configured = self.configured_lanes;
        self.brokers.entry(broker).or_insert_with(|| BrokerLink {
            planner: LanePlanner::new(configured),
            bytes: 0,
            active_lanes: 0,
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

    /// The state of fetch connection `lane` to `broker` now. A connection that counts
    /// fewer bytes than before replaced the previous one.
    pub fn on_tcp_stats(&mut self, broker: i32, lane: u16, tcp: TcpStats) {
        let before = self
            .received
            .insert((broker, lane), tcp.bytes_received)
            .unwrap_or(0);
        let new_bytes = tcp
            .bytes_received
            .checked_sub(before)
            .unwrap_or(tcp.bytes_received);
        self.received_last_period.insert((broker, lane), new_bytes);
        let link = self.broker(broker);
        link.bytes += new_bytes;
        if new_bytes > 0 {
            link.active_lanes += 1;
        }
        let rtt = tcp.round_trip();
        if !rtt.is_zero() {
            link.rtt = Some(rtt);
        }
        link.receive_buffer = link.receive_buffer.max(tcp.receive_buffer);
    }

    /// The round trip to `broker` measured on another connection to it (the admin
    /// connection that read the partitions' log ends), before any fetch connection
    /// has measured one: the first evaluation can then open the connections a long link
    /// needs before the first fetch goes out, rather than a period after it. A fetch
    /// connection's own measurement replaces it.
    pub fn seed_round_trip(&mut self, broker: i32, rtt: Duration) {
        if rtt.is_zero() {
            return;
        }
        let link = self.broker(broker);
        link.rtt.get_or_insert(rtt);
    }

    /// A fetch to `broker` could not go out for lack of room in the memory budget.
    pub fn on_held_for_memory(&mut self, broker: i32) {
        self.broker(broker).held_for_memory = true;
    }

    /// Whether fetch connection `lane` to `broker` kept pace with others sharing the
    /// link in the latest period measured: it received data in order, at least a quarter
    /// of what the median of the broker's other connections that carried a share did.
    /// Alone in carrying data it shared the link with nobody (at a copy's end, the others
    /// done, a connection recovering from losses trickled 0.1-0.9 MB per second for 9 s):
    /// it did not. `None` before its first measurement.
    pub fn kept_pace_last_period(&self, broker: i32, lane: u16) -> Option<bool> {
        let bytes = *self.received_last_period.get(&(broker, lane))?;
        // The median counts only shares of 64 KiB or more: nothing received is behind it.
        Some(
            self.median_of_others(broker, lane)
                .is_some_and(|(median, _)| bytes.saturating_mul(HELD_BACK_FRACTION) >= median),
        )
    }

    /// The median of what the broker's other connections that carried a share received in
    /// the latest period, and how many they were.
    fn median_of_others(&self, broker: i32, lane: u16) -> Option<(u64, usize)> {
        let mut shares: Vec<u64> = self
            .received_last_period
            .iter()
            .filter(|(&(other_broker, other_lane), &received)| {
                other_broker == broker && other_lane != lane && received >= SHARE_MIN_BYTES
            })
            .map(|(_, &received)| received)
            .collect();
        if shares.is_empty() {
            return None;
        }
        shares.sort_unstable();
        Some((shares[shares.len() / 2], shares.len()))
    }

    /// Fetch connections to replace: each received under a third of what the median of
    /// at least two others of its broker that carried a share did, summed over the latest
    /// `TRICKLING_PERIODS` periods, owing an answer all along (`owing`, from before each
    /// period), and under a third in the latest period too (one catching up is left to
    /// finish). Connections that owe nothing wait for work, not for the link; a period
    /// without owing or without others to compare with starts the count again. Returned
    /// lanes count afresh once their new connection's slow start is over
    /// (see `periods_to_settle`).
    pub fn trickling_lanes(&mut self, owing: &BTreeSet<(i32, u16)>) -> Vec<TricklingLane> {
        let mut lanes: Vec<(i32, u16)> = self.received_last_period.keys().copied().collect();
        lanes.sort_unstable();
        let mut replace = Vec::new();
        for (broker, lane) in lanes {
            if let Some(left) = self.starting_lanes.get_mut(&(broker, lane)) {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.starting_lanes.remove(&(broker, lane));
                }
                continue;
            }
            let received = self.received_last_period[&(broker, lane)];
            let compared = owing
                .contains(&(broker, lane))
                .then(|| self.median_of_others(broker, lane))
                .flatten()
                .filter(|&(_, others)| others >= 2);
            let periods = self.compared_periods.entry((broker, lane)).or_default();
            match compared {
                Some((median, _)) => {
                    if periods.len() == TRICKLING_PERIODS {
                        periods.pop_front();
                    }
                    periods.push_back((received, median));
                }
                None => periods.clear(),
            }
            if periods.len() < TRICKLING_PERIODS {
                continue;
            }
            let behind = |(received, median): (u64, u64)| {
                received.saturating_mul(BEHIND_OVER_PERIODS_FRACTION) < median
            };
            let received: u64 = periods.iter().map(|&(received, _)| received).sum();
            let others_median: u64 = periods.iter().map(|&(_, median)| median).sum();
            // One catching up (its latest period a third of the median or more) is left
            // to finish: a new connection would start slowly again.
            let latest = periods.back().copied().unwrap_or_default();
            if behind((received, others_median)) && behind(latest) {
                replace.push(TricklingLane {
                    broker,
                    lane,
                    received,
                    others_median,
                });
            }
        }
        for trickling in &replace {
            self.forget_connection(trickling.broker, trickling.lane);
        }
        self.replaced += replace.len() as u64;
        replace
    }

    /// Lane `lane` of `broker` gets a new connection: what the old one received and how
    /// long it trickled say nothing about it.
    fn forget_connection(&mut self, broker: i32, lane: u16) {
        self.received.remove(&(broker, lane));
        self.received_last_period.remove(&(broker, lane));
        self.compared_periods.remove(&(broker, lane));
        let rtt = self
            .brokers
            .get(&broker)
            .and_then(|link| link.rtt)
            .unwrap_or_default();
        self.starting_lanes
            .insert((broker, lane), periods_to_settle(rtt, self.period));
    }

    /// The longest round trip to any source broker, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.brokers.values().filter_map(|link| link.rtt).max()
    }

    /// Closes a period: lanes grow where they help, and the diagnosis is renewed.
    /// Returns the brokers whose lane count changed, with the new count.
    pub fn evaluate(&mut self, flow: &FlowState) -> Vec<(i32, u16)> {
        self.period = flow.period;
        let mut changed = Vec::new();
        let mut busiest: Option<(i32, f64)> = None;
        for (&broker, link) in &mut self.brokers {
            let partitions = flow.partitions_by_broker.get(&broker).copied().unwrap_or(0);
            let rtt = link.rtt.unwrap_or_default();
            let rate = link.bytes as f64 / flow.period.as_secs_f64().max(1e-3);
            let sample = BrokerSample {
                rtt,
                bytes: link.bytes,
                period: flow.period,
                backlog: backlogged(flow.backlog_bytes.unwrap_or(u64::MAX), rate, rtt),
                held_for_memory: link.held_for_memory,
                partitions,
                in_flight_goal: flow.memory_budget / 2,
            };
            link.rate = sample.rate();
            if let Some(lanes) = link.planner.observe(&sample) {
                changed.push((broker, lanes));
            }
            if busiest.is_none_or(|(_, rate)| link.rate > rate) {
                busiest = Some((broker, link.rate));
            }
        }
        let settling =
            flow.target_settling || self.brokers.values().any(|link| link.planner.settling());
        self.limit = match busiest {
            // New connections in slow start would be taken for small windows.
            _ if settling => Limit::None,
            // Only a seeded round trip, before the first fetch: nothing to judge.
            _ if self.received.is_empty() => Limit::None,
            Some((broker, _)) => {
                let link = &self.brokers[&broker];
                let partitions = flow.partitions_by_broker.get(&broker).copied().unwrap_or(0);
                diagnose(&Observation {
                    source_alias: self.alias.clone(),
                    source_broker: broker,
                    rtt: link.rtt.unwrap_or_default(),
                    rate: link.rate,
                    lanes: link.active_lanes.max(1),
                    lanes_at_limit: link.planner.at_limit(),
                    // Lanes that read ahead keep two fetches out; others one
                    // session fetch with each of their partitions.
                    fetch_bytes_per_lane: flow.partition_fetch_bytes
                        * partitions
                            .div_ceil(usize::from(link.planner.lanes()))
                            .max(fetches_per_lane(link.planner.lanes(), partitions)),
                    receive_buffer: link.receive_buffer,
                    receive_buffer_fixed: self.receive_buffer_fixed,
                    autotune_receive_max: self.autotune_receive_max,
                    // A tiny first burst is no slow source.
                    backlog: flow.backlog_bytes.is_some_and(|bytes| {
                        backlogged(bytes, link.rate, link.rtt.unwrap_or_default())
                    }),
                    source_backlog: flow.backlog_bytes.is_some_and(|bytes| {
                        let not_fetched = bytes.saturating_sub(flow.awaiting_target as u64);
                        backlogged(not_fetched, link.rate, link.rtt.unwrap_or_default())
                    }),
                    held_for_memory: self.brokers.values().any(|l| l.held_for_memory),
                    awaiting_target: flow.awaiting_target,
                    target_wait_share: flow.waited_for_target.as_secs_f64()
                        / flow.period.as_secs_f64().max(1e-3),
                    memory_budget: flow.memory_budget,
                    target_broker: flow.target_broker,
                    produce_connections: flow.produce_connections,
                    target_rtt: flow.target_rtt,
                    produce_rate: flow.produced_bytes as f64 / flow.period.as_secs_f64().max(1e-3),
                    target_send_buffer: flow.target_send_buffer,
                    target_batch_limit: flow.target_batch_limit,
                    target_in_flight_cap: flow.target_in_flight_cap,
                })
            }
            None => Limit::None,
        };
        for link in self.brokers.values_mut() {
            link.bytes = 0;
            link.active_lanes = 0;
            link.held_for_memory = false;
        }
        changed
    }

    pub fn limit(&self) -> &Limit {
        &self.limit
    }

    /// For the status line: "rtt 101 ms, 8 fetch connections", and how many were replaced
    /// for trickling.
    pub fn summary(&self) -> Option<String> {
        let rtt = self.rtt()?;
        let connections: u32 = self
            .brokers
            .values()
            .map(|link| u32::from(link.planner.lanes()))
            .sum();
        let replaced = if self.replaced > 0 {
            format!(" ({} replaced after falling behind)", self.replaced)
        } else {
            String::new()
        };
        Some(format!(
            "rtt {:.0} ms, {}{replaced}",
            rtt.as_secs_f64() * 1e3,
            count(
                u64::from(connections),
                "fetch connection",
                "fetch connections"
            )
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(rtt_ms: u64, receive_buffer: usize, bytes_received: u64) -> TcpStats {
        TcpStats {
            rtt: Duration::from_millis(rtt_ms),
            receive_buffer,
            bytes_received,
            ..TcpStats::default()
        }
    }

    /// Each lane's bytes received in order, fed period by period to broker 1's links as
    /// TCP_INFO counts them: from the connection's start.
    struct Received<const LANES: usize>([u64; LANES]);

    impl<const LANES: usize> Default for Received<LANES> {
        fn default() -> Self {
            Received([0; LANES])
        }
    }

    impl<const LANES: usize> Received<LANES> {
        fn next(&mut self, links: &mut SourceLinks, in_the_period: [u64; LANES]) {
            for (lane, bytes) in in_the_period.into_iter().enumerate() {
                self.0[lane] += bytes;
                links.on_tcp_stats(1, lane as u16, tcp(300, 6 << 20, self.0[lane]));
            }
        }
    }

    fn flow(backlog: bool) -> FlowState {
        FlowState {
            period: Duration::from_secs(1),
            backlog_bytes: Some(if backlog { 1 << 30 } else { 0 }),
            partitions_by_broker: BTreeMap::from([(1, 8)]),
            awaiting_target: 0,
            waited_for_target: Duration::ZERO,
            memory_budget: 64 << 20,
            partition_fetch_bytes: 1 << 20,
            target_broker: Some(7),
            produce_connections: 2,
            target_rtt: None,
            target_send_buffer: 0,
            target_settling: false,
            target_batch_limit: 1 << 20,
            target_in_flight_cap: 5 << 20,
            produced_bytes: 0,
        }
    }

    #[test]
    fn a_backlogged_long_link_gets_more_lanes_and_a_summary() {
        let mut links = SourceLinks::new("A", None, None, Some(32 << 20));
        assert_eq!(links.lanes(1), 1);
        assert_eq!(links.summary(), None);
        links.on_tcp_stats(1, 0, tcp(100, 4 << 20, 40_000_000));
        // One lane per 10 ms of round trip, two per partition.
        assert_eq!(links.evaluate(&flow(true)), vec![(1, 16)]);
        // Slow start of the new connections: no verdict yet.
        assert_eq!(links.limit(), &Limit::None);
        assert_eq!(links.lanes(1), 16);
        assert_eq!(
            links.summary().as_deref(),
            Some("rtt 100 ms, 16 fetch connections")
        );
        // Caught up: nothing grows and nothing limits.
        links.on_tcp_stats(1, 0, tcp(100, 4 << 20, 140_000_000));
        assert_eq!(links.evaluate(&flow(false)), vec![]);
        assert_eq!(links.limit(), &Limit::None);
    }

    #[test]
    fn a_round_trip_seen_before_any_fetch_connection_opens_the_lanes_at_once() {
        let mut links = SourceLinks::new("A", None, None, Some(32 << 20));
        links.seed_round_trip(1, Duration::ZERO);
        assert_eq!(links.evaluate(&flow(true)), vec![], "nothing measured");
        links.seed_round_trip(1, Duration::from_millis(300));
        assert_eq!(links.rtt(), Some(Duration::from_millis(300)));
        // A period of nothing received: the round trip and the backlog decide alone.
        assert_eq!(links.evaluate(&flow(true)), vec![(1, 32)]);
        assert_eq!(links.limit(), &Limit::None, "new connections settle first");
        // The fetch connections' own measurements take over; a later seed does not.
        links.on_tcp_stats(1, 0, tcp(290, 6 << 20, 1_000));
        links.seed_round_trip(1, Duration::from_millis(300));
        assert_eq!(links.rtt(), Some(Duration::from_millis(290)));
        // A short link seeded gets no lanes.
        let mut lan = SourceLinks::new("A", None, None, Some(32 << 20));
        lan.seed_round_trip(1, Duration::from_micros(400));
        assert_eq!(lan.evaluate(&flow(true)), vec![]);
    }

    #[test]
    fn a_connection_whose_stream_stood_still_for_a_period_did_not_keep_pace() {
        let mut links = SourceLinks::new("A", Some(3), None, Some(32 << 20));
        assert_eq!(links.kept_pace_last_period(1, 0), None, "not measured yet");
        for lane in 0..3 {
            links.on_tcp_stats(1, lane, tcp(300, 6 << 20, 5_000_000));
        }
        assert_eq!(links.kept_pace_last_period(1, 1), Some(true));
        // Lanes 0 and 2 keep receiving; lane 1 waits for a retransmission, so the bytes
        // it received in order stand still.
        links.on_tcp_stats(1, 0, tcp(300, 6 << 20, 9_000_000));
        links.on_tcp_stats(1, 1, tcp(300, 6 << 20, 5_000_000));
        links.on_tcp_stats(1, 2, tcp(300, 6 << 20, 9_000_000));
        assert_eq!(links.kept_pace_last_period(1, 0), Some(true));
        assert_eq!(links.kept_pace_last_period(1, 1), Some(false));
        // A new connection on lane 1 counts from zero again, and it received its share.
        links.on_tcp_stats(1, 1, tcp(300, 6 << 20, 4_000_000));
        assert_eq!(links.kept_pace_last_period(1, 1), Some(true));
        assert_eq!(links.kept_pace_last_period(2, 1), None, "another broker");
    }

    #[test]
    fn a_connection_that_trickles_while_the_others_carry_the_link_did_not_keep_pace() {
        const MB: u64 = 1_000_000;
        let mut links = SourceLinks::new("A", Some(5), None, Some(32 << 20));
        let mut period = Received::<5>::default();
        // Lane 4 recovers from losses: 0.8 MB in a second while the others carry 3-4 MB.
        period.next(&mut links, [3 * MB, 4 * MB, 4 * MB, 3_600_000, 800_000]);
        assert_eq!(links.kept_pace_last_period(1, 4), Some(false));
        // Sharing the link unevenly is keeping pace: a quarter of the median or more.
        period.next(&mut links, [3 * MB, 4 * MB, 4 * MB, 3_600_000, MB]);
        assert_eq!(links.kept_pace_last_period(1, 4), Some(true));
        // Idle connections (nothing asked of them) do not lower the median.
        period.next(&mut links, [0, 0, 4 * MB, 3_600_000, 800_000]);
        assert_eq!(links.kept_pace_last_period(1, 4), Some(false));
        assert_eq!(links.kept_pace_last_period(1, 0), Some(false));
        // Alone in receiving anything, the others done: nobody to share the link with.
        period.next(&mut links, [0, 0, 0, 0, 100_000]);
        assert_eq!(links.kept_pace_last_period(1, 4), Some(false));
        assert_eq!(links.kept_pace_last_period(2, 4), None, "another broker");
    }

    #[test]
    fn alone_in_carrying_data_beside_empty_answers_is_not_keeping_pace() {
        let mut links = SourceLinks::new("A", Some(4), None, Some(32 << 20));
        // The copy's other partitions are done: their lanes bring back empty answers.
        for (lane, bytes) in [(0, 76), (1, 152), (2, 76), (3, 2_300_000)] {
            links.on_tcp_stats(1, lane, tcp(300, 6 << 20, bytes));
        }
        assert_eq!(links.kept_pace_last_period(1, 3), Some(false));
    }

    #[test]
    fn a_connection_left_behind_for_five_periods_while_owing_answers_is_replaced() {
        const MB: u64 = 1_000_000;
        let mut links = SourceLinks::new("A", Some(4), None, Some(32 << 20));
        let mut period = Received::<4>::default();
        let all_owe = BTreeSet::from([(1, 0), (1, 1), (1, 2), (1, 3)]);
        // Lane 3 trickles at a tenth of the others for four periods: not yet.
        for _ in 0..4 {
            period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, 300_000]);
            assert_eq!(links.trickling_lanes(&all_owe), vec![]);
        }
        // The fifth.
        period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, 300_000]);
        assert_eq!(
            links.trickling_lanes(&all_owe),
            vec![TricklingLane {
                broker: 1,
                lane: 3,
                received: 1_500_000,
                others_median: 17_500_000,
            }]
        );
        assert_eq!(
            links.summary().as_deref(),
            Some("rtt 300 ms, 4 fetch connections (1 replaced after falling behind)")
        );
        // Its new connection counts from zero, with a clean record.
        assert_eq!(links.kept_pace_last_period(1, 3), None);
        links.on_tcp_stats(1, 3, tcp(300, 6 << 20, 2 * MB));
        assert_eq!(links.kept_pace_last_period(1, 3), Some(true));
        // Alone in slow start it receives little for 16 round trips (4.8 s, five periods):
        // not judged on them.
        let mut period = Received::<4>::default();
        period.0[3] = 2 * MB;
        for second in 0..9 {
            let slow_start = [0, 30_000, 100_000, 300_000, 900_000];
            let lane_3 = slow_start.get(second).copied().unwrap_or(3 * MB);
            period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, lane_3]);
            assert_eq!(links.trickling_lanes(&all_owe), vec![], "second {second}");
        }
    }

    #[test]
    fn a_connection_slow_all_along_is_replaced_though_never_a_quarter_behind_for_long() {
        const MB: u64 = 1_000_000;
        let mut links = SourceLinks::new("A", Some(4), None, Some(32 << 20));
        let mut period = Received::<4>::default();
        let all_owe = BTreeSet::from([(1, 0), (1, 1), (1, 2), (1, 3)]);
        // Lane 3 carries under a quarter of the median one second, over it the next.
        let lane_3 = [300_000, 1_300_000, 300_000, 1_300_000, 300_000];
        for (second, &received) in lane_3.iter().enumerate() {
            period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, received]);
            let replaced = links.trickling_lanes(&all_owe);
            if second < 4 {
                assert_eq!(replaced, vec![], "second {second}");
            } else {
                assert_eq!(
                    replaced,
                    vec![TricklingLane {
                        broker: 1,
                        lane: 3,
                        received: 3_500_000,
                        others_median: 17_500_000,
                    }]
                );
            }
        }
    }

    #[test]
    fn a_connection_catching_up_is_left_to_finish() {
        const MB: u64 = 1_000_000;
        let mut links = SourceLinks::new("A", Some(4), None, Some(32 << 20));
        let mut period = Received::<4>::default();
        let all_owe = BTreeSet::from([(1, 0), (1, 1), (1, 2), (1, 3)]);
        // Losses held lane 3 back for three seconds; it recovers: under a third over five
        // seconds, but not in the latest.
        for (second, lane_3) in [40_000, 160_000, 700_000, 2_000_000, 1_700_000, 3 * MB]
            .into_iter()
            .enumerate()
        {
            period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, lane_3]);
            assert_eq!(links.trickling_lanes(&all_owe), vec![], "second {second}");
        }
    }

    #[test]
    fn sharing_a_full_link_unevenly_is_not_falling_behind() {
        const MB: u64 = 1_000_000;
        let mut links = SourceLinks::new("A", Some(4), None, Some(32 << 20));
        let mut period = Received::<4>::default();
        let all_owe = BTreeSet::from([(1, 0), (1, 1), (1, 2), (1, 3)]);
        // Lane 3 gets 40 % of the median over any five seconds, unevenly.
        for second in 0..20 {
            let lane_3 = if second % 2 == 0 { 400_000 } else { 2_400_000 };
            period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, lane_3]);
            assert_eq!(links.trickling_lanes(&all_owe), vec![], "second {second}");
        }
    }

    #[test]
    fn only_a_connection_that_owes_answers_and_stays_behind_others_counts_as_trickling() {
        const MB: u64 = 1_000_000;
        let mut links = SourceLinks::new("A", Some(4), None, Some(32 << 20));
        let mut period = Received::<4>::default();
        let all_owe = BTreeSet::from([(1, 0), (1, 1), (1, 2), (1, 3)]);
        let but_lane_3 = BTreeSet::from([(1, 0), (1, 1), (1, 2)]);
        for round in 0..15 {
            match round % 5 {
                // Losses hold its stream back four periods; what arrived behind the hole
                // is received in order at once when the retransmission comes.
                0..4 => period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, 0]),
                _ => period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, 12 * MB]),
            }
            assert_eq!(links.trickling_lanes(&all_owe), vec![], "round {round}");
        }
        // Idle, with nothing asked of it: waiting for work, not for the link.
        for round in 0..6 {
            period.next(&mut links, [3 * MB, 4 * MB, 3_500_000, 0]);
            assert_eq!(links.trickling_lanes(&but_lane_3), vec![], "idle {round}");
        }
        // Behind a single other connection (the others done): nothing to compare with.
        let the_last_two = BTreeSet::from([(1, 0), (1, 3)]);
        for round in 0..6 {
            period.next(&mut links, [4 * MB, 0, 0, 300_000]);
            assert_eq!(links.trickling_lanes(&the_last_two), vec![], "tail {round}");
        }
    }

    #[test]
    fn no_verdict_while_produce_connections_across_a_long_path_start() {
        let mut links = SourceLinks::new("A", Some(1), None, Some(32 << 20));
        let waiting_for_a_far_target = FlowState {
            waited_for_target: Duration::from_secs(1),
            awaiting_target: 32 << 20,
            target_rtt: Some(Duration::from_millis(300)),
            produced_bytes: 900_000,
            ..flow(true)
        };
        links.on_tcp_stats(1, 0, tcp(1, 6 << 20, 900_000));
        links.evaluate(&FlowState {
            target_settling: true,
            ..waiting_for_a_far_target.clone()
        });
        assert_eq!(links.limit(), &Limit::None);
        links.on_tcp_stats(1, 0, tcp(1, 6 << 20, 1_800_000));
        links.evaluate(&waiting_for_a_far_target);
        assert!(
            matches!(links.limit(), Limit::TargetSendWindow { .. }),
            "{:?}",
            links.limit()
        );
    }

    #[test]
    fn windows_are_judged_on_the_connections_that_carried_data() {
        // Eight fixed lanes at 300 ms; near the end of a copy only two partitions are
        // left, each on its own connection, 10 MB in the period apiece: 3 MB per round
        // trip each, the source host's window, not a full link and not a fixed buffer.
        let mut links = SourceLinks::new("A", Some(8), None, Some(32 << 20));
        for lane in 0..8 {
            let bytes = if lane < 2 { 10_000_000 } else { 0 };
            links.on_tcp_stats(1, lane, tcp(300, 6 << 20, bytes));
        }
        links.evaluate(&FlowState {
            memory_budget: 256 << 20,
            partition_fetch_bytes: 16 << 20,
            ..flow(true)
        });
        assert!(
            matches!(links.limit(), Limit::SourceSendWindow { lanes: 2, .. }),
            "{:?}",
            links.limit()
        );
    }

    #[test]
    fn lanes_that_read_ahead_are_judged_with_both_of_their_fetches() {
        // 32 lanes for 8 partitions at 300 ms, 4 MiB fetches, two out per lane: 155 MB/s is
        // 1.45 MB per lane and round trip, more than a third of one fetch but far from two.
        // The link holds them back, not the fetch size (a warning to raise the budget that
        // a larger budget would not answer).
        let mut links = SourceLinks::new("A", Some(32), None, Some(32 << 20));
        for lane in 0..32 {
            links.on_tcp_stats(1, lane, tcp(300, 6 << 20, 155_000_000 / 32));
        }
        links.evaluate(&FlowState {
            memory_budget: 512 << 20,
            partition_fetch_bytes: 4 << 20,
            ..flow(true)
        });
        assert!(
            matches!(links.limit(), Limit::LinkFull { lanes: 32, .. }),
            "{:?}",
            links.limit()
        );
    }

    #[test]
    fn no_verdict_before_records_have_a_size_but_connections_still_open() {
        // Before the first copy the lag has no size in bytes. On a short link a first small
        // burst (0.4 MB/s in the period) is then no slow source broker; on a long one the
        // connections open all the same.
        let mut links = SourceLinks::new("A", None, None, Some(32 << 20));
        links.on_tcp_stats(1, 0, tcp(0, 4 << 20, 400_000));
        links.evaluate(&FlowState {
            backlog_bytes: None,
            ..flow(true)
        });
        assert_eq!(links.limit(), &Limit::None);
        links.on_tcp_stats(1, 0, tcp(0, 4 << 20, 800_000));
        links.evaluate(&flow(true));
        assert!(
            matches!(links.limit(), Limit::SourceBroker { .. }),
            "{:?}",
            links.limit()
        );
        let mut long = SourceLinks::new("A", None, None, Some(32 << 20));
        long.on_tcp_stats(1, 0, tcp(100, 4 << 20, 400_000));
        let opened = long.evaluate(&FlowState {
            backlog_bytes: None,
            ..flow(true)
        });
        assert_eq!(opened, vec![(1, 16)]);
    }

    #[test]
    fn a_little_data_waiting_is_no_backlog() {
        let rtt = Duration::from_millis(100);
        // 50 MB/s over 100 ms carries 5 MB per round trip.
        assert!(!backlogged(8_000_000, 50e6, rtt));
        assert!(backlogged(12_000_000, 50e6, rtt));
        assert!(!backlogged(1_000_000, 0.0, rtt));
        assert!(backlogged(5 << 20, 0.0, rtt));
    }

    #[test]
    fn the_busiest_broker_is_diagnosed_and_the_period_starts_afresh() {
        let mut links = SourceLinks::new("A", Some(1), Some(65536), None);
        links.on_tcp_stats(1, 0, tcp(100, 131072, 650_000));
        links.on_tcp_stats(2, 0, tcp(100, 131072, 10));
        links.evaluate(&flow(true));
        let text = links.limit().to_string();
        assert!(text.contains("A.receive.buffer.bytes=65536"), "{text}");
        links.on_held_for_memory(1);
        links.evaluate(&flow(true));
        assert!(matches!(links.limit(), Limit::MemoryBudget { .. }));
        // A new connection on lane 0 counts from zero again.
        links.on_tcp_stats(1, 0, tcp(100, 131072, 640_000));
        links.evaluate(&flow(true));
        assert!(matches!(links.limit(), Limit::ReceiveWindow { .. }));
        links.evaluate(&flow(true));
        assert_eq!(links.limit(), &Limit::Stalled { broker: 1 });
    }
}

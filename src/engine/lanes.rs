//! How many fetch connections ("lanes") a flow keeps to each source broker, and how
//! large its fetches are. One TCP connection moves at most its window per round trip
//! (4 MiB per 100 ms with Linux's default tcp_wmem on the sending host), so a long link
//! needs several connections, each with its own fetch session over its share of the
//! partitions. Pure: the driver feeds one sample per period and applies the answer.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::{
    DEFAULT_MEMORY_BUDGET_BYTES, LONG_LINK_MEMORY_BUDGET_BYTES, MAX_FETCH_CONNECTIONS_PER_BROKER,
};

/// Below this round-trip time one connection fills any link; the planner leaves it alone.
pub const LONG_LINK_RTT: Duration = Duration::from_millis(5);
pub const MAX_LANES: u16 = MAX_FETCH_CONNECTIONS_PER_BROKER;
/// New connections start slowly (a handshake and ApiVersions, then TCP slow start needs
/// eight to twelve round trips to reach a few MiB of window): a growth is judged this many
/// round trips after it, at the earliest one period after it.
pub const ROUND_TRIPS_TO_SETTLE: u32 = 16;
/// The first lane count of a long link with data waiting, before any window was
/// measured: one lane per this much round trip. With Linux's default send buffers a
/// connection carries up to 4 MiB per round trip, so this plans for ~400 MiB/s; more
/// lanes than the link needs only queue more fetches at the source broker, and every
/// answer then waits longer behind the others.
const ROUND_TRIP_PER_FIRST_LANE: Duration = Duration::from_millis(10);
/// Lanes grow beyond the first count only while each carries at least this much per
/// round trip: a connection held back by its window (half of Linux's default
/// 4 MiB send buffer ceiling, which slow start and loss keep it below). Below it, the
/// link or the source sets the pace, not the number of connections.
const WINDOW_LIMITED_BYTES: f64 = 2.0 * 1024.0 * 1024.0;
/// The largest per-partition fetch on a long link: a larger one only delays the first
/// produce of a response.
const MAX_PARTITION_FETCH_BYTES: usize = 32 * 1024 * 1024;

/// What one source broker's fetches did over one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrokerSample {
    pub rtt: Duration,
    pub bytes: u64,
    pub period: Duration,
    /// The source held more data than was fetched (some partition lags).
    pub backlog: bool,
    /// Some fetch waited for room in the memory budget.
    pub held_for_memory: bool,
    pub partitions: usize,
    /// Bytes the flow may keep in flight on the link: the part of the memory budget that
    /// fetches may hold.
    pub in_flight_goal: usize,
}

impl BrokerSample {
    pub fn rate(&self) -> f64 {
        self.bytes as f64 / self.period.as_secs_f64().max(1e-3)
    }
}

/// Periods of `period` that new connections across a round trip of `rtt` take to
/// settle (`ROUND_TRIPS_TO_SETTLE` round trips), at least one.
pub fn periods_to_settle(rtt: Duration, period: Duration) -> u32 {
    let settle = ROUND_TRIPS_TO_SETTLE as f64 * rtt.as_secs_f64();
    ((settle / period.as_secs_f64().max(1e-3)).round() as u32).max(1)
}

/// The lane count of one source broker: fixed by configuration, or, while the link is
/// long, the source has a backlog and the budget has room, first one lane per 10 ms of
/// round trip (all at once, so that they ramp up together rather than one after the
/// other), then, while each lane's window holds it back, as many as it takes for the
/// measured window of one connection times the lanes to reach the in-flight goal, up to
/// the ceiling (lanes beyond the partition count read partitions ahead of themselves).
/// Lanes are never taken back: a rate measured while new connections are in slow start
/// (seconds at 300 ms) cannot judge them.
#[derive(Debug, Clone, PartialEq)]
pub struct LanePlanner {
    lanes: u16,
    fixed: bool,
    /// Periods since the last growth, while it is still settling.
    last_growth: Option<u32>,
    /// The first count of a long link was taken.
    sized: bool,
}

impl LanePlanner {
    /// `configured`: `strait.fetch.connections.per.broker`, None for automatic.
    pub fn new(configured: Option<u16>) -> Self {
        LanePlanner {
            lanes: configured.unwrap_or(1).clamp(1, MAX_LANES),
            fixed: configured.is_some(),
            last_growth: None,
            sized: false,
        }
    }

    pub fn lanes(&self) -> u16 {
        self.lanes
    }

    /// True when the count cannot grow any more: configured, or at the ceiling.
    pub fn at_limit(&self) -> bool {
        self.fixed || self.lanes >= MAX_LANES
    }

    /// True while a growth is still being judged: new connections are in slow start,
    /// so the period says little about the link.
    pub fn settling(&self) -> bool {
        self.last_growth.is_some()
    }

    /// Takes one period's measurements; returns the new lane count when it changes.
    pub fn observe(&mut self, sample: &BrokerSample) -> Option<u16> {
        if self.fixed {
            return None;
        }
        let rate = sample.rate();
        if let Some(periods) = self.last_growth {
            if periods + 1 < periods_to_settle(sample.rtt, sample.period) {
                self.last_growth = Some(periods + 1);
                return None;
            }
            self.last_growth = None;
        }
        let ceiling = MAX_LANES;
        if sample.rtt < LONG_LINK_RTT
            || sample.partitions == 0
            || !sample.backlog
            || sample.held_for_memory
            || self.lanes >= ceiling
        {
            return None;
        }
        let wanted = if std::mem::replace(&mut self.sized, true) {
            // Bytes one connection carried per round trip: what its window allowed.
            let window = rate * sample.rtt.as_secs_f64() / f64::from(self.lanes);
            if window < WINDOW_LIMITED_BYTES {
                return None;
            }
            (sample.in_flight_goal as f64 / window).ceil()
        } else {
            f64::from(first_lanes(sample.rtt, sample.partitions))
        };
        let next = (wanted.min(f64::from(ceiling)) as u16).max(self.lanes);
        if next == self.lanes {
            return None;
        }
        self.last_growth = Some(0);
        self.lanes = next;
        Some(next)
    }
}

/// The first lane count of a long link: one per 10 ms of round trip; beyond the partition
/// count, a multiple of it, so that each partition is read ahead on as many lanes.
fn first_lanes(rtt: Duration, partitions: usize) -> u16 {
    let by_rtt = rtt
        .as_nanos()
        .div_ceil(ROUND_TRIP_PER_FIRST_LANE.as_nanos())
        .min(u128::from(MAX_LANES)) as usize;
    let lanes = if by_rtt > partitions && partitions > 0 {
        by_rtt.next_multiple_of(partitions)
    } else {
        by_rtt
    };
    lanes.clamp(1, usize::from(MAX_LANES)) as u16
}

/// Fetches in flight on one lane of a broker with more lanes than partitions. A broker
/// serves one request per connection at a time and reads the next once the previous answer
/// is queued to its socket, so a second fetch waiting there removes the round trip the
/// connection would otherwise idle between two; such lanes carry a partition or two, so
/// they fetch without sessions, which would need one answer before the next request.
pub const FETCHES_PER_READ_AHEAD_LANE: usize = 2;

/// Whether a broker with `lanes` lanes and `partitions` live partitions reads them ahead.
pub fn reads_ahead(lanes: u16, partitions: usize) -> bool {
    usize::from(lanes) > partitions
}

/// Fetches one lane of such a broker keeps in flight.
pub fn fetches_per_lane(lanes: u16, partitions: usize) -> usize {
    if reads_ahead(lanes, partitions) {
        FETCHES_PER_READ_AHEAD_LANE
    } else {
        1
    }
}

/// Partition fetches a broker's lanes may have out at once: one per partition, or two per
/// lane when they read ahead.
pub fn partition_fetches(lanes: u16, partitions: usize) -> usize {
    if reads_ahead(lanes, partitions) {
        FETCHES_PER_READ_AHEAD_LANE * usize::from(lanes)
    } else {
        partitions
    }
}

/// Whether a fetch request for partitions at these places is worth sending on a lane
/// now: `waits_for_target` when a partition of the lane has data to read but holds as
/// much as it may until the target acknowledges a produce on its way; `behind`, for each
/// partition the request would carry, whether it has data to read. A request of
/// partitions that are all at their log's end waits at the broker for new data
/// (fetch.max.wait.ms) and holds the connection that long, so the partition with data
/// would wait too, once the target had taken its data: a copy's last partitions then
/// crawl at one fetch per wait. The request goes out with that partition instead.
pub fn worth_a_connection(waits_for_target: bool, mut behind: impl Iterator<Item = bool>) -> bool {
    !waits_for_target || behind.any(|b| b)
}

/// The lanes one partition is fetched on: `first`, then every `step`-th up to `lanes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneSet {
    first: u16,
    step: u16,
    lanes: u16,
}

impl LaneSet {
    pub const NONE: LaneSet = LaneSet {
        first: 0,
        step: 1,
        lanes: 0,
    };

    pub fn iter(self) -> impl Iterator<Item = u16> {
        (self.first..self.lanes).step_by(usize::from(self.step))
    }

    pub fn len(self) -> usize {
        self.iter().count()
    }
}

/// The lanes of the `ordinal`-th of the `partitions` partitions (in a stable order) that
/// a broker leads: one, round robin, while partitions outnumber lanes; with more lanes
/// than partitions each partition reads ahead of itself on every lane congruent to its
/// ordinal, so that few partitions still fill many connections.
pub fn lanes_of(ordinal: usize, partitions: usize, lanes: u16) -> LaneSet {
    let lanes = lanes.max(1);
    if !reads_ahead(lanes, partitions) {
        let lane = (ordinal % usize::from(lanes)) as u16;
        return LaneSet {
            first: lane,
            step: 1,
            lanes: lane + 1,
        };
    }
    LaneSet {
        first: ordinal as u16,
        step: partitions.max(1) as u16,
        lanes,
    }
}

/// One partition of a flow as lane assignment sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanePartition {
    /// The source broker leading it while it is live; None otherwise (no lanes).
    pub leader: Option<i32>,
    /// It has data left to read.
    pub behind: bool,
}

/// The lanes of every partition of a flow, and how many live partitions each source
/// broker leads. Each broker's partitions spread over its lanes in the flow's stable
/// order, so that a partition stays in the same fetch sessions while the lane count
/// holds. With more lanes than partitions, the lanes go to the partitions with data left
/// to read: near the end of a copy the last partitions get them all, while those at
/// their log's end keep their own lanes to long-poll on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneAssignment {
    lanes: Vec<LaneSet>,
    /// Live partitions per source broker.
    led: HashMap<i32, usize>,
}

impl LaneAssignment {
    /// `partitions` in the flow's stable order; `lanes`: a broker's lane count.
    pub fn new(partitions: &[LanePartition], lanes: impl Fn(i32) -> u16) -> Self {
        let mut led: HashMap<i32, (usize, usize)> = HashMap::new();
        for partition in partitions {
            if let Some(leader) = partition.leader {
                let (all, behind) = led.entry(leader).or_default();
                *all += 1;
                *behind += usize::from(partition.behind);
            }
        }
        let mut ordinals: HashMap<i32, (usize, usize)> = HashMap::new();
        let lanes = partitions
            .iter()
            .map(|partition| {
                let Some(leader) = partition.leader else {
                    return LaneSet::NONE;
                };
                let count = lanes(leader);
                let (all, behind) = led[&leader];
                let (ordinal, behind_ordinal) = ordinals.entry(leader).or_default();
                *ordinal += 1;
                if reads_ahead(count, all) && partition.behind {
                    *behind_ordinal += 1;
                    lanes_of(*behind_ordinal - 1, behind, count)
                } else {
                    lanes_of(*ordinal - 1, all, count)
                }
            })
            .collect();
        let led = led
            .into_iter()
            .map(|(broker, (all, _))| (broker, all))
            .collect();
        LaneAssignment { lanes, led }
    }

    /// The lanes of the `index`-th partition.
    pub fn of(&self, index: usize) -> LaneSet {
        self.lanes.get(index).copied().unwrap_or(LaneSet::NONE)
    }

    /// Live partitions `leader` leads.
    pub fn partitions_led(&self, leader: i32) -> usize {
        self.led.get(&leader).copied().unwrap_or(0)
    }
}

/// The flow's memory budget: as configured, else chosen by the link, larger once the
/// source or the target is known to be a long link away (`rtt`: the longer path's).
pub fn memory_budget(configured: Option<usize>, rtt: Option<Duration>) -> usize {
    match (configured, rtt) {
        (Some(bytes), _) => bytes,
        (None, Some(rtt)) if rtt >= LONG_LINK_RTT => LONG_LINK_MEMORY_BUDGET_BYTES as usize,
        (None, _) => DEFAULT_MEMORY_BUDGET_BYTES as usize,
    }
}

/// Per-partition fetch size and the most a partition may hold fetched but not yet
/// acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSizing {
    pub partition_max_bytes: usize,
    pub partition_buffer_cap: usize,
}

/// On a short link the configured per-partition size; on a long one each fetch of a
/// partition gets up to half its share of the memory budget, so that the data in flight
/// can cover the bandwidth-delay product, and never less than configured.
/// `partition_fetches`: how many partition fetches the flow may have out at once, one per
/// partition and one more per lane that reads a partition ahead; `partitions`: the live
/// partitions among them.
///
/// A partition stops fetching while it holds `partition_buffer_cap` bytes the target has
/// not acknowledged. Near the source two fetches are enough: the next answer arrives
/// within a millisecond of asking. Across a long link an answer takes a round trip and
/// its transfer (a second and more at 300 ms), so a partition that waits for its buffer
/// to drain below two fetches before asking again leaves its connections idle that long,
/// and Linux's tcp_slow_start_after_idle then shrinks their windows on the source host
/// too: there it may hold its share of half the budget. The same share lets a partition
/// keep its part of the bandwidth-delay product unacknowledged when the produce requests
/// cross the long link (`target_rtt`, a mirror beside the source): near the source its
/// fetches stay the configured size.
pub fn fetch_sizing(
    source_rtt: Option<Duration>,
    target_rtt: Option<Duration>,
    memory_budget: usize,
    partition_fetches: usize,
    partitions: usize,
    configured_partition_bytes: usize,
) -> FetchSizing {
    let long = |rtt: Option<Duration>| rtt.is_some_and(|rtt| rtt >= LONG_LINK_RTT);
    let partition_max_bytes = if long(source_rtt) {
        (memory_budget / (2 * partition_fetches.max(1)))
            .min(MAX_PARTITION_FETCH_BYTES)
            .max(configured_partition_bytes)
    } else {
        configured_partition_bytes
    };
    let partition_buffer_cap = if long(source_rtt) || long(target_rtt) {
        (memory_budget / 2 / partitions.max(1)).max(2 * partition_max_bytes)
    } else {
        2 * partition_max_bytes
    };
    FetchSizing {
        partition_max_bytes,
        partition_buffer_cap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn sample(rtt_ms: u64, megabytes: u64) -> BrokerSample {
        BrokerSample {
            rtt: Duration::from_millis(rtt_ms),
            bytes: megabytes * 1_000_000,
            period: Duration::from_secs(1),
            backlog: true,
            held_for_memory: false,
            partitions: 8,
            in_flight_goal: 32 * MIB,
        }
    }

    #[test]
    fn a_long_link_first_gets_a_lane_per_10_ms_of_round_trip() {
        let first = |rtt_ms: u64, partitions: usize| {
            let mut planner = LanePlanner::new(None);
            let lanes = planner.observe(&BrokerSample {
                partitions,
                ..sample(rtt_ms, 0)
            });
            assert!(planner.settling());
            lanes
        };
        // Ten lanes at 100 ms, rounded to two per partition so each reads ahead alike.
        assert_eq!(first(100, 8), Some(16));
        assert_eq!(first(100, 3), Some(12));
        assert_eq!(
            first(50, 8),
            Some(5),
            "fewer than the partitions: no read-ahead"
        );
        assert_eq!(first(100, 64), Some(10));
        assert_eq!(first(300, 8), Some(MAX_LANES));
        assert_eq!(
            first(300, 7),
            Some(MAX_LANES),
            "the ceiling before the multiple"
        );
        // What already arrived does not change the first count: a first answer in slow
        // start says nothing about the windows. (80 MB/s on the one lane would be 8 MB
        // per round trip, five lanes for the 32 MiB goal.)
        let mut early = LanePlanner::new(None);
        assert_eq!(early.observe(&sample(100, 80)), Some(16));
    }

    #[test]
    fn lanes_grow_further_only_while_their_windows_hold_them_back() {
        let mut planner = LanePlanner::new(None);
        assert_eq!(planner.observe(&sample(100, 0)), Some(16));
        // Sixteen round trips of 100 ms: judged in the second period after the growth.
        assert_eq!(planner.observe(&sample(100, 60)), None);
        assert!(planner.settling());
        // 120 MB/s over 16 lanes is 0.75 MB per lane and round trip: the link, not the
        // windows, sets the pace.
        assert_eq!(planner.observe(&sample(100, 120)), None);
        assert!(!planner.settling());
        assert_eq!(planner.lanes(), 16);
        // 400 MB/s is 2.5 MB per lane: windows are the limit; a 64 MiB goal needs 27.
        let window_bound = BrokerSample {
            in_flight_goal: 64 * MIB,
            ..sample(100, 400)
        };
        assert_eq!(planner.observe(&window_bound), Some(27));
        assert!(!planner.at_limit());
        assert_eq!(planner.observe(&sample(100, 90)), None);
        // 27 lanes at 4 MB each would want 9 for 32 MiB: never fewer than there are.
        assert_eq!(planner.observe(&sample(100, 1080)), None);
        let huge_goal = BrokerSample {
            in_flight_goal: 512 * MIB,
            ..sample(100, 1080)
        };
        assert_eq!(planner.observe(&huge_goal), Some(MAX_LANES));
        assert!(planner.at_limit());
    }

    #[test]
    fn a_growth_on_a_longer_link_is_judged_after_more_periods() {
        let mut planner = LanePlanner::new(None);
        let long_goal = BrokerSample {
            partitions: 64,
            in_flight_goal: 256 * MIB,
            ..sample(200, 0)
        };
        assert_eq!(planner.observe(&long_goal), Some(20));
        // Sixteen round trips of 200 ms: judged in the third period after the growth.
        for _ in 0..2 {
            assert_eq!(
                planner.observe(&BrokerSample {
                    bytes: 10_000_000,
                    ..long_goal
                }),
                None
            );
            assert!(planner.settling());
        }
        // Twenty lanes carry 3 MB each per round trip: window-bound, 90 wanted.
        assert_eq!(
            planner.observe(&BrokerSample {
                bytes: 300_000_000,
                ..long_goal
            }),
            Some(MAX_LANES)
        );
    }

    #[test]
    fn nothing_waiting_or_no_partitions_keep_one_lane() {
        let mut none = LanePlanner::new(None);
        let no_partitions = BrokerSample {
            partitions: 0,
            ..sample(100, 0)
        };
        assert_eq!(none.observe(&no_partitions), None);
        // Near, or with nothing waiting, nothing arrived means nothing to do.
        let mut near = LanePlanner::new(None);
        assert_eq!(near.observe(&sample(1, 0)), None);
        let idle = BrokerSample {
            backlog: false,
            ..sample(300, 0)
        };
        assert_eq!(near.observe(&idle), None);
        assert_eq!(near.lanes(), 1);
    }

    #[test]
    fn short_links_idle_sources_and_a_full_budget_keep_one_lane() {
        let mut planner = LanePlanner::new(None);
        assert_eq!(planner.observe(&sample(1, 500)), None);
        let idle = BrokerSample {
            backlog: false,
            ..sample(100, 1)
        };
        assert_eq!(planner.observe(&idle), None);
        let budget_bound = BrokerSample {
            held_for_memory: true,
            ..sample(100, 60)
        };
        assert_eq!(planner.observe(&budget_bound), None);
        assert_eq!(planner.lanes(), 1);
        assert!(!planner.at_limit());
    }

    #[test]
    fn a_configured_count_is_kept_and_bounded() {
        let mut planner = LanePlanner::new(Some(3));
        assert_eq!(planner.observe(&sample(300, 10)), None);
        assert_eq!(planner.lanes(), 3);
        assert_eq!(LanePlanner::new(Some(500)).lanes(), MAX_LANES);
    }

    #[test]
    fn a_request_of_caught_up_partitions_waits_while_one_with_data_waits_for_the_target() {
        // All caught up, one with data waiting for the target: it would hold the lane.
        assert!(!worth_a_connection(true, [false, false].into_iter()));
        assert!(!worth_a_connection(true, std::iter::empty()));
        // One partition of the request has data: the answer comes at once.
        assert!(worth_a_connection(true, [false, true].into_iter()));
        // Nobody waits for the target: an idle lane long-polls for new data, as it should.
        assert!(worth_a_connection(false, [false, false].into_iter()));
        assert!(worth_a_connection(false, [true].into_iter()));
    }

    #[test]
    fn partitions_spread_round_robin_over_the_lanes() {
        let lanes: Vec<Vec<u16>> = (0..6)
            .map(|ordinal| lanes_of(ordinal, 6, 4).iter().collect())
            .collect();
        assert_eq!(lanes, [[0], [1], [2], [3], [0], [1]]);
        assert_eq!(lanes_of(5, 6, 0).iter().collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn lanes_go_to_the_partitions_with_data_left_to_read() {
        let live = |leader: i32, behind: bool| LanePartition {
            leader: Some(leader),
            behind,
        };
        let gone = LanePartition {
            leader: None,
            behind: true,
        };
        let lanes = |leader: i32| if leader == 1 { 8 } else { 2 };
        // Broker 1: four partitions on eight lanes, two of them still reading; broker 2:
        // three partitions on two lanes (no read-ahead), round robin whatever is left.
        let partitions = [
            live(1, false),
            live(1, true),
            gone,
            live(2, true),
            live(1, false),
            live(2, false),
            live(1, true),
            live(2, true),
        ];
        let assignment = LaneAssignment::new(&partitions, lanes);
        let of = |index: usize| assignment.of(index).iter().collect::<Vec<u16>>();
        assert_eq!(
            of(1),
            [0, 2, 4, 6],
            "the first of broker 1's two still reading"
        );
        assert_eq!(of(6), [1, 3, 5, 7], "the second");
        assert_eq!(
            of(0),
            [0, 4],
            "at its log's end: its own lanes, to long-poll on"
        );
        assert_eq!(of(4), [2, 6]);
        assert!(of(2).is_empty(), "not live: no lanes");
        assert_eq!((of(3), of(5), of(7)), (vec![0], vec![1], vec![0]));
        assert!(assignment.of(99).iter().next().is_none());
        assert_eq!(assignment.partitions_led(1), 4);
        assert_eq!(assignment.partitions_led(2), 3);
        assert_eq!(assignment.partitions_led(3), 0);

        // Once all of broker 1's partitions read again, each has its own two lanes.
        let all_reading = partitions.map(|p| LanePartition { behind: true, ..p });
        let assignment = LaneAssignment::new(&all_reading, lanes);
        assert_eq!(assignment.of(4).iter().collect::<Vec<u16>>(), [2, 6]);
    }

    #[test]
    fn with_more_lanes_than_partitions_each_partition_gets_several() {
        let lanes: Vec<Vec<u16>> = (0..3)
            .map(|ordinal| lanes_of(ordinal, 3, 8).iter().collect())
            .collect();
        assert_eq!(lanes, [vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]);
        assert_eq!(lanes_of(0, 1, 4).iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(lanes_of(2, 3, 8).len(), 2);
        assert_eq!(LaneSet::NONE.len(), 0);
        assert_eq!(partition_fetches(8, 3), 16);
        assert_eq!(partition_fetches(2, 3), 3);
        assert_eq!((fetches_per_lane(8, 3), fetches_per_lane(3, 3)), (2, 1));
    }

    #[test]
    fn an_unset_budget_grows_on_a_long_link_and_a_set_one_is_kept() {
        let near = Some(Duration::from_micros(300));
        let far = Some(Duration::from_millis(100));
        assert_eq!(memory_budget(None, None), 64 * MIB);
        assert_eq!(memory_budget(None, near), 64 * MIB);
        assert_eq!(memory_budget(None, far), 512 * MIB);
        assert_eq!(memory_budget(Some(32 * MIB), far), 32 * MIB);
        assert_eq!(memory_budget(Some(512 * MIB), near), 512 * MIB);
    }

    #[test]
    fn fetches_grow_with_the_budget_on_long_links_only() {
        let short = fetch_sizing(Some(Duration::from_micros(200)), None, 64 * MIB, 8, 8, MIB);
        assert_eq!(short.partition_max_bytes, MIB);
        assert_eq!(short.partition_buffer_cap, 2 * MIB);
        assert_eq!(
            fetch_sizing(None, None, 64 * MIB, 8, 8, MIB).partition_max_bytes,
            MIB
        );
        let long = fetch_sizing(Some(Duration::from_millis(100)), None, 64 * MIB, 8, 8, MIB);
        assert_eq!(long.partition_max_bytes, 4 * MIB);
        assert_eq!(long.partition_buffer_cap, 8 * MIB);
        // Many partitions: never below the configured size.
        let many = fetch_sizing(
            Some(Duration::from_millis(100)),
            None,
            64 * MIB,
            1000,
            1000,
            MIB,
        );
        assert_eq!(many.partition_max_bytes, MIB);
        assert_eq!(many.partition_buffer_cap, 2 * MIB);
        let huge = fetch_sizing(
            Some(Duration::from_millis(100)),
            None,
            4096 * MIB,
            1,
            1,
            MIB,
        );
        assert_eq!(huge.partition_max_bytes, MAX_PARTITION_FETCH_BYTES);
    }

    #[test]
    fn across_a_long_link_a_partition_keeps_fetching_while_its_share_of_half_the_budget_drains() {
        // 300 ms, 8 partitions read ahead on 32 lanes: 4 MiB fetches. Near the source a
        // partition holding two of them would stop; across the link it asks on until it
        // holds a sixteenth of the budget, so its next answers are on their way while
        // the target takes what it has.
        let far = fetch_sizing(
            Some(Duration::from_millis(300)),
            None,
            512 * MIB,
            64,
            8,
            MIB,
        );
        assert_eq!(far.partition_max_bytes, 4 * MIB);
        assert_eq!(far.partition_buffer_cap, 32 * MIB);
        let near = fetch_sizing(
            Some(Duration::from_micros(300)),
            None,
            512 * MIB,
            64,
            8,
            MIB,
        );
        assert_eq!(near.partition_buffer_cap, 2 * MIB);
    }

    #[test]
    fn beside_the_source_a_partition_holds_its_share_for_a_long_path_to_the_target() {
        // The source is near, produce requests cross 300 ms: fetches stay the configured
        // size, and a partition may hold a sixteenth of the budget unacknowledged.
        let beside_source = fetch_sizing(
            Some(Duration::from_micros(300)),
            Some(Duration::from_millis(300)),
            512 * MIB,
            8,
            8,
            MIB,
        );
        assert_eq!(beside_source.partition_max_bytes, MIB);
        assert_eq!(beside_source.partition_buffer_cap, 32 * MIB);
        let both_near = fetch_sizing(
            Some(Duration::from_micros(300)),
            Some(Duration::from_micros(300)),
            512 * MIB,
            8,
            8,
            MIB,
        );
        assert_eq!(both_near.partition_buffer_cap, 2 * MIB);
    }
}

//! The path to the target as strait's produce connections measure it. Pure: the flow
//! hands it the kernel's figures of those connections each period.
//!
//! Beside the target (the usual place) produce requests cross a LAN, and two connections
//! per broker carry all a broker takes. Beside the source they cross the long link: a
//! connection keeps at most its send buffer unacknowledged per round trip (about 3 MiB
//! with Linux's default net.ipv4.tcp_wmem, 10 MB/s at 300 ms), and a partition's batches
//! keep to one connection, in the order of the idempotent producer's sequence numbers.
//! So a long path gets one connection per partition, and each partition may hold its
//! share of the bandwidth-delay product unacknowledged.

use std::time::Duration;

use crate::config::DEFAULT_PRODUCE_CONNECTIONS_PER_BROKER;
use crate::wire::TcpStats;

use super::lanes::{LONG_LINK_RTT, ROUND_TRIPS_TO_SETTLE};
use super::partition::MAX_UNSETTLED_BATCHES;

/// The most produce connections to one target broker across a long path: as many as
/// fetch connections to one source broker (see `MAX_FETCH_CONNECTIONS_PER_BROKER`).
pub const MAX_PRODUCE_CONNECTIONS_ACROSS_LONG_PATH: u16 = 32;

/// What the open produce connections measured in the latest period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetPath {
    rtt: Option<Duration>,
    send_buffer: usize,
    connections: u16,
    /// How long new connections across a long path may still be in slow start.
    settling_left: Duration,
    /// The most connections seen open at once: only more than ever before are new ones.
    /// A count cannot tell a connection reopened in place of a closed one from one seen
    /// before, and holding verdicts back for every reopening would hide a real limit for
    /// 16 round trips each time.
    most_connections: u16,
}

impl TargetPath {
    /// The kernel's figures of each open produce connection. The path's round trip is the
    /// shortest any of them saw: queueing behind a full link only lengthens the others.
    /// Without open connections the round trip measured before stays. `period`: the time
    /// since the previous observation.
    pub fn observe(&mut self, connections: impl IntoIterator<Item = TcpStats>, period: Duration) {
        let mut rtt: Option<Duration> = None;
        let mut send_buffer = 0;
        let mut count: u16 = 0;
        for stats in connections {
            let round_trip = stats.round_trip();
            if !round_trip.is_zero() {
                rtt = Some(rtt.map_or(round_trip, |shortest| shortest.min(round_trip)));
            }
            send_buffer = send_buffer.max(stats.send_buffer);
            count = count.saturating_add(1);
        }
        self.rtt = rtt.or(self.rtt);
        self.send_buffer = send_buffer;
        let opened = count > self.most_connections;
        self.most_connections = self.most_connections.max(count);
        self.connections = count;
        self.settling_left = match self.rtt {
            Some(rtt) if opened && self.is_long() => rtt * ROUND_TRIPS_TO_SETTLE,
            _ => self.settling_left.saturating_sub(period),
        };
    }

    /// True while connections opened across a long path may still be in slow start
    /// (`ROUND_TRIPS_TO_SETTLE` round trips, 4.8 s at 300 ms): their rate then says
    /// nothing about the send window (at 300 ms the first period's verdict was "0.9 MB/s
    /// over 8 produce connections, each carrying 31.2 KiB per round trip").
    pub fn settling(&self) -> bool {
        !self.settling_left.is_zero()
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Produce requests cross a long link (a mirror beside the source).
    pub fn is_long(&self) -> bool {
        self.rtt.is_some_and(|rtt| rtt >= LONG_LINK_RTT)
    }

    /// SO_SNDBUF of the produce connections as granted (largest), autotuned or fixed.
    pub fn send_buffer(&self) -> usize {
        self.send_buffer
    }

    /// Produce connections open at the end of the period, over all target brokers.
    pub fn connections(&self) -> u16 {
        self.connections
    }
}

/// Produce connections per target broker: as configured; otherwise the default, and
/// across a long path one per partition the broker leads, up to
/// `MAX_PRODUCE_CONNECTIONS_ACROSS_LONG_PATH`.
pub fn produce_connections(configured: Option<u16>, long_path: bool, partitions_led: usize) -> u16 {
    match configured {
        Some(count) => count.max(1),
        None if long_path => u16::try_from(partitions_led).unwrap_or(u16::MAX).clamp(
            DEFAULT_PRODUCE_CONNECTIONS_PER_BROKER,
            MAX_PRODUCE_CONNECTIONS_ACROSS_LONG_PATH,
        ),
        None => DEFAULT_PRODUCE_CONNECTIONS_PER_BROKER,
    }
}

/// The most one produce connection to a broker leading `partitions_led` of the flow's
/// partitions may have on its way: its share of them, `MAX_UNSETTLED_BATCHES` batches
/// each (the idempotent producer's limit), of up to `batch_limit` bytes.
pub fn in_flight_cap(partitions_led: usize, connections: u16, batch_limit: usize) -> usize {
    partitions_led
        .div_ceil(usize::from(connections.max(1)))
        .max(1)
        * MAX_UNSETTLED_BATCHES
        * batch_limit
}

/// The produce connection a partition sends on now: `wanted` (its place among the
/// broker's partitions modulo the connections wanted) once none of its batches is on its
/// way on `current`, so that they arrive in sequence order; until then None, and it
/// sends nothing more (under a steady backlog it would otherwise never be idle: at 100 ms
/// every partition stayed on the first two connections).
pub fn produce_lane(current: u16, wanted: u16, in_flight: usize) -> Option<u16> {
    if current == wanted || in_flight == 0 {
        Some(wanted)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn stats(rtt_ms: u64, min_rtt_ms: u64, send_buffer: usize) -> TcpStats {
        TcpStats {
            min_rtt: Duration::from_millis(min_rtt_ms),
            rtt: Duration::from_millis(rtt_ms),
            receive_rtt: Duration::ZERO,
            receive_buffer: 131_072,
            send_buffer,
            bytes_received: 0,
            retransmits: 0,
        }
    }

    #[test]
    fn the_path_takes_the_shortest_round_trip_and_the_largest_send_buffer() {
        let mut path = TargetPath::default();
        assert_eq!(path.rtt(), None);
        assert!(!path.is_long());
        path.observe([stats(420, 301, 4 << 20), stats(350, 300, 2 << 20)], SECOND);
        assert_eq!(path.rtt(), Some(Duration::from_millis(300)));
        assert_eq!(path.send_buffer(), 4 << 20);
        assert_eq!(path.connections(), 2);
        assert!(path.is_long());
    }

    #[test]
    fn a_period_without_connections_keeps_the_round_trip_measured_before() {
        let mut path = TargetPath::default();
        path.observe([stats(2, 1, 1 << 20)], SECOND);
        assert!(!path.is_long());
        path.observe([], SECOND);
        assert_eq!(path.rtt(), Some(Duration::from_millis(1)));
        assert_eq!(path.connections(), 0);
        // Unmeasured connections (round trips of 0) tell nothing about the path.
        path.observe([stats(0, 0, 1 << 20)], SECOND);
        assert_eq!(path.rtt(), Some(Duration::from_millis(1)));
    }

    #[test]
    fn new_connections_across_a_long_path_settle_for_sixteen_round_trips() {
        let mut path = TargetPath::default();
        path.observe([stats(1, 1, 1 << 20)], SECOND);
        assert!(!path.settling(), "near: connections are up at once");
        let long = |count| vec![stats(300, 300, 4 << 20); count];
        path.observe(long(2), SECOND);
        assert!(
            path.settling(),
            "the path turned out long with new connections"
        );
        for _ in 0..4 {
            path.observe(long(2), SECOND);
            assert!(path.settling());
        }
        path.observe(long(2), SECOND);
        assert!(!path.settling(), "4.8 s later");
        path.observe(long(8), SECOND);
        assert!(path.settling(), "six more opened");
        path.observe(long(7), Duration::from_secs(5));
        assert!(!path.settling(), "one closed is no new one");
        path.observe(long(8), SECOND);
        assert!(
            !path.settling(),
            "one counted again after a period out of sight is no new one"
        );
    }

    #[test]
    fn a_connection_may_have_five_batches_of_each_of_its_partitions_on_their_way() {
        const MIB: usize = 1 << 20;
        assert_eq!(in_flight_cap(8, 8, MIB), 5 * MIB);
        assert_eq!(in_flight_cap(8, 2, MIB), 20 * MIB);
        assert_eq!(in_flight_cap(9, 8, MIB), 10 * MIB, "one connection has two");
        assert_eq!(in_flight_cap(0, 0, MIB), 5 * MIB);
    }

    #[test]
    fn a_partition_moves_to_its_new_connection_only_once_its_batches_are_answered() {
        assert_eq!(produce_lane(1, 1, 5), Some(1));
        assert_eq!(produce_lane(1, 5, 3), None, "drains first");
        assert_eq!(produce_lane(1, 5, 0), Some(5));
    }

    #[test]
    fn a_long_path_gets_a_connection_per_partition_within_bounds() {
        assert_eq!(produce_connections(None, false, 8), 2);
        assert_eq!(produce_connections(None, true, 8), 8);
        assert_eq!(produce_connections(None, true, 1), 2);
        assert_eq!(produce_connections(None, true, 500), 32);
        // What the operator set holds on any path.
        assert_eq!(produce_connections(Some(3), true, 8), 3);
        assert_eq!(produce_connections(Some(3), false, 8), 3);
    }
}

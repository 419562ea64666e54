//! What limits a flow's throughput, told with the setting that lifts it. Pure: the
//! driver measures (TCP_INFO, bytes per period, memory use) and prints the verdict in
//! the status line and the log.

use std::fmt;
use std::time::{Duration, Instant};

use super::lanes::LONG_LINK_RTT;
use super::stats::human_bytes;

/// A fixed socket buffer of Kafka's defaults (100-128 KiB, doubled by Linux) moves at most
/// about this much per round trip.
const SMALL_FIXED_BUFFER_WINDOW: f64 = 512.0 * 1024.0;
/// A sender with Linux's default net.ipv4.tcp_wmem (4 MiB at most) keeps 2.5-3 MiB in
/// flight per connection (measured across the testbed's emulated WAN); connections that
/// all carry less than this per round trip are not held back by their windows.
const DEFAULT_SEND_WINDOW_FLOOR: f64 = 2.0 * 1024.0 * 1024.0;
/// Connections few enough that a small window on each cannot be their share of a link.
const FEW_LANES: u16 = 4;
/// A period in which partitions with data waited this share of the time for the target
/// to take what they hold (full buffers, a produce on its way) was set by the target:
/// those partitions do not fetch, so the link's figures then only echo its pace. Less
/// than always, because answers read ahead arrive in bursts that fill a buffer at once
/// and leave it empty a moment later.
const TARGET_WAIT_SHARE: f64 = 0.5;
/// A produce connection carrying at least half its send buffer per round trip is held by
/// it (the reciprocal).
const SEND_BUFFER_FULL: f64 = 2.0;
/// A produce connection carrying at least two thirds of what its partitions may have on
/// their way per round trip is held by that (the reciprocal).
const BATCHES_FULL: f64 = 1.5;

/// One period of a flow, as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub source_alias: String,
    /// The source broker carrying the most data, and its measurements.
    pub source_broker: i32,
    pub rtt: Duration,
    /// Bytes per second fetched from that broker.
    pub rate: f64,
    pub lanes: u16,
    pub lanes_at_limit: bool,
    /// The most one connection's fetches in flight ask for: its partitions' fetch sizes
    /// (which follow the memory budget) in one session fetch, or two fetches on a lane
    /// that reads ahead.
    pub fetch_bytes_per_lane: usize,
    /// SO_RCVBUF of its fetch connections as granted (largest over the lanes).
    pub receive_buffer: usize,
    /// `<alias>.receive.buffer.bytes` when set (autotuning is then off).
    pub receive_buffer_fixed: Option<usize>,
    /// net.ipv4.tcp_rmem's maximum on this host, when it could be read.
    pub autotune_receive_max: Option<usize>,
    /// Some partition lags: the source has more than was copied.
    pub backlog: bool,
    /// The source has more than this flow fetched and holds: false when all it lags by
    /// waits here for the target (the end of a copy across a long link to the target),
    /// and then the source's pace says nothing.
    pub source_backlog: bool,
    /// Some fetch waited for room in the memory budget.
    pub held_for_memory: bool,
    /// Fetched bytes waiting for the target's acknowledgement, at the end of the period.
    pub awaiting_target: usize,
    /// The share of the period in which a partition with data to read did not fetch
    /// because the target had not yet taken what it held.
    pub target_wait_share: f64,
    pub memory_budget: usize,
    pub target_broker: Option<i32>,
    /// Produce connections per target broker.
    pub produce_connections: u16,
    /// The round trip to the target as its produce connections measured it.
    pub target_rtt: Option<Duration>,
    /// Bytes per second the target acknowledged.
    pub produce_rate: f64,
    /// SO_SNDBUF of the produce connections as granted (largest).
    pub target_send_buffer: usize,
    /// The target topic's batch limit (max.message.bytes; the largest over the flow's).
    pub target_batch_limit: usize,
    /// The most one produce connection may have on its way: its partitions'
    /// `MAX_UNSETTLED_BATCHES` batches each, of up to `target_batch_limit`.
    pub target_in_flight_cap: usize,
}

impl Observation {
    /// Bytes one connection moved per round trip: what its window allowed.
    fn window_per_lane(&self) -> f64 {
        self.rate * self.rtt.as_secs_f64() / f64::from(self.lanes.max(1))
    }
}

/// What holds a flow back.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    /// No backlog: the flow keeps up with the source.
    None,
    ReceiveWindow {
        alias: String,
        rtt: Duration,
        rate: f64,
        window: f64,
        fixed: Option<usize>,
    },
    SourceSendBuffer {
        broker: i32,
        rtt: Duration,
        window: f64,
    },
    SourceSendWindow {
        broker: i32,
        rtt: Duration,
        rate: f64,
        window: f64,
        lanes: u16,
    },
    /// Every connection is in use and each carries less per round trip than a default
    /// sending host allows: the link, or other traffic on it, sets the pace.
    LinkFull {
        rtt: Duration,
        rate: f64,
        window: f64,
        lanes: u16,
    },
    MemoryBudget {
        budget: usize,
        rtt: Duration,
        rate: f64,
    },
    /// Every connection is busy, each moving about one fetch per round trip: the fetch
    /// size, from the memory budget, is the cap.
    FetchSize {
        budget: usize,
        rtt: Duration,
        rate: f64,
        fetch_bytes: usize,
    },
    TargetBroker {
        broker: Option<i32>,
        waiting: usize,
        /// See `Observation::target_wait_share`.
        wait_share: f64,
        connections: u16,
    },
    /// The flow waits for the target across a long link (a mirror beside the source):
    /// each produce connection keeps at most its send buffer unacknowledged per round trip.
    TargetSendWindow {
        broker: Option<i32>,
        rtt: Duration,
        rate: f64,
        window: f64,
        connections: u16,
        send_buffer: usize,
    },
    /// The flow waits for the target across a long link, each produce connection well
    /// below its send buffer but near what its partitions may have on their way: five
    /// batches each (the idempotent producer's limit), of up to the target topic's
    /// max.message.bytes. That, or a full link: with the link full the five are on their
    /// way all the time too (at 300 ms beside the source, 3.8 MiB per round trip of 5 with
    /// 1 MiB batches, and 3.9 with the target brokers' limit at 8 MiB), so it is told as
    /// information with the setting to try if the link is faster.
    TargetBatchWindow {
        broker: Option<i32>,
        rtt: Duration,
        rate: f64,
        window: f64,
        connections: u16,
        batch_limit: usize,
    },
    /// The flow waits for the target across a long link, each produce connection below
    /// both its send buffer and its batches' limit: the link, or traffic sharing it.
    TargetLinkFull {
        rtt: Duration,
        rate: f64,
        window: f64,
        connections: u16,
    },
    SourceBroker {
        broker: i32,
        rate: f64,
    },
    /// Nothing came from the source broker in the period although data waits.
    Stalled {
        broker: i32,
    },
}

impl Limit {
    /// True for limits that the user can lift with a setting.
    pub fn is_actionable(&self) -> bool {
        !matches!(self, Limit::None)
    }

    /// True for limits worth a warning: a setting on this side or the source's lifts
    /// them. A full link is only reported.
    pub fn is_warning(&self) -> bool {
        !matches!(
            self,
            Limit::None
                | Limit::LinkFull { .. }
                | Limit::TargetBatchWindow { .. }
                | Limit::TargetLinkFull { .. }
        )
    }
}

/// Decides what limited the period.
pub fn diagnose(observation: &Observation) -> Limit {
    let o = observation;
    if !o.backlog {
        return Limit::None;
    }
    if o.target_wait_share >= TARGET_WAIT_SHARE
        || (o.held_for_memory && o.awaiting_target * 2 >= o.memory_budget)
        || !o.source_backlog
    {
        if let Some(rtt) = o.target_rtt.filter(|rtt| *rtt >= LONG_LINK_RTT) {
            let window =
                o.produce_rate * rtt.as_secs_f64() / f64::from(o.produce_connections.max(1));
            // Linux keeps about three quarters of a send buffer as data in flight (3.0-3.3
            // MiB of 4 MiB at 300 ms); with the buffer far above it, something else holds.
            if window * SEND_BUFFER_FULL >= o.target_send_buffer as f64 {
                return Limit::TargetSendWindow {
                    broker: o.target_broker,
                    rtt,
                    rate: o.produce_rate,
                    window,
                    connections: o.produce_connections,
                    send_buffer: o.target_send_buffer,
                };
            }
            // Merged batches are rarely all at the limit (3.7-3.8 MiB of 5 at 300 ms).
            if window * BATCHES_FULL >= o.target_in_flight_cap as f64 {
                return Limit::TargetBatchWindow {
                    broker: o.target_broker,
                    rtt,
                    rate: o.produce_rate,
                    window,
                    connections: o.produce_connections,
                    batch_limit: o.target_batch_limit,
                };
            }
            return Limit::TargetLinkFull {
                rtt,
                rate: o.produce_rate,
                window,
                connections: o.produce_connections,
            };
        }
        return Limit::TargetBroker {
            broker: o.target_broker,
            waiting: o.awaiting_target,
            wait_share: o.target_wait_share,
            connections: o.produce_connections,
        };
    }
    if o.held_for_memory {
        return Limit::MemoryBudget {
            budget: o.memory_budget,
            rtt: o.rtt,
            rate: o.rate,
        };
    }
    if o.rate < 1.0 {
        return Limit::Stalled {
            broker: o.source_broker,
        };
    }
    if o.rtt < LONG_LINK_RTT {
        return Limit::SourceBroker {
            broker: o.source_broker,
            rate: o.rate,
        };
    }
    let window = o.window_per_lane();
    let receive_window_full = match (o.receive_buffer_fixed, o.autotune_receive_max) {
        // Linux advertises a half to two thirds of a buffer as window.
        (Some(_), _) => window * 4.0 >= o.receive_buffer as f64,
        (None, Some(max)) => o.receive_buffer * 10 >= max * 9 && window * 4.0 >= max as f64,
        (None, None) => false,
    };
    if receive_window_full {
        return Limit::ReceiveWindow {
            alias: o.source_alias.clone(),
            rtt: o.rtt,
            rate: o.rate,
            window,
            fixed: o.receive_buffer_fixed,
        };
    }
    // On a few connections a small window is the source's fixed buffer; spread over
    // many, it may as well be each one's share of a full link (judged below).
    if window <= SMALL_FIXED_BUFFER_WINDOW && o.lanes <= FEW_LANES {
        return Limit::SourceSendBuffer {
            broker: o.source_broker,
            rtt: o.rtt,
            window,
        };
    }
    // A connection's fetches in flight move at most their size per round trip.
    if o.lanes_at_limit && window * 3.0 >= o.fetch_bytes_per_lane as f64 {
        return Limit::FetchSize {
            budget: o.memory_budget,
            rtt: o.rtt,
            rate: o.rate,
            fetch_bytes: o.fetch_bytes_per_lane,
        };
    }
    if o.lanes_at_limit && window < DEFAULT_SEND_WINDOW_FLOOR {
        return Limit::LinkFull {
            rtt: o.rtt,
            rate: o.rate,
            window,
            lanes: o.lanes,
        };
    }
    if o.lanes_at_limit {
        return Limit::SourceSendWindow {
            broker: o.source_broker,
            rtt: o.rtt,
            rate: o.rate,
            window,
            lanes: o.lanes,
        };
    }
    // More lanes are on their way.
    Limit::None
}

fn millis(rtt: Duration) -> u128 {
    rtt.as_millis().max(1)
}

fn megabytes(rate: f64) -> String {
    format!("{:.1} MB/s", rate / 1e6)
}

fn tune_command(rtt: Duration) -> String {
    format!(
        "`strait tune --rtt {}ms --bandwidth <link rate, e.g. 1gbit> --config <this file>`",
        millis(rtt)
    )
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::None => write!(f, "not limited"),
            Limit::ReceiveWindow {
                alias,
                rtt,
                rate,
                window,
                fixed: Some(fixed),
            } => write!(
                f,
                "window-limited: rtt {} ms, {} per fetch connection is {} per round trip, all that the fixed receive buffer {alias}.receive.buffer.bytes={fixed} allows; remove that setting (autotuning) or run {}",
                millis(*rtt),
                megabytes(*rate),
                human_bytes(*window as u64),
                tune_command(*rtt)
            ),
            Limit::ReceiveWindow {
                rtt, rate, window, ..
            } => write!(
                f,
                "window-limited: rtt {} ms, {} moves {} per round trip per fetch connection, the most this host's net.ipv4.tcp_rmem allows; run {} for the sysctl lines",
                millis(*rtt),
                megabytes(*rate),
                human_bytes(*window as u64),
                tune_command(*rtt)
            ),
            Limit::SourceSendBuffer {
                broker,
                rtt,
                window,
            } => write!(
                f,
                "source-send-buffer-limited: source broker {broker} sends {} per round trip of {} ms per connection, the mark of a fixed socket buffer (Kafka's default 100 KiB): set socket.send.buffer.bytes=-1 on it",
                human_bytes(*window as u64),
                millis(*rtt)
            ),
            Limit::SourceSendWindow {
                broker,
                rtt,
                rate,
                window,
                lanes,
            } => write!(
                f,
                "window-limited at the source: broker {broker} sends {} per round trip of {} ms on each of {lanes} fetch connections ({} in all); unless that is the link's rate, its host's net.ipv4.tcp_wmem ceiling caps each connection: raise the maximum there (run {}) or set strait.fetch.connections.per.broker",
                human_bytes(*window as u64),
                millis(*rtt),
                megabytes(*rate),
                tune_command(*rtt)
            ),
            Limit::LinkFull {
                rtt,
                rate,
                window,
                lanes,
            } => write!(
                f,
                "link-limited: {} over {lanes} fetch connections at rtt {} ms, each carrying {} per round trip, less than a source host with Linux's default send buffers allows: the link, or traffic sharing it, sets the pace; if the link is faster than this, the source broker's socket.send.buffer.bytes is fixed (set -1) or its host's net.ipv4.tcp_wmem maximum is below Linux's default (run {})",
                megabytes(*rate),
                millis(*rtt),
                human_bytes(*window as u64),
                tune_command(*rtt)
            ),
            Limit::MemoryBudget { budget, rtt, rate } => write!(
                f,
                "memory-budget-limited: strait.memory.budget.bytes={budget} is in flight at {} over rtt {} ms; set it to at least 2 x rtt x link rate (run {})",
                megabytes(*rate),
                millis(*rtt),
                tune_command(*rtt)
            ),
            Limit::FetchSize {
                budget,
                rtt,
                rate,
                fetch_bytes,
            } => write!(
                f,
                "memory-budget-limited: every fetch connection carries about one fetch of {} per round trip of {} ms ({}), a size that strait.memory.budget.bytes={budget} sets; raise it to at least 2 x rtt x link rate (run {})",
                human_bytes(*fetch_bytes as u64),
                millis(*rtt),
                megabytes(*rate),
                tune_command(*rtt)
            ),
            Limit::TargetBroker {
                broker,
                waiting,
                wait_share,
                connections,
            } => {
                let broker = broker.map_or_else(|| "?".to_string(), |b| b.to_string());
                write!(
                    f,
                    "target-limited: {} fetched waits for target broker {broker}'s acknowledgements over {connections} produce connection{}{}; check its load (it decompresses every batch to validate it, one request per connection at a time: with idle cores there raise strait.produce.connections.per.broker), or on a long link set socket.receive.buffer.bytes=-1 on it",
                    human_bytes(*waiting as u64),
                    if *connections == 1 { "" } else { "s" },
                    if *wait_share > 0.0 {
                        format!(
                            ", and partitions with data to read waited for them {:.0} % of the time",
                            wait_share * 100.0
                        )
                    } else {
                        String::new()
                    }
                )
            }
            Limit::TargetSendWindow {
                broker,
                rtt,
                rate,
                window,
                connections,
                send_buffer,
            } => {
                let broker = broker.map_or_else(|| "?".to_string(), |b| b.to_string());
                write!(
                    f,
                    "window-limited toward the target: {} over {connections} produce connection{} to target broker {broker} at rtt {} ms, each carrying {} per round trip; a connection keeps at most its send buffer unacknowledged (now up to {}): raise net.ipv4.tcp_wmem's maximum on this host (run {}); far below it, the target broker's socket.receive.buffer.bytes is fixed (set -1 there); a partition's batches keep to one connection, so only more partitions take more connections",
                    megabytes(*rate),
                    if *connections == 1 { "" } else { "s" },
                    millis(*rtt),
                    human_bytes(*window as u64),
                    human_bytes(*send_buffer as u64),
                    tune_command(*rtt)
                )
            }
            Limit::TargetBatchWindow {
                broker,
                rtt,
                rate,
                window,
                connections,
                batch_limit,
            } => {
                let broker = broker.map_or_else(|| "?".to_string(), |b| b.to_string());
                write!(
                    f,
                    "link- or batch-limited toward the target: {} over {connections} produce connection{} to target broker {broker} at rtt {} ms, each carrying {} per round trip, near what its partitions may have on their way (5 batches each, the idempotent producer's limit, merged up to the target topic's max.message.bytes of {}): if the link is faster than this, raise message.max.bytes on the target brokers (the limit of topics without their own; strait's config sync keeps a target topic's max.message.bytes at the source's unless config.properties.exclude lists it) or run strait beside the target",
                    megabytes(*rate),
                    if *connections == 1 { "" } else { "s" },
                    millis(*rtt),
                    human_bytes(*window as u64),
                    human_bytes(*batch_limit as u64),
                )
            }
            Limit::TargetLinkFull {
                rtt,
                rate,
                window,
                connections,
            } => write!(
                f,
                "link-limited toward the target: {} over {connections} produce connection{} at rtt {} ms, each carrying {} per round trip, below both its send buffer and its partitions' batches: the link, or traffic sharing it, sets the pace",
                megabytes(*rate),
                if *connections == 1 { "" } else { "s" },
                millis(*rtt),
                human_bytes(*window as u64),
            ),
            Limit::SourceBroker { broker, rate } => write!(
                f,
                "source-limited: source broker {broker} serves {} while data waits; check its load (num.io.threads, disk) or this machine's CPU",
                megabytes(*rate)
            ),
            Limit::Stalled { broker } => write!(
                f,
                "stalled: nothing came from source broker {broker} while data waits; see the warnings about its connection"
            ),
        }
    }
}

/// How long a condition held within a period, from the driver's observations of it
/// whenever its state may have changed.
#[derive(Debug, Default)]
pub struct TimeShare {
    since: Option<Instant>,
    held: Duration,
}

impl TimeShare {
    pub fn observe(&mut self, holds: bool, now: Instant) {
        match (self.since, holds) {
            (None, true) => self.since = Some(now),
            (Some(since), false) => {
                self.held += now.saturating_duration_since(since);
                self.since = None;
            }
            _ => {}
        }
    }

    /// How long it held since the last call; the next period starts now.
    pub fn take(&mut self, now: Instant) -> Duration {
        if let Some(since) = self.since.as_mut() {
            self.held += now.saturating_duration_since(*since);
            *since = now;
        }
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn wan(rtt_ms: u64, rate: f64, lanes: u16) -> Observation {
        Observation {
            source_alias: "A".into(),
            source_broker: 1,
            rtt: Duration::from_millis(rtt_ms),
            rate,
            lanes,
            lanes_at_limit: false,
            fetch_bytes_per_lane: 32 * MIB,
            receive_buffer: 6 * MIB,
            receive_buffer_fixed: None,
            autotune_receive_max: Some(32 * MIB),
            backlog: true,
            source_backlog: true,
            held_for_memory: false,
            awaiting_target: 0,
            target_wait_share: 0.0,
            memory_budget: 64 * MIB,
            target_broker: Some(2),
            produce_connections: 2,
            target_rtt: Some(Duration::from_micros(200)),
            produce_rate: rate,
            target_send_buffer: 2 * MIB,
            target_batch_limit: MIB,
            target_in_flight_cap: 5 * MIB,
        }
    }

    #[test]
    fn a_small_fixed_receive_buffer_is_window_limited_and_names_the_key_and_tune() {
        let observation = Observation {
            receive_buffer: 128 * 1024,
            receive_buffer_fixed: Some(65536),
            ..wan(100, 650_000.0, 1)
        };
        let limit = diagnose(&observation);
        assert!(matches!(limit, Limit::ReceiveWindow { .. }), "{limit:?}");
        let text = limit.to_string();
        assert!(text.starts_with("window-limited: rtt 100 ms"), "{text}");
        assert!(text.contains("A.receive.buffer.bytes=65536"), "{text}");
        assert!(text.contains("strait tune --rtt 100ms"), "{text}");
    }

    #[test]
    fn autotuned_buffers_at_the_hosts_ceiling_ask_for_the_sysctl() {
        let observation = Observation {
            receive_buffer: 32 * MIB,
            ..wan(100, 100e6, 1)
        };
        let limit = diagnose(&observation);
        assert!(
            matches!(limit, Limit::ReceiveWindow { fixed: None, .. }),
            "{limit:?}"
        );
        assert!(limit.to_string().contains("tcp_rmem"));
    }

    #[test]
    fn kafkas_fixed_broker_send_buffer_shows_as_a_tiny_window() {
        let limit = diagnose(&wan(100, 1.7e6, 1));
        assert_eq!(
            limit,
            Limit::SourceSendBuffer {
                broker: 1,
                rtt: Duration::from_millis(100),
                window: 1.7e6 * 0.1
            }
        );
        assert!(limit
            .to_string()
            .contains("set socket.send.buffer.bytes=-1 on it"));
    }

    #[test]
    fn the_sending_hosts_window_shows_once_the_lanes_cannot_grow() {
        let growing = wan(300, 112e6, 8);
        assert_eq!(diagnose(&growing), Limit::None);
        let at_limit = Observation {
            lanes_at_limit: true,
            ..growing
        };
        let limit = diagnose(&at_limit);
        assert!(
            matches!(limit, Limit::SourceSendWindow { lanes: 8, .. }),
            "{limit:?}"
        );
        assert!(limit.to_string().contains("tcp_wmem"));
        let small_fetches = Observation {
            fetch_bytes_per_lane: 4 * MIB,
            ..at_limit
        };
        let limit = diagnose(&small_fetches);
        assert!(matches!(limit, Limit::FetchSize { .. }), "{limit:?}");
        assert!(limit
            .to_string()
            .contains("strait.memory.budget.bytes=67108864"));
    }

    #[test]
    fn connections_below_a_default_senders_window_mean_a_full_link() {
        // 112 MB/s at 100 ms over eight connections: 1.4 MB per round trip each.
        let full = Observation {
            lanes_at_limit: true,
            ..wan(100, 112e6, 8)
        };
        let limit = diagnose(&full);
        assert!(
            matches!(limit, Limit::LinkFull { lanes: 8, .. }),
            "{limit:?}"
        );
        assert!(!limit.is_warning());
        assert!(limit.to_string().starts_with("link-limited: 112.0 MB/s"));
        // While lanes can still grow, no verdict yet.
        assert_eq!(diagnose(&wan(100, 112e6, 8)), Limit::None);
        // 32 connections share it: 350 KB each per round trip is a share of the link,
        // not a fixed 100 KiB buffer, which a connection or two would show.
        let shared = Observation {
            lanes_at_limit: true,
            ..wan(100, 112e6, 32)
        };
        assert!(
            matches!(diagnose(&shared), Limit::LinkFull { lanes: 32, .. }),
            "{:?}",
            diagnose(&shared)
        );
        assert!(matches!(
            diagnose(&wan(100, 3e6, 1)),
            Limit::SourceSendBuffer { .. }
        ));
    }

    #[test]
    fn waiting_for_the_budget_blames_the_target_or_the_budget() {
        let target_slow = Observation {
            held_for_memory: true,
            awaiting_target: 50 * MIB,
            ..wan(100, 50e6, 4)
        };
        assert_eq!(
            diagnose(&target_slow),
            Limit::TargetBroker {
                broker: Some(2),
                waiting: 50 * MIB,
                wait_share: 0.0,
                connections: 2,
            }
        );
        let told = diagnose(&target_slow).to_string();
        assert!(
            told.contains("target broker 2's acknowledgements over 2 produce connections")
                && told.contains("raise strait.produce.connections.per.broker"),
            "{told}"
        );
        let budget_small = Observation {
            awaiting_target: 4 * MIB,
            ..target_slow
        };
        let limit = diagnose(&budget_small);
        assert!(matches!(limit, Limit::MemoryBudget { .. }), "{limit:?}");
        assert!(limit
            .to_string()
            .contains("strait.memory.budget.bytes=67108864"));
    }

    #[test]
    fn waiting_for_a_target_across_a_long_link_blames_the_send_window() {
        // Beside the source: the source is near, the produce connections cross 300 ms,
        // two of them at about 3 MiB per round trip.
        let beside_source = Observation {
            awaiting_target: 20 * MIB,
            target_wait_share: 1.0,
            target_rtt: Some(Duration::from_millis(300)),
            produce_rate: 20e6,
            target_send_buffer: 4 * MIB,
            ..wan(0, 20e6, 1)
        };
        let limit = diagnose(&beside_source);
        let Limit::TargetSendWindow {
            window,
            connections: 2,
            ..
        } = limit
        else {
            panic!("{limit:?}");
        };
        assert!((window - 3e6).abs() < 1.0, "{window}");
        let told = limit.to_string();
        assert!(
            told.starts_with("window-limited toward the target: 20.0 MB/s over 2 produce connections to target broker 2 at rtt 300 ms")
                && told.contains("net.ipv4.tcp_wmem")
                && told.contains("strait tune --rtt 300ms")
                && told.contains("socket.receive.buffer.bytes"),
            "{told}"
        );
        // The copy's end: all the source lags by was fetched and waits for the target;
        // nothing is left to fetch, so the source's idle connections blame nobody.
        let draining = Observation {
            awaiting_target: 300 * MIB,
            target_wait_share: 0.0,
            source_backlog: false,
            rate: 20.0,
            ..beside_source.clone()
        };
        let limit = diagnose(&draining);
        assert!(matches!(limit, Limit::TargetSendWindow { .. }), "{limit:?}");
        let still_fetching = Observation {
            source_backlog: true,
            ..draining
        };
        assert_eq!(
            diagnose(&still_fetching),
            Limit::SourceBroker {
                broker: 1,
                rate: 20.0
            },
            "data left at the source and next to none fetched"
        );
        // Send buffers raised (tuning/wan-300ms.conf): 8 connections, one partition each,
        // carried 3.7-3.8 MiB per round trip with up to 69 MiB of send buffer: five merged
        // batches of up to the target topic's 1 MiB each.
        let tuned = Observation {
            produce_connections: 8,
            produce_rate: 8.0 * 3.8 * MIB as f64 / 0.3,
            target_send_buffer: 69 * MIB,
            target_batch_limit: MIB,
            target_in_flight_cap: 5 * MIB,
            ..beside_source.clone()
        };
        let limit = diagnose(&tuned);
        assert!(
            matches!(limit, Limit::TargetBatchWindow { connections: 8, .. }),
            "{limit:?}"
        );
        let told = limit.to_string();
        assert!(
            told.starts_with("link- or batch-limited toward the target: 106.3 MB/s over 8 produce connections to target broker 2 at rtt 300 ms, each carrying 3.8 MiB per round trip")
                && told.contains("max.message.bytes of 1.0 MiB")
                && told.contains("if the link is faster than this, raise message.max.bytes on the target brokers")
                && told.contains("beside the target"),
            "{told}"
        );
        assert!(limit.is_actionable() && !limit.is_warning());
        // Two connections for the eight partitions may carry 20 MiB each: neither their
        // buffers nor their batches hold them; the link does.
        let shared_link = Observation {
            produce_connections: 2,
            produce_rate: 2.0 * 12.0 * MIB as f64 / 0.3,
            target_in_flight_cap: 20 * MIB,
            ..tuned
        };
        let limit = diagnose(&shared_link);
        assert!(
            matches!(limit, Limit::TargetLinkFull { connections: 2, .. }),
            "{limit:?}"
        );
        assert!(limit
            .to_string()
            .starts_with("link-limited toward the target: 83.9 MB/s over 2 produce connections at rtt 300 ms, each carrying 12.0 MiB per round trip"));
        assert!(!limit.is_warning());
        // Near the target, waiting for it is its own pace.
        let near = Observation {
            target_rtt: Some(Duration::from_millis(1)),
            ..beside_source
        };
        assert!(matches!(diagnose(&near), Limit::TargetBroker { .. }));
    }

    #[test]
    fn partitions_waiting_for_the_target_most_of_the_time_blame_it_over_the_link() {
        // Across 300 ms the link's figures look full while the partitions hold back
        // their fetches for the target: 180 MiB waited, 32 connections at 1 MB each.
        let waiting = Observation {
            lanes_at_limit: true,
            awaiting_target: 180 * MIB,
            target_wait_share: 0.8,
            memory_budget: 512 * MIB,
            ..wan(300, 105e6, 32)
        };
        let limit = diagnose(&waiting);
        assert!(
            matches!(limit, Limit::TargetBroker { waiting: w, .. } if w == 180 * MIB),
            "{limit:?}"
        );
        let told = limit.to_string();
        assert!(
            told.contains("180.0 MiB fetched waits for target broker 2")
                && told.contains("waited for them 80 % of the time"),
            "{told}"
        );
        // Bursts of answers read ahead fill buffers for moments: the link still.
        let moments = Observation {
            target_wait_share: 0.2,
            ..waiting
        };
        assert!(
            matches!(diagnose(&moments), Limit::LinkFull { .. }),
            "{:?}",
            diagnose(&moments)
        );
    }

    #[test]
    fn a_time_share_counts_the_time_a_condition_held_per_period() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut share = TimeShare::default();
        share.observe(false, at(0));
        share.observe(true, at(100));
        share.observe(true, at(200));
        share.observe(false, at(400));
        share.observe(true, at(900));
        // 100-400 and 900-1000, the latter still holding when the period ends.
        assert_eq!(share.take(at(1000)), Duration::from_millis(400));
        share.observe(false, at(1250));
        assert_eq!(share.take(at(2000)), Duration::from_millis(250));
        assert_eq!(share.take(at(3000)), Duration::ZERO);
    }

    #[test]
    fn no_backlog_is_no_limit_and_a_short_link_blames_the_source_side() {
        let caught_up = Observation {
            backlog: false,
            ..wan(100, 1e3, 1)
        };
        assert_eq!(diagnose(&caught_up), Limit::None);
        assert!(!Limit::None.is_actionable());
        let cut = wan(100, 0.0, 4);
        assert_eq!(diagnose(&cut), Limit::Stalled { broker: 1 });
        assert!(cut.backlog);
        let limit = diagnose(&wan(0, 300e6, 1));
        assert_eq!(
            limit,
            Limit::SourceBroker {
                broker: 1,
                rate: 300e6
            }
        );
    }
}

//! Measuring the links to the source each period: lanes that grow, connections that trickle
//! and are replaced, fetch sizes that follow the round trip, and the limit told.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::engine::lanes::{fetch_sizing, partition_fetches};
use crate::engine::source_links::{FlowState, TricklingLane, TRICKLING_PERIODS};
use crate::engine::stats::FlowCounters;
use crate::engine::target_path::in_flight_cap;
use crate::wire::{Connection, Purpose};

use super::FlowRunner;

impl FlowRunner {
    /// Ends a measuring period of the source links: lanes grow where they help, fetch
    /// sizes follow the round trip, and a new limit is logged once.
    pub(super) fn evaluate_links(&mut self, period: Duration) {
        let mut partitions: BTreeMap<i32, usize> = BTreeMap::new();
        let mut target_load: HashMap<i32, usize> = HashMap::new();
        let mut lag_records: u64 = 0;
        let mut live = 0;
        for slot in self.slots.iter().filter(|s| s.is_live()) {
            live += 1;
            if let Some(leader) = slot.source_leader {
                *partitions.entry(leader).or_default() += 1;
            }
            if let Some(leader) = slot.target_leader {
                *target_load.entry(leader).or_default() += slot.state.buffered_bytes();
            }
            lag_records += slot.state.lag().map_or(0, |lag| lag as u64);
        }
        let target_broker = target_load
            .into_iter()
            .max_by_key(|(_, bytes)| *bytes)
            .map(|(broker, _)| broker);
        let path_was_long = self.target_path.is_long();
        self.target_path.observe(
            self.target
                .open_connections(Purpose::Produce)
                .iter()
                .filter_map(Connection::tcp_stats),
            period,
        );
        if self.target_path.is_long() && !path_was_long {
            tracing::info!(flow = %self.spec.name(),
                rtt_ms = self.target_path.rtt().unwrap_or_default().as_millis() as u64,
                "long link to the target: produce connections per target broker follow its partitions, each may hold its share of the memory budget unacknowledged");
        }
        let produced_bytes = self
            .counters
            .bytes
            .saturating_sub(self.copied_at_period_start);
        self.copied_at_period_start = self.counters.bytes;
        while let Ok((key, connection)) = self.fetch_connected_rx.try_recv() {
            self.fetch_connections.entry(key).or_insert(connection);
        }
        self.fetch_connections
            .retain(|_, connection| connection.is_alive());
        for (&(broker, lane), connection) in &self.fetch_connections {
            if let Some(stats) = connection.tcp_stats() {
                // One connection held back while the others carry the link shows here.
                tracing::debug!(flow = %self.spec.name(), broker, lane,
                    received_bytes = stats.bytes_received,
                    rtt_ms = stats.rtt.as_millis() as u64, "fetch connection");
                self.links.on_tcp_stats(broker, lane, stats);
            }
        }
        // A lane owed an answer the whole period when its oldest fetch on its way went out
        // before the period and the broker's longest wait for data.
        let owing = Instant::now()
            .checked_sub(period + self.spec.fetch_max_wait)
            .map(|since| self.fetch_lanes.owing_since(since))
            .unwrap_or_default();
        for trickling in self.links.trickling_lanes(&owing) {
            self.replace_fetch_connection(trickling);
        }
        // Where the budget sits each period: what a stall of the link or of the target
        // looks like from inside (`STRAIT_LOG=strait::engine::flow=debug`).
        tracing::debug!(flow = %self.spec.name(),
            awaiting_target = self.buffered_bytes, held_ahead = self.held_bytes,
            reserved_for_fetches = self.reserved_fetch_bytes,
            fetches = self.fetch_lanes.total_in_flight(),
            produces = self.produces_in_flight.values().sum::<usize>(),
            copied_bytes = self.counters.bytes, copied_batches = self.counters.batches,
            produce_requests = self.counters.produce_requests, "budget");
        let before = self.links.limit().clone();
        let lanes_before: HashMap<i32, u16> = partitions
            .keys()
            .map(|&broker| (broker, self.links.lanes(broker)))
            .collect();
        let produce_connections = self.produce_lanes(target_broker);
        let (led_by_target, target_batch_limit) = self
            .slots
            .iter()
            .filter(|s| s.is_live() && target_broker.is_some_and(|b| s.target_leader == Some(b)))
            .fold((0, 0), |(led, limit), slot| {
                (led + 1, limit.max(self.routes[slot.route].max_batch_bytes))
            });
        let changed = self.links.evaluate(&FlowState {
            period,
            backlog_bytes: estimated_bytes(lag_records, &self.counters),
            partitions_by_broker: partitions.clone(),
            awaiting_target: self.buffered_bytes,
            waited_for_target: self.target_wait.take(Instant::now()),
            memory_budget: self.memory_budget(),
            partition_fetch_bytes: self.sizing.partition_max_bytes,
            target_broker,
            produce_connections,
            target_rtt: self.target_path.rtt(),
            target_send_buffer: self.target_path.send_buffer(),
            target_settling: self.target_path.settling(),
            target_batch_limit,
            target_in_flight_cap: in_flight_cap(
                led_by_target,
                produce_connections,
                target_batch_limit,
            ),
            produced_bytes,
        });
        for (broker, lanes) in changed {
            tracing::info!(flow = %self.spec.name(), broker, lanes,
                "long link with data waiting: more fetch connections to this source broker");
            let first_new = lanes_before.get(&broker).copied().unwrap_or(1);
            self.open_lanes(broker, first_new..lanes);
        }
        let read_ahead_fetches: usize = partitions
            .iter()
            .map(|(&broker, &count)| partition_fetches(self.links.lanes(broker), count) - count)
            .sum();
        self.sizing = fetch_sizing(
            self.links.rtt(),
            self.target_path.rtt(),
            self.memory_budget(),
            live + read_ahead_fetches,
            live,
            self.spec.partition_fetch_bytes,
        );
        let limit = self.links.limit();
        // Logged when the kind of limit changes; the status line carries the figures.
        if std::mem::discriminant(limit) != std::mem::discriminant(&before) {
            if limit.is_warning() {
                tracing::warn!(flow = %self.spec.name(), "{limit}");
            } else if limit.is_actionable() {
                tracing::info!(flow = %self.spec.name(), "{limit}");
            }
        }
    }

    /// Hands the links the round trip to each source leader that the admin connection of
    /// `prepare` measured: a long link's fetch connections then open with the first fetches
    /// (at 300 ms they opened 0.6 s after them, once the first fetch connection had
    /// measured it and the log sizes were known). True when any was seeded.
    pub(super) fn seed_source_round_trips(&mut self) -> bool {
        let leaders: BTreeSet<i32> = self
            .slots
            .iter()
            .filter(|s| s.is_live())
            .filter_map(|s| s.source_leader)
            .collect();
        let mut seeded = false;
        for leader in leaders {
            let measured = self
                .source
                .open_connection(leader, Purpose::Admin)
                .and_then(|connection| connection.tcp_stats());
            if let Some(stats) = measured {
                self.links.seed_round_trip(leader, stats.round_trip());
                seeded = true;
            }
        }
        seeded
    }

    /// Opens new fetch connections before their first fetch: across a long link the
    /// handshake and version exchange take round trips that would otherwise delay the
    /// first answers read ahead. A connection that fails is met again, and reported, by
    /// the first fetch on its lane.
    pub(super) fn open_lanes(&self, broker: i32, lanes: std::ops::Range<u16>) {
        for lane in lanes {
            let source = self.source.clone();
            let announce = self.fetch_connected.clone();
            tokio::spawn(async move {
                if let Ok(connection) = source.connection_lane(broker, Purpose::Fetch, lane).await {
                    // The flow may have finished; then nobody needs the connection.
                    let _ = announce.send(((broker, lane), connection));
                }
            });
        }
    }

    /// Gives a lane whose connection trickled a new connection. Its fetches on their way
    /// finish on the old one, which closes after them; the one its partition waits for
    /// counts as slow on a connection that fell behind, and may be sent again.
    pub(super) fn replace_fetch_connection(&mut self, trickling: TricklingLane) {
        let TricklingLane {
            broker,
            lane,
            received,
            others_median,
        } = trickling;
        tracing::info!(flow = %self.spec.name(), broker, lane,
            received_bytes = received, others_median_bytes = others_median,
            periods = TRICKLING_PERIODS,
            "fetch connection received under a third of the median of the broker's others \
             over {TRICKLING_PERIODS} periods in a row while it owed answers (across a long \
             link, the sender's congestion control recovering slowly from losses): replaced by \
             a new connection; the fetches on their way finish on the old one");
        let key = (broker, lane);
        self.fetch_lanes.replace(key);
        self.fetch_sessions.remove(&key);
        self.fetch_connections.remove(&key);
        self.source.retire_lane(broker, Purpose::Fetch, lane);
        self.open_lanes(broker, lane..lane + 1);
    }

    /// Whether the connection that partition `index`'s fetch at `offset` went out on
    /// kept pace with the others over the latest period. Such a fetch is slow for sharing
    /// a full link, not held back by losses: a second sending would only crowd the link
    /// (from a cubic source at 300 ms, 62 were sent, 255 MiB twice, while the link
    /// carried 115 MiB/s in the middle of the copy). Unmeasured: false.
    pub(super) fn fetch_connection_kept_pace(&self, index: usize, offset: i64) -> bool {
        match self.fetch_lanes.lane_of(index, offset) {
            // Its connection was replaced for trickling.
            Some((_, false)) | None => false,
            Some(((broker, lane), true)) => self
                .links
                .kept_pace_last_period(broker, lane)
                .unwrap_or(false),
        }
    }

    /// Appended to the status line: the measured link and what limits the flow.
    pub(super) fn link_note(&self) -> String {
        let mut note = String::new();
        if let Some(summary) = self.links.summary() {
            note.push_str(&format!(", {summary}"));
        }
        if let (true, Some(rtt)) = (self.target_path.is_long(), self.target_path.rtt()) {
            let connections = self.target_path.connections();
            note.push_str(&format!(
                ", target rtt {} ms, {connections} produce connection{}",
                rtt.as_millis(),
                if connections == 1 { "" } else { "s" }
            ));
        }
        let limit = self.links.limit();
        if limit.is_actionable() {
            note.push_str(&format!("; {limit}"));
        }
        note
    }
}

/// Bytes of `records` at the average size of those copied so far; `None` before any
/// was copied (then records have no size yet).
fn estimated_bytes(records: u64, copied: &FlowCounters) -> Option<u64> {
    match copied.records {
        0 if records > 0 => None,
        0 => Some(0),
        copied_records => Some(records.saturating_mul(copied.bytes / copied_records)),
    }
}

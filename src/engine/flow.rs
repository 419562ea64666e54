//! The driver of one replication flow: it owns every partition's state and runs fetches,
//! produces, metadata refreshes and progress commits as futures whose completions come
//! back to this one task. The decisions live in the pure modules beside it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProduceResponse};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::batch::{patch, AbortedTransactions, ProducerStamp};
use crate::wire::{
    send_produce, Backoff, ClusterClient, Connection, MetadataSnapshot, ProduceTopicBatches,
    Purpose, WireError,
};
use bytes::Bytes;

use super::diagnosis::TimeShare;
use super::error::EngineError;
use super::events::{FlowEvent, RouteInfo};
use super::fetch_lanes::{FetchLanes, LaneTicket};
use super::fetch_session::{FetchSession, SessionRequest, Wanted};
use super::ingest::ingest;
use super::lanes::{
    fetch_sizing, fetches_per_lane, memory_budget, partition_fetches, reads_ahead,
    worth_a_connection, FetchSizing, LaneAssignment, LanePartition,
};
use super::log_shape::{self, PartitionKey};
use super::outcome::{
    advice, classify_fetch_error, classify_produce, FetchOutcome, ProduceOutcome,
};
use super::partition::PartitionState;
use super::read_ahead::{read_ahead_cap, Answered, NextFetch, ReadAhead};
use super::routes::{Prepared, RouteSetup};
use super::setup::{self, ProducerIdentity};
use super::source_links::{FlowState, SourceLinks, TricklingLane, TRICKLING_PERIODS};
use super::spec::{FlowSpec, StartPosition, TopicRoute};
use super::stats::{status_line, FlowCounters, StatusSample};
use super::target_path::{in_flight_cap, produce_connections, produce_lane, TargetPath};

/// Largest produce request strait builds; brokers drop connections over
/// socket.request.max.bytes (100 MiB by default).
const MAX_PRODUCE_REQUEST_BYTES: usize = 16 * 1024 * 1024;
const MAX_FETCH_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// A partition's first fetch, at most.
const FIRST_FETCH_BYTES: usize = 256 * 1024;
/// Partitions of one source broker whose slow fetch may be on its way a second time at
/// once: one per this many of its fetch connections, at least one. A second sending is
/// for the connection a loss held back; when fetches on many are slow at once, the link
/// is, and second sendings only crowd it further (a 300 ms copy on a busy machine sent
/// 98 of them, 395 MiB twice, while its delay line dropped packets it handled late).
const LANES_PER_RESENDING_PARTITION: usize = 16;
const SHUTDOWN_DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How often the links to the source are measured, lanes adjusted and limits diagnosed.
const LINK_PERIOD: Duration = Duration::from_secs(1);

/// Target topic -> (partition, next source offset).
type ProgressOffsets = BTreeMap<String, Vec<(i32, i64)>>;

struct Route {
    source: String,
    target: String,
    source_id: Uuid,
    target_id: Uuid,
    max_batch_bytes: usize,
    /// The source topic was deleted: its partitions stopped, the target topic is kept.
    retired: bool,
}

struct Slot {
    route: usize,
    partition: i32,
    state: PartitionState,
    read_ahead: ReadAhead,
    /// The source was asked for this partition's log size (see `log_shape`).
    shape_probed: bool,
    source_leader: Option<i32>,
    target_leader: Option<i32>,
    /// Its log bounds are being read after an out-of-range answer: no fetch meanwhile.
    reading_bounds: bool,
    larger_fetch: bool,
    fetch_not_before: Instant,
    produce_not_before: Instant,
    /// The produce connection its batches go out on; it changes only while none of them
    /// is on its way, so that they arrive in sequence order.
    produce_lane: u16,
    fetch_failures: u32,
    produce_failures: u32,
    stopped: Option<String>,
    retired: bool,
}

impl Slot {
    /// The source holds offsets beyond what this partition fetched.
    fn has_data_to_read(&self) -> bool {
        self.left_to_read() > 0
    }

    /// Records between its fetch position and the source's end (0 until the end is known).
    fn left_to_read(&self) -> u64 {
        self.state
            .high_watermark()
            .map_or(0, |end| (end - self.state.fetch_position()).max(0) as u64)
    }

    fn is_live(&self) -> bool {
        self.stopped.is_none() && !self.retired
    }

    /// It has data to read but holds all it may (`buffer_cap`), with a produce on its
    /// way: it fetches again once the target has taken some. One in a retry's backoff
    /// (a target partition without a leader) is not waiting for the target.
    fn waits_for_target(&self, buffer_cap: usize) -> bool {
        self.state.buffered_bytes() >= buffer_cap
            && self.state.in_flight() > 0
            && self.has_data_to_read()
    }
}

enum Completion {
    Fetch {
        /// The lane and connection it went out on.
        ticket: LaneTicket,
        /// (slot, fetch offset) of each partition asked for.
        asked: Vec<(usize, i64)>,
        /// Memory-budget bytes set aside for the response.
        reserved: usize,
        /// Sent outside the lane's fetch session.
        sessionless: bool,
        result: Result<FetchedResponse, WireError>,
    },
    Produce {
        broker: i32,
        lane: u16,
        sent: Vec<(usize, i32)>,
        result: Result<ProduceResponse, WireError>,
    },
    Metadata {
        source: Result<Arc<MetadataSnapshot>, WireError>,
        target: Result<Arc<MetadataSnapshot>, WireError>,
    },
    Commit {
        result: Result<(), EngineError>,
        committed: Vec<(usize, i64)>,
    },
    ProducerId(Result<ProducerIdentity, EngineError>),
    LogBounds {
        slot: usize,
        result: Result<(i64, i64), EngineError>,
    },
    Discovered(Result<Arc<MetadataSnapshot>, WireError>),
    Prepared(Result<Prepared, EngineError>),
    Shapes(Result<HashMap<PartitionKey, f64>, EngineError>),
}

/// What a flow did, returned when it stops.
#[derive(Debug, Clone)]
pub struct FlowReport {
    pub counters: FlowCounters,
    pub stopped_partitions: Vec<String>,
}

pub struct FlowRunner {
    spec: FlowSpec,
    source: ClusterClient,
    target: ClusterClient,
    setup: RouteSetup,
    routes: Vec<Route>,
    slots: Vec<Slot>,
    by_source_name: HashMap<String, usize>,
    by_source_id: HashMap<Uuid, usize>,
    by_target_name: HashMap<String, usize>,
    by_target_id: HashMap<Uuid, usize>,
    slot_index: HashMap<(usize, i32), usize>,
    producer: ProducerIdentity,
    producer_reset_wanted: bool,
    producer_reset_running: bool,
    /// Fetches on their way per (source broker, lane), and which lane each went out on.
    fetch_lanes: FetchLanes,
    /// Per (target broker, produce connection).
    produces_in_flight: HashMap<(i32, u16), usize>,
    /// The path to the target, measured on the produce connections each period.
    target_path: TargetPath,
    /// Bytes copied when the current measuring period began.
    copied_at_period_start: u64,
    metadata_wanted: bool,
    metadata_running: bool,
    /// Partitions were added whose bytes per offset the source's log sizes may tell.
    shape_probe_wanted: bool,
    shape_probe_running: bool,
    /// A failed probe was reported once; later ones go to debug.
    shape_probe_failure_told: bool,
    /// Evaluate the source links now rather than at the end of the period.
    links_due: bool,
    discovery_running: bool,
    commit_running: bool,
    committed: Vec<i64>,
    buffered_bytes: usize,
    /// Answers read ahead of their partition's position, waiting for the data before them.
    held_bytes: usize,
    /// Budget bytes promised to fetches in flight, so that parallel fetches stay within it.
    reserved_fetch_bytes: usize,
    sizing: FetchSizing,
    links: SourceLinks,
    /// How long in the current link period a partition with data waited for the target.
    target_wait: TimeShare,
    /// The fetch connection of each (source broker, lane), read for TCP_INFO each period.
    fetch_connections: HashMap<(i32, u16), Connection>,
    /// New fetch connections, announced as soon as they are up: across a long link the
    /// first response takes seconds of slow start, and the round trip is needed sooner.
    fetch_connected: mpsc::UnboundedSender<((i32, u16), Connection)>,
    fetch_connected_rx: mpsc::UnboundedReceiver<((i32, u16), Connection)>,
    counters: FlowCounters,
    backoff: Backoff,
    fetch_rotation: usize,
    fetch_sessions: HashMap<(i32, u16), FetchSession>,
    tasks: FuturesUnordered<BoxFuture<'static, Completion>>,
    events: Option<mpsc::UnboundedSender<FlowEvent>>,
    routes_tx: watch::Sender<Vec<RouteInfo>>,
}

impl FlowRunner {
    /// Connects both clusters, creates missing target topics, takes a producer identity
    /// and finds each partition's start offset. `source` is a client of `spec.source`,
    /// perhaps already connected (the plan's).
    pub async fn prepare(spec: FlowSpec, source: ClusterClient) -> Result<FlowRunner, EngineError> {
        let target = ClusterClient::new(
            &spec.target.alias,
            spec.target.bootstrap.clone(),
            spec.target.connection.clone(),
        );
        let setup = RouteSetup {
            flow: spec.name(),
            source: source.clone(),
            target: target.clone(),
            progress_group: spec.progress_group(),
            replication_factor: spec.replication_factor,
            new_topic_configs: spec.new_topic_configs.clone(),
        };
        let prepared = setup
            .prepare(&spec.topics, &HashSet::new(), spec.start)
            .await?;
        if let Some(topic) = prepared.vanished.first() {
            return Err(EngineError::MissingSourceTopic {
                cluster: spec.source.alias.clone(),
                topic: topic.clone(),
            });
        }
        let producer = setup::init_producer_id(&target).await?;
        let (routes_tx, _) = watch::channel(Vec::new());
        let links = SourceLinks::new(
            &spec.source.alias,
            spec.fetch_connections,
            spec.source.connection.socket.recv_buffer,
            autotune_receive_max(),
        );
        let sizing = fetch_sizing(
            None,
            None,
            memory_budget(spec.memory_budget, None),
            1,
            1,
            spec.partition_fetch_bytes,
        );
        let (fetch_connected, fetch_connected_rx) = mpsc::unbounded_channel();
        let mut runner = FlowRunner {
            spec,
            source,
            target,
            setup,
            routes: Vec::new(),
            slots: Vec::new(),
            by_source_name: HashMap::new(),
            by_source_id: HashMap::new(),
            by_target_name: HashMap::new(),
            by_target_id: HashMap::new(),
            slot_index: HashMap::new(),
            producer,
            producer_reset_wanted: false,
            producer_reset_running: false,
            fetch_lanes: FetchLanes::default(),
            produces_in_flight: HashMap::new(),
            target_path: TargetPath::default(),
            copied_at_period_start: 0,
            metadata_wanted: false,
            metadata_running: false,
            shape_probe_wanted: false,
            shape_probe_running: false,
            shape_probe_failure_told: false,
            links_due: false,
            discovery_running: false,
            commit_running: false,
            committed: Vec::new(),
            buffered_bytes: 0,
            held_bytes: 0,
            reserved_fetch_bytes: 0,
            sizing,
            links,
            fetch_connections: HashMap::new(),
            fetch_connected,
            fetch_connected_rx,
            counters: FlowCounters::default(),
            backoff: Backoff::default(),
            fetch_rotation: 0,
            target_wait: TimeShare::default(),
            fetch_sessions: HashMap::new(),
            tasks: FuturesUnordered::new(),
            events: None,
            routes_tx,
        };
        runner.integrate(prepared);
        Ok(runner)
    }

    /// Events of every batch that lands on the target, in source order per partition,
    /// for offset translation. Call before `run`.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<FlowEvent> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.events = Some(sender);
        receiver
    }

    /// The topics being mirrored, updated as discovery adds or retires them.
    pub fn routes(&self) -> watch::Receiver<Vec<RouteInfo>> {
        self.routes_tx.subscribe()
    }

    fn publish_routes(&self) {
        let mut partitions: HashMap<usize, i32> = HashMap::new();
        for slot in &self.slots {
            *partitions.entry(slot.route).or_default() += 1;
        }
        let routes = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, route)| !route.retired)
            .map(|(index, route)| RouteInfo {
                source: route.source.clone(),
                target: route.target.clone(),
                partitions: partitions.get(&index).copied().unwrap_or(0),
            })
            .collect();
        self.routes_tx.send_replace(routes);
    }

    /// Adds prepared topics and partitions; a topic already known keeps its place.
    fn integrate(&mut self, prepared: Prepared) {
        let now = Instant::now();
        self.shape_probe_wanted = true;
        for route in prepared.routes {
            match self.by_source_name.get(&route.source) {
                Some(&index) => self.routes[index].max_batch_bytes = route.max_batch_bytes,
                None => {
                    let index = self.routes.len();
                    self.by_source_name.insert(route.source.clone(), index);
                    self.by_source_id.insert(route.source_id, index);
                    self.by_target_name.insert(route.target.clone(), index);
                    self.by_target_id.insert(route.target_id, index);
                    self.routes.push(Route {
                        source: route.source,
                        target: route.target,
                        source_id: route.source_id,
                        target_id: route.target_id,
                        max_batch_bytes: route.max_batch_bytes,
                        retired: false,
                    });
                }
            }
        }
        for partition in prepared.partitions {
            let route = self.by_source_name[&partition.source_topic];
            if self.slot_index.contains_key(&(route, partition.partition)) {
                continue;
            }
            tracing::info!(
                flow = %self.spec.name(),
                topic = %partition.source_topic,
                partition = partition.partition,
                start = partition.start,
                "partition starts"
            );
            self.slot_index
                .insert((route, partition.partition), self.slots.len());
            self.committed.push(partition.start);
            let mut state = PartitionState::new(partition.start);
            if let Some(log_end) = partition.log_end {
                state.set_high_watermark(log_end);
            }
            self.slots.push(Slot {
                route,
                partition: partition.partition,
                state,
                read_ahead: ReadAhead::default(),
                shape_probed: false,
                source_leader: partition.source_leader,
                target_leader: partition.target_leader,
                reading_bounds: false,
                larger_fetch: false,
                fetch_not_before: now,
                produce_not_before: now,
                produce_lane: 0,
                fetch_failures: 0,
                produce_failures: 0,
                stopped: None,
                retired: false,
            });
        }
        self.publish_routes();
    }

    /// Copies until `shutdown` turns true, then drains what is in flight and commits.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> FlowReport {
        let flow = self.spec.name();
        let mut status_timer = tokio::time::interval(self.spec.status_interval);
        status_timer.tick().await;
        let mut commit_timer = tokio::time::interval(self.spec.commit_interval);
        commit_timer.tick().await;
        let mut wake = tokio::time::interval(Duration::from_millis(50));
        let discovery_period = self
            .spec
            .discovery
            .as_ref()
            .map_or(Duration::from_secs(3600), |d| d.interval);
        let mut discovery_timer = tokio::time::interval(discovery_period);
        discovery_timer.tick().await;
        let mut link_timer = tokio::time::interval(LINK_PERIOD);
        link_timer.tick().await;
        let mut link_period_start = Instant::now();
        let mut previous = self.counters.clone();
        let mut previous_at = Instant::now();
        let mut draining_since: Option<Instant> = None;
        if self.seed_source_round_trips() {
            self.evaluate_links(link_period_start.elapsed());
            link_period_start = Instant::now();
        }

        loop {
            let waits = self.waits_for_target();
            self.target_wait.observe(waits, Instant::now());
            if draining_since.is_none() && *shutdown.borrow() {
                tracing::info!(%flow, "stopping: draining sends in flight");
                draining_since = Some(Instant::now());
            }
            if let Some(since) = draining_since {
                let drained = self.slots.iter().all(|s| s.state.in_flight() == 0)
                    && self.produces_in_flight.values().all(|n| *n == 0);
                if drained || since.elapsed() > SHUTDOWN_DRAIN_LIMIT {
                    break;
                }
            } else {
                self.launch_fetches();
            }
            self.launch_produces();
            self.launch_maintenance();
            if std::mem::take(&mut self.links_due) {
                self.evaluate_links(link_period_start.elapsed());
                link_period_start = Instant::now();
                link_timer.reset();
            }

            tokio::select! {
                Some(done) = self.tasks.next() => self.complete(done),
                _ = status_timer.tick() => {
                    let sample = self.sample();
                    let line = status_line(&flow, &previous, &sample, previous_at.elapsed());
                    tracing::info!(target: "strait::status", "{line}{}", self.link_note());
                    previous = sample.counters;
                    previous_at = Instant::now();
                }
                _ = commit_timer.tick() => self.launch_commit(),
                _ = link_timer.tick() => {
                    self.evaluate_links(link_period_start.elapsed());
                    link_period_start = Instant::now();
                }
                _ = discovery_timer.tick(), if draining_since.is_none() => self.launch_discovery(),
                _ = shutdown.changed() => {}
                _ = wake.tick() => {}
            }
        }

        // Wait for a commit already running, then commit the final progress.
        while self.commit_running {
            if let Some(done) = self.tasks.next().await {
                self.complete(done);
            } else {
                break;
            }
        }
        let (offsets, committed) = self.progress_to_commit();
        if !committed.is_empty() {
            match setup::commit_progress(&self.target, &self.spec.progress_group(), &offsets).await
            {
                Ok(()) => self.on_progress_committed(committed),
                Err(error) => {
                    tracing::error!(%flow, %error, "final progress commit failed; a restart copies the uncommitted part again")
                }
            }
        }
        let sample = self.sample();
        tracing::info!(target: "strait::status", "{}", status_line(&flow, &previous, &sample, previous_at.elapsed()));
        FlowReport {
            counters: self.counters.clone(),
            stopped_partitions: self
                .slots
                .iter()
                .filter_map(|s| {
                    s.stopped.as_ref().map(|why| {
                        format!("{}-{}: {why}", self.routes[s.route].source, s.partition)
                    })
                })
                .collect(),
        }
    }

    fn sample(&self) -> StatusSample {
        let mut lag = Some(0);
        for slot in self.slots.iter().filter(|s| !s.retired) {
            lag = match (lag, slot.state.lag()) {
                (Some(total), Some(l)) => Some(total + l),
                _ => None,
            };
        }
        StatusSample {
            counters: self.counters.clone(),
            lag_records: lag,
            partitions: self.slots.iter().filter(|s| !s.retired).count(),
            failed_partitions: self.slots.iter().filter(|s| s.stopped.is_some()).count(),
        }
    }

    /// Ends a measuring period of the source links: lanes grow where they help, fetch
    /// sizes follow the round trip, and a new limit is logged once.
    fn evaluate_links(&mut self, period: Duration) {
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
    fn seed_source_round_trips(&mut self) -> bool {
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
    fn open_lanes(&self, broker: i32, lanes: std::ops::Range<u16>) {
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
    fn replace_fetch_connection(&mut self, trickling: TricklingLane) {
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

    fn memory_budget(&self) -> usize {
        let longer = self.links.rtt().max(self.target_path.rtt());
        memory_budget(self.spec.memory_budget, longer)
    }

    /// Produce connections to target broker `leader` (any broker: None).
    fn produce_lanes(&self, leader: Option<i32>) -> u16 {
        let partitions_led = self
            .slots
            .iter()
            .filter(|s| s.is_live() && leader.is_none_or(|l| s.target_leader == Some(l)))
            .count();
        produce_connections(
            self.spec.produce_connections,
            self.target_path.is_long(),
            partitions_led,
        )
    }

    /// Whether the connection that partition `index`'s fetch at `offset` went out on
    /// kept pace with the others over the latest period. Such a fetch is slow for sharing
    /// a full link, not held back by losses: a second sending would only crowd the link
    /// (from a cubic source at 300 ms, 62 were sent, 255 MiB twice, while the link
    /// carried 115 MiB/s in the middle of the copy). Unmeasured: false.
    fn fetch_connection_kept_pace(&self, index: usize, offset: i64) -> bool {
        match self.fetch_lanes.lane_of(index, offset) {
            // Its connection was replaced for trickling.
            Some((_, false)) | None => false,
            Some(((broker, lane), true)) => self
                .links
                .kept_pace_last_period(broker, lane)
                .unwrap_or(false),
        }
    }

    fn waits_for_target(&self) -> bool {
        let cap = self.sizing.partition_buffer_cap;
        self.slots
            .iter()
            .any(|slot| slot.is_live() && slot.waits_for_target(cap))
    }

    /// Appended to the status line: the measured link and what limits the flow.
    fn link_note(&self) -> String {
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

    fn stop_partition(&mut self, slot: usize, offset: i64, why: String) {
        let route = &self.routes[self.slots[slot].route];
        tracing::error!(
            flow = %self.spec.name(),
            cluster = %self.spec.source.alias,
            topic = %route.source,
            partition = self.slots[slot].partition,
            offset,
            "partition stopped: {why}; the other partitions go on, and this one resumes from offset {} after a restart",
            self.slots[slot].state.progress()
        );
        self.slots[slot].stopped = Some(why);
        self.drop_held(slot);
        self.release_unsent(slot);
    }

    /// A partition that sends no more gives back the budget its unsent batches held.
    fn release_unsent(&mut self, index: usize) {
        self.buffered_bytes -= self.slots[index].state.release_unsent();
    }

    /// Forgets what was read ahead for a partition that stopped or starts over.
    fn drop_held(&mut self, index: usize) {
        let read_ahead = &mut self.slots[index].read_ahead;
        self.held_bytes -= read_ahead.held_bytes();
        read_ahead.clear_held();
    }

    fn launch_fetches(&mut self) {
        let now = Instant::now();
        let fetch_bytes = self.sizing.partition_max_bytes;
        let behind = Slot::has_data_to_read;
        let lane_partitions: Vec<LanePartition> = self
            .slots
            .iter()
            .map(|slot| LanePartition {
                leader: slot.source_leader.filter(|_| slot.is_live()),
                behind: behind(slot),
            })
            .collect();
        let assignment = LaneAssignment::new(&lane_partitions, |leader| self.links.lanes(leader));
        let partitions_led = |leader: i32| assignment.partitions_led(leader);
        let mut by_lane: BTreeMap<(i32, u16), Vec<usize>> = BTreeMap::new();
        let count = self.slots.len();
        for step in 0..count {
            let index = (self.fetch_rotation + step) % count;
            let slot = &self.slots[index];
            let Some(leader) = slot.source_leader else {
                continue;
            };
            if slot.reading_bounds || now < slot.fetch_not_before {
                continue;
            }
            let per_lane = fetches_per_lane(self.links.lanes(leader), partitions_led(leader));
            for lane in assignment.of(index).iter() {
                let busy = self.fetch_lanes.in_flight((leader, lane)) >= per_lane;
                if !busy {
                    by_lane.entry((leader, lane)).or_default().push(index);
                }
            }
        }
        self.fetch_rotation = self.fetch_rotation.wrapping_add(1);
        // Idle lanes first: a partition's first fetch of the round is its most urgent
        // (at its position, or a gap that answers read ahead wait for), and behind
        // another answer on a long link's connection it would wait seconds.
        let mut by_lane: Vec<((i32, u16), Vec<usize>)> = by_lane.into_iter().collect();
        by_lane.sort_by_key(|(key, _)| self.fetch_lanes.in_flight(*key));
        let resending_limit = |leader: i32| {
            (usize::from(self.links.lanes(leader)) / LANES_PER_RESENDING_PARTITION).max(1)
        };
        let mut resending: HashMap<i32, usize> = HashMap::new();
        for slot in self.slots.iter().filter(|s| s.read_ahead.resending()) {
            if let Some(leader) = slot.source_leader {
                *resending.entry(leader).or_default() += 1;
            }
        }
        let budget = self.memory_budget();
        let live_partitions = self.slots.iter().filter(|s| s.is_live()).count().max(1);
        let left_to_read_all: u64 = self
            .slots
            .iter()
            .filter(|s| s.is_live())
            .map(Slot::left_to_read)
            .sum();
        for ((leader, lane), mut indexes) in by_lane {
            let sessionless = reads_ahead(self.links.lanes(leader), partitions_led(leader));
            let per_lane = fetches_per_lane(self.links.lanes(leader), partitions_led(leader));
            let room = budget
                .saturating_sub(self.buffered_bytes + self.held_bytes + self.reserved_fetch_bytes);
            if room < fetch_bytes {
                self.links.on_held_for_memory(leader);
                return;
            }
            // A partition whose next batch didn't fit goes first: brokers always return
            // the first batch of the first partition whole.
            indexes.sort_by_key(|i| !self.slots[*i].larger_fetch);
            let mut planned: Vec<(usize, NextFetch, usize)> = Vec::new();
            // A partition of the lane waits for the target: its answer ends the wait.
            let mut waits_for_target = false;
            let mut requested = 0;
            for index in indexes {
                let slot = &self.slots[index];
                if slot.state.buffered_bytes() >= self.sizing.partition_buffer_cap {
                    waits_for_target |= slot.waits_for_target(self.sizing.partition_buffer_cap);
                    continue;
                }
                let may_resend = resending.get(&leader).copied().unwrap_or(0)
                    < resending_limit(leader)
                    && !slot
                        .read_ahead
                        .slow_fetch_offset(slot.state.fetch_position(), now)
                        .is_some_and(|offset| self.fetch_connection_kept_pace(index, offset));
                let Some(next) = slot.read_ahead.next_fetch(
                    slot.state.fetch_position(),
                    slot.state.high_watermark(),
                    fetch_bytes,
                    now,
                    may_resend,
                ) else {
                    continue;
                };
                // Answers read ahead wait for the fetch at the position, which must always
                // find room: with what is on its way they fill three quarters of the
                // budget at most (all lanes out at once take half).
                if next.ahead {
                    let partition_cap = read_ahead_cap(
                        assignment.of(index).len() * per_lane,
                        fetch_bytes,
                        budget,
                        live_partitions,
                        slot.left_to_read(),
                        left_to_read_all,
                    );
                    let partition_holds =
                        slot.read_ahead.held_bytes() + slot.read_ahead.outstanding_bytes();
                    let flow_holds = self.held_bytes + self.reserved_fetch_bytes + requested;
                    if partition_holds + next.max_bytes > partition_cap
                        || flow_holds + next.max_bytes > budget / 4 * 3
                    {
                        continue;
                    }
                }
                // A batch larger than the partition limit comes back whole only when its
                // partition is the first of the response.
                let max_bytes = if slot.larger_fetch && !next.ahead {
                    MAX_FETCH_RESPONSE_BYTES
                } else if !slot.read_ahead.knows_shape() {
                    // The first answer only has to show the partition's bytes per offset
                    // before it can be read ahead; across a long link a small one comes
                    // back several round trips sooner in slow start.
                    next.max_bytes.min(FIRST_FETCH_BYTES)
                } else {
                    next.max_bytes
                };
                // A request cut short by the room left would end each partition's answer
                // before the offset the next fetch ahead was sent at: a gap to fetch again.
                if requested > 0 && requested + max_bytes > room {
                    continue;
                }
                requested += max_bytes;
                if next.hedge {
                    *resending.entry(leader).or_default() += 1;
                }
                planned.push((index, next, max_bytes));
            }
            if !worth_a_connection(
                waits_for_target,
                planned.iter().map(|(i, ..)| behind(&self.slots[*i])),
            ) {
                continue;
            }
            let mut asked: Vec<(usize, i64)> = Vec::new();
            let mut wanted: Vec<Wanted> = Vec::new();
            for (index, next, max_bytes) in planned {
                let slot = &mut self.slots[index];
                tracing::debug!(flow = %self.spec.name(), partition = slot.partition, lane,
                    offset = next.offset, position = slot.state.fetch_position(), max_bytes,
                    ahead = next.ahead, hedge = next.hedge, gap = next.gap,
                    margin = slot.read_ahead.margin(fetch_bytes), "fetch");
                self.counters.fetches_sent_twice += u64::from(next.hedge);
                self.counters.gaps_fetched += u64::from(next.gap);
                let full_size = !next.gap && max_bytes == fetch_bytes;
                slot.read_ahead
                    .on_sent(next.offset, max_bytes, full_size, now);
                asked.push((index, next.offset));
                let route = &self.routes[slot.route];
                wanted.push(Wanted {
                    topic: route.source.clone(),
                    topic_id: route.source_id,
                    partition: slot.partition,
                    fetch_offset: next.offset,
                    max_bytes: max_bytes as i32,
                });
            }
            if wanted.is_empty() {
                continue;
            }
            let wanted_bytes: usize = wanted.iter().map(|w| w.max_bytes as usize).sum();
            let max_bytes = room.min(wanted_bytes).min(MAX_FETCH_RESPONSE_BYTES);
            let session = match self.fetch_sessions.get_mut(&(leader, lane)) {
                Some(session) if !sessionless => session.request(&wanted),
                // Until the first answer shows the broker's Fetch version: no session.
                _ => SessionRequest::sessionless(wanted),
            };
            let ticket = self.fetch_lanes.ticket((leader, lane));
            self.fetch_lanes.on_sent(ticket, &asked, now);
            self.reserved_fetch_bytes += max_bytes;
            let request = session.into_fetch_request(
                max_bytes as i32,
                self.spec.fetch_max_wait.as_millis() as i32,
            );
            let source = self.source.clone();
            let announce = (!self.fetch_connections.contains_key(&(leader, lane)))
                .then(|| self.fetch_connected.clone());
            self.tasks.push(Box::pin(async move {
                let result = send_fetch(&source, leader, lane, request, announce).await;
                Completion::Fetch {
                    ticket,
                    asked,
                    reserved: max_bytes,
                    sessionless,
                    result,
                }
            }));
        }
    }

    fn launch_produces(&mut self) {
        if self.producer_reset_wanted {
            return;
        }
        let now = Instant::now();
        // Each partition keeps to one of the broker's produce connections (why several:
        // DEFAULT_PRODUCE_CONNECTIONS_PER_BROKER and `target_path`) while its batches are
        // on their way: they then arrive in sequence order, as the idempotent producer's
        // numbering requires. Between them it takes its place among the broker's
        // partitions modulo the connections wanted now, which grow once the path to the
        // target turns out long.
        let mut lanes_of: HashMap<i32, u16> = HashMap::new();
        let mut ordinals: HashMap<i32, u16> = HashMap::new();
        let mut by_lane: BTreeMap<(i32, u16), Vec<usize>> = BTreeMap::new();
        for index in 0..self.slots.len() {
            let Some(leader) = self.slots[index].target_leader else {
                continue;
            };
            if !self.slots[index].is_live() {
                continue;
            }
            let ordinal = ordinals.entry(leader).or_default();
            let place = *ordinal;
            *ordinal = ordinal.wrapping_add(1);
            let lanes = match lanes_of.get(&leader) {
                Some(&lanes) => lanes,
                None => {
                    let lanes = self.produce_lanes(Some(leader)).max(1);
                    lanes_of.insert(leader, lanes);
                    lanes
                }
            };
            let slot = &mut self.slots[index];
            let Some(lane) = produce_lane(slot.produce_lane, place % lanes, slot.state.in_flight())
            else {
                continue;
            };
            slot.produce_lane = lane;
            if now >= slot.produce_not_before && slot.state.has_outgoing() {
                by_lane
                    .entry((leader, slot.produce_lane))
                    .or_default()
                    .push(index);
            }
        }
        for ((leader, lane), indexes) in by_lane {
            if self
                .produces_in_flight
                .get(&(leader, lane))
                .copied()
                .unwrap_or(0)
                >= self.spec.max_produce_requests_per_connection
            {
                continue;
            }
            let mut topics: Vec<ProduceTopicBatches> = Vec::new();
            let mut sent = Vec::new();
            let mut request_bytes = 0;
            for index in indexes {
                if self.target_path.is_long() {
                    let max_batch_bytes = self.routes[self.slots[index].route].max_batch_bytes;
                    let before = self.slots[index].state.buffered_bytes();
                    match self.slots[index].state.merge_queued(max_batch_bytes) {
                        Ok(merged) => {
                            // A merged batch is rarely the size of its parts together; the
                            // flow's figure must follow, or acknowledgements of merged
                            // batches would leave it drifting from what is held.
                            let after = self.slots[index].state.buffered_bytes();
                            self.buffered_bytes =
                                (self.buffered_bytes + after).saturating_sub(before);
                            self.counters.slow_path.coalesced += merged as u64;
                        }
                        Err(error) => {
                            let offset = self.slots[index].state.progress();
                            self.stop_partition(index, offset, error.to_string());
                            continue;
                        }
                    }
                }
                let Some(outgoing) = self.slots[index].state.next_outgoing() else {
                    continue;
                };
                let stamp = ProducerStamp {
                    producer_id: self.producer.producer_id,
                    producer_epoch: self.producer.producer_epoch,
                    base_sequence: outgoing.sequence,
                    transactional: false,
                };
                let patched = patch(&outgoing.batch, &stamp);
                request_bytes += patched.len();
                let route = &self.routes[self.slots[index].route];
                let chunks = patched.chunks();
                match topics
                    .iter_mut()
                    .find(|t| t.topic_id == route.target_id && t.name == route.target)
                {
                    Some(topic) => topic.partitions.push((self.slots[index].partition, chunks)),
                    None => topics.push(ProduceTopicBatches {
                        name: route.target.clone(),
                        topic_id: route.target_id,
                        partitions: vec![(self.slots[index].partition, chunks)],
                    }),
                }
                sent.push((index, outgoing.sequence));
                if request_bytes >= MAX_PRODUCE_REQUEST_BYTES {
                    break;
                }
            }
            if sent.is_empty() {
                continue;
            }
            *self.produces_in_flight.entry((leader, lane)).or_default() += 1;
            self.counters.produce_requests += 1;
            let target = self.target.clone();
            let timeout_ms = self.spec.produce_timeout.as_millis() as i32;
            let client_id: Arc<str> = self.spec.target.connection.client_id.as_str().into();
            self.tasks.push(Box::pin(async move {
                let result = send_produce(
                    &target,
                    leader,
                    Purpose::Produce,
                    lane,
                    client_id,
                    topics,
                    timeout_ms,
                )
                .await;
                Completion::Produce {
                    broker: leader,
                    lane,
                    sent,
                    result,
                }
            }));
        }
    }

    fn launch_maintenance(&mut self) {
        if self.metadata_wanted && !self.metadata_running {
            self.metadata_wanted = false;
            self.metadata_running = true;
            let source = self.source.clone();
            let target = self.target.clone();
            let source_topics: Vec<String> = self.routes.iter().map(|r| r.source.clone()).collect();
            let target_topics: Vec<String> = self.routes.iter().map(|r| r.target.clone()).collect();
            self.tasks.push(Box::pin(async move {
                let source = source.refresh_metadata(Some(source_topics)).await;
                let target = target.refresh_metadata(Some(target_topics)).await;
                Completion::Metadata { source, target }
            }));
        }
        if self.shape_probe_wanted && !self.shape_probe_running {
            self.launch_shape_probe();
        }
        if self.producer_reset_wanted
            && !self.producer_reset_running
            && self.produces_in_flight.values().all(|n| *n == 0)
        {
            self.producer_reset_running = true;
            let target = self.target.clone();
            self.tasks.push(Box::pin(async move {
                Completion::ProducerId(setup::init_producer_id(&target).await)
            }));
        }
    }

    /// Asks the source for the log sizes of partitions not yet fetched from, so that
    /// they are read ahead from their first fetch on (see `log_shape`).
    fn launch_shape_probe(&mut self) {
        self.shape_probe_wanted = false;
        let mut by_leader: HashMap<i32, Vec<PartitionKey>> = HashMap::new();
        for slot in self.slots.iter_mut().filter(|s| s.is_live()) {
            if slot.shape_probed || slot.read_ahead.knows_shape() {
                continue;
            }
            // Without a leader, asked once metadata names one.
            if let Some(leader) = slot.source_leader {
                slot.shape_probed = true;
                let key = (self.routes[slot.route].source.clone(), slot.partition);
                by_leader.entry(leader).or_default().push(key);
            }
        }
        if by_leader.is_empty() {
            return;
        }
        self.shape_probe_running = true;
        let source = self.source.clone();
        self.tasks.push(Box::pin(async move {
            Completion::Shapes(log_shape::probe(&source, &by_leader).await)
        }));
    }

    fn on_shapes(&mut self, result: Result<HashMap<PartitionKey, f64>, EngineError>) {
        self.shape_probe_running = false;
        // Where no admin connection gave the round trip before the first fetch (see
        // `seed_source_round_trips`), the first fetch connection may have measured it by
        // now: a long link with a backlog gets its connections a period sooner, while the
        // seeded estimates let them read ahead from their first fetch.
        self.links_due = true;
        let shapes = match result {
            Ok(shapes) => shapes,
            Err(error) => {
                // Only the first answers of a long link wait longer; nothing else needs it.
                if self.shape_probe_failure_told {
                    tracing::debug!(flow = %self.spec.name(), %error,
                        "source log sizes unknown; partitions are read ahead once their first answers arrive");
                } else {
                    self.shape_probe_failure_told = true;
                    tracing::info!(flow = %self.spec.name(), %error,
                        "source log sizes unknown; partitions are read ahead once their first answers arrive, \
                         which costs a few round trips at the start of a long link");
                }
                return;
            }
        };
        for slot in &mut self.slots {
            let key = (self.routes[slot.route].source.clone(), slot.partition);
            if let Some(&bytes_per_offset) = shapes.get(&key) {
                tracing::debug!(flow = %self.spec.name(), topic = %key.0, partition = key.1,
                    bytes_per_offset, "read ahead by the source log's average");
                slot.read_ahead.seed_shape(bytes_per_offset);
            }
        }
    }

    fn launch_discovery(&mut self) {
        if self.spec.discovery.is_none() || self.discovery_running {
            return;
        }
        self.discovery_running = true;
        let source = self.source.clone();
        self.tasks.push(Box::pin(async move {
            Completion::Discovered(source.refresh_metadata(None).await)
        }));
    }

    /// Compares the source's topics with what runs: new topics and partitions are
    /// prepared in the background, deleted topics retire.
    fn on_discovered(&mut self, result: Result<Arc<MetadataSnapshot>, WireError>) {
        let Some(discovery) = self.spec.discovery.clone() else {
            self.discovery_running = false;
            return;
        };
        let metadata = match result {
            Ok(metadata) => metadata,
            Err(error) => {
                tracing::warn!(flow = %self.spec.name(), %error, "topic refresh failed; trying again at the next refresh");
                self.discovery_running = false;
                return;
            }
        };
        let topics: Vec<(String, i32)> = metadata
            .topics
            .iter()
            .filter(|(_, t)| t.error.is_none())
            .map(|(name, t)| (name.clone(), t.partitions.len() as i32))
            .collect();
        for index in 0..self.routes.len() {
            let route = &self.routes[index];
            if !route.retired && !metadata.topics.contains_key(&route.source) {
                let topic = route.source.clone();
                self.retire(&topic);
            }
        }
        let running: HashMap<&str, i32> = {
            let mut counts: HashMap<&str, i32> = HashMap::new();
            for slot in &self.slots {
                *counts
                    .entry(self.routes[slot.route].source.as_str())
                    .or_default() += 1;
            }
            counts
        };
        let wanted: Vec<TopicRoute> = (discovery.select)(&topics)
            .into_iter()
            .filter(|route| {
                let partitions = topics
                    .iter()
                    .find(|(name, _)| *name == route.source)
                    .map_or(0, |(_, n)| *n);
                partitions > running.get(route.source.as_str()).copied().unwrap_or(0)
            })
            .collect();
        if wanted.is_empty() {
            self.discovery_running = false;
            return;
        }
        for route in &wanted {
            tracing::info!(flow = %self.spec.name(), topic = %route.source, remote = %route.target,
                "new source topic or partitions found; preparing them");
        }
        let running: HashSet<(String, i32)> = self
            .slots
            .iter()
            .map(|slot| (self.routes[slot.route].source.clone(), slot.partition))
            .collect();
        let setup = self.setup.clone();
        self.tasks.push(Box::pin(async move {
            // Topics and partitions that appear while running start at their beginning.
            let result = setup
                .prepare(&wanted, &running, StartPosition::Earliest)
                .await;
            Completion::Prepared(result)
        }));
    }

    /// A source topic was deleted: its partitions stop; the target topic is kept.
    fn retire(&mut self, source_topic: &str) {
        let Some(&index) = self.by_source_name.get(source_topic) else {
            return;
        };
        if self.routes[index].retired {
            return;
        }
        self.routes[index].retired = true;
        let retiring: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].route == index)
            .collect();
        for slot in retiring {
            self.slots[slot].retired = true;
            self.drop_held(slot);
            self.release_unsent(slot);
        }
        tracing::warn!(
            flow = %self.spec.name(),
            topic = %source_topic,
            remote = %self.routes[index].target,
            "source topic was deleted: its mirroring stopped; the target topic is kept"
        );
        self.publish_routes();
    }

    fn progress_to_commit(&self) -> (ProgressOffsets, Vec<(usize, i64)>) {
        let mut offsets: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
        let mut committed = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let progress = slot.state.progress();
            if progress != self.committed[index] {
                offsets
                    .entry(self.routes[slot.route].target.clone())
                    .or_default()
                    .push((slot.partition, progress));
                committed.push((index, progress));
            }
        }
        (offsets, committed)
    }

    /// Progress `(slot, next source offset)` is committed on the target: remembered,
    /// and told to the tasks beside the flow.
    fn on_progress_committed(&mut self, committed: Vec<(usize, i64)>) {
        for (index, offset) in committed {
            self.committed[index] = offset;
            if let Some(events) = &self.events {
                let slot = &self.slots[index];
                let _ = events.send(FlowEvent::Committed {
                    source_topic: self.routes[slot.route].source.as_str().into(),
                    partition: slot.partition,
                    next_source_offset: offset,
                });
            }
        }
    }

    fn launch_commit(&mut self) {
        if self.commit_running {
            return;
        }
        let (offsets, committed) = self.progress_to_commit();
        if committed.is_empty() {
            return;
        }
        self.commit_running = true;
        let target = self.target.clone();
        let group = self.spec.progress_group();
        self.tasks.push(Box::pin(async move {
            let result = setup::commit_progress(&target, &group, &offsets).await;
            Completion::Commit { result, committed }
        }));
    }

    fn complete(&mut self, done: Completion) {
        match done {
            Completion::Fetch {
                ticket,
                asked,
                reserved,
                sessionless,
                result,
            } => {
                self.reserved_fetch_bytes = self.reserved_fetch_bytes.saturating_sub(reserved);
                self.on_fetch(ticket, asked, sessionless, result)
            }
            Completion::Produce {
                broker,
                lane,
                sent,
                result,
            } => self.on_produce(broker, lane, sent, result),
            Completion::Metadata { source, target } => self.on_metadata(source, target),
            Completion::Commit { result, committed } => {
                self.commit_running = false;
                match result {
                    Ok(()) => self.on_progress_committed(committed),
                    Err(error) => {
                        tracing::warn!(flow = %self.spec.name(), %error, "progress commit failed; retrying at the next interval")
                    }
                }
            }
            Completion::ProducerId(result) => {
                self.producer_reset_running = false;
                match result {
                    Ok(identity) => {
                        tracing::warn!(flow = %self.spec.name(), producer_id = identity.producer_id,
                            "new producer identity on the target; unacknowledged batches are sent again");
                        self.producer = identity;
                        self.producer_reset_wanted = false;
                        for slot in &mut self.slots {
                            slot.state.reset_sequences();
                        }
                    }
                    Err(error) => {
                        tracing::warn!(flow = %self.spec.name(), %error, "InitProducerId failed; retrying")
                    }
                }
            }
            Completion::LogBounds { slot, result } => self.on_log_bounds(slot, result),
            Completion::Discovered(result) => self.on_discovered(result),
            Completion::Shapes(result) => self.on_shapes(result),
            Completion::Prepared(result) => {
                self.discovery_running = false;
                match result {
                    Ok(prepared) => {
                        for topic in &prepared.vanished {
                            self.retire(topic);
                        }
                        self.integrate(prepared);
                    }
                    Err(error) => tracing::warn!(flow = %self.spec.name(), %error,
                        "could not prepare newly found topics; trying again at the next refresh"),
                }
            }
        }
    }

    fn on_metadata(
        &mut self,
        source: Result<Arc<MetadataSnapshot>, WireError>,
        target: Result<Arc<MetadataSnapshot>, WireError>,
    ) {
        self.metadata_running = false;
        match (source, target) {
            (Ok(source), Ok(target)) => {
                self.shape_probe_wanted = true;
                for slot in &mut self.slots {
                    let route = &self.routes[slot.route];
                    slot.source_leader = source
                        .topics
                        .get(&route.source)
                        .and_then(|t| t.partitions.get(&slot.partition))
                        .map(|p| p.leader)
                        .filter(|l| *l >= 0);
                    slot.target_leader = target
                        .topics
                        .get(&route.target)
                        .and_then(|t| t.partitions.get(&slot.partition))
                        .map(|p| p.leader)
                        .filter(|l| *l >= 0);
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(flow = %self.spec.name(), %error, "metadata refresh failed; retrying");
                self.metadata_wanted = true;
            }
        }
    }

    fn retry_later(&mut self, slot: usize, fetch: bool) {
        let now = Instant::now();
        let slot = &mut self.slots[slot];
        if fetch {
            slot.fetch_failures += 1;
            slot.fetch_not_before = now + self.backoff.delay(slot.fetch_failures, &mut rand::rng());
        } else {
            slot.produce_failures += 1;
            slot.produce_not_before =
                now + self.backoff.delay(slot.produce_failures, &mut rand::rng());
        }
    }

    fn on_fetch(
        &mut self,
        ticket: LaneTicket,
        asked: Vec<(usize, i64)>,
        sessionless: bool,
        result: Result<FetchedResponse, WireError>,
    ) {
        let (broker, lane) = ticket.key;
        // From a replaced connection: its answer still serves its partitions, but the
        // lane's session and connection are the new one's.
        let current = self.fetch_lanes.on_ended(ticket, &asked);
        let now = Instant::now();
        let mut answered: HashMap<usize, Answered> = HashMap::new();
        for &(index, offset) in &asked {
            if let Some(fetch) = self.slots[index].read_ahead.on_answered(offset, now) {
                answered.insert(index, fetch);
            }
        }
        let response = match result {
            Ok(FetchedResponse {
                response,
                version,
                connection,
            }) => {
                match self.fetch_sessions.get_mut(&(broker, lane)) {
                    _ if !current => {}
                    Some(_) if sessionless => {}
                    Some(session) => session.on_response(response.error_code, response.session_id),
                    None => {
                        self.fetch_sessions
                            .insert((broker, lane), FetchSession::new(version));
                    }
                }
                if current {
                    self.fetch_connections.insert((broker, lane), connection);
                }
                response
            }
            Err(error) if !current => {
                // The partitions' next fetches go out on the lane's new connection.
                tracing::debug!(flow = %self.spec.name(), broker, lane, %error,
                    "fetch on a replaced connection failed");
                return;
            }
            Err(error) => {
                tracing::warn!(flow = %self.spec.name(), broker, %error, "fetch failed; retrying after backoff");
                if let Some(session) = self.fetch_sessions.get_mut(&(broker, lane)) {
                    session.reset();
                }
                self.metadata_wanted = true;
                for (index, _) in asked {
                    self.retry_later(index, true);
                }
                return;
            }
        };
        if matches!(
            response.error_code.err(),
            Some(ResponseError::FetchSessionIdNotFound | ResponseError::InvalidFetchSessionEpoch)
        ) {
            tracing::debug!(flow = %self.spec.name(), broker, "fetch session lost; the next fetch opens a new one");
            return;
        }
        if let Some(error) = response.error_code.err() {
            tracing::warn!(flow = %self.spec.name(), broker, ?error, "fetch refused as a whole; retrying");
            self.metadata_wanted = true;
            for (index, _) in asked {
                self.retry_later(index, true);
            }
            return;
        }
        let asked: HashMap<usize, i64> = asked.into_iter().collect();
        for topic in response.responses {
            let route = if topic.topic_id.is_nil() {
                self.by_source_name.get(topic.topic.0.as_str()).copied()
            } else {
                self.by_source_id.get(&topic.topic_id).copied()
            };
            let Some(route) = route else { continue };
            for data in topic.partitions {
                let Some(&index) = self.slot_index.get(&(route, data.partition_index)) else {
                    continue;
                };
                // A partition that moved to another lane may still answer here once.
                let Some(&offset) = asked.get(&index) else {
                    continue;
                };
                self.on_fetched_partition(index, offset, answered.get(&index).copied(), data);
            }
        }
    }

    /// One partition's part of a fetch answer, for a fetch at `offset`.
    fn on_fetched_partition(
        &mut self,
        index: usize,
        offset: i64,
        answered: Option<Answered>,
        data: kafka_protocol::messages::fetch_response::PartitionData,
    ) {
        if !self.slots[index].is_live() {
            return;
        }
        let position = self.slots[index].state.fetch_position();
        // An answer for a fetch ahead of the position is not needed yet: any failure is
        // met again, and handled, by the fetch at the position.
        let ahead = offset > position;
        if let Some(error) = data.error_code.err() {
            match classify_fetch_error(error) {
                FetchOutcome::Retry {
                    refresh_metadata, ..
                } => {
                    self.metadata_wanted |= refresh_metadata;
                    if !ahead {
                        self.retry_later(index, true);
                    }
                }
                _ if ahead => {}
                FetchOutcome::OutOfRange => self.launch_log_bounds(index),
                FetchOutcome::Stop { error } => {
                    self.stop_partition(
                        index,
                        position,
                        format!("source fetch failed: {error:?} — {}", advice(error)),
                    );
                }
            }
            return;
        }
        let slot = &mut self.slots[index];
        slot.state
            .set_high_watermark(if data.last_stable_offset >= 0 {
                data.last_stable_offset
            } else {
                data.high_watermark
            });
        if !ahead {
            slot.fetch_failures = 0;
        }
        let records = data.records.unwrap_or_default();
        if records.is_empty() {
            return;
        }
        self.counters.fetched_bytes += records.len() as u64;
        tracing::debug!(flow = %self.spec.name(), partition = slot.partition, offset, position,
            bytes = records.len(), ahead,
            expected_end = answered.and_then(|a| a.expected_end), "fetched");
        if let Some(answered) = answered {
            slot.read_ahead.observe_fetch_time(answered.took);
        }
        // An answer from before the position (a fetch overtaken by one read ahead) ends
        // where it ends, but ingest sees only what lies beyond the position.
        let expected_end = answered
            .and_then(|answered| answered.expected_end)
            .filter(|_| offset >= position);
        let aborted: Option<Vec<(i64, i64)>> = data.aborted_transactions.map(|list| {
            list.iter()
                .map(|a| (a.producer_id.0, a.first_offset))
                .collect()
        });
        if ahead {
            let before = slot.read_ahead.held_bytes();
            slot.read_ahead.hold(offset, expected_end, records, aborted);
            self.held_bytes = self.held_bytes + slot.read_ahead.held_bytes() - before;
        } else {
            self.ingest_at_position(index, records, aborted, expected_end);
        }
        self.take_read_ahead(index);
    }

    /// Ingests the answers read ahead that continue from the partition's position. Also
    /// after an answer is held: one that starts inside the batch at the position (a
    /// fetch estimated just past a short answer) is usable at once, and no other fetch
    /// would be sent for the offsets it covers.
    fn take_read_ahead(&mut self, index: usize) {
        loop {
            let slot = &mut self.slots[index];
            if !slot.is_live() {
                break;
            }
            let before = slot.read_ahead.held_bytes();
            let ready = slot.read_ahead.take_ready(slot.state.fetch_position());
            self.held_bytes -= before - slot.read_ahead.held_bytes();
            self.counters.fetched_twice_bytes += slot.read_ahead.take_passed_bytes();
            let Some(answer) = ready else {
                break;
            };
            self.counters.read_ahead_answers += 1;
            // Its reach was learnt when it was held.
            self.ingest_at_position(index, answer.records, answer.aborted, None);
        }
    }

    /// Ingests fetched records from the partition's position on, the answer to a fetch
    /// expected to end at `expected_end` (see `Answered`).
    fn ingest_at_position(
        &mut self,
        index: usize,
        records: Bytes,
        aborted: Option<Vec<(i64, i64)>>,
        expected_end: Option<i64>,
    ) {
        let slot = &mut self.slots[index];
        let mut aborted = aborted.map(AbortedTransactions::new);
        let max_batch_bytes = self.routes[slot.route].max_batch_bytes;
        let position = slot.state.fetch_position();
        let bytes = records.len();
        let fetched = records.clone();
        match ingest(records, position, aborted.as_mut(), max_batch_bytes) {
            Ok(ingested) => {
                let before = slot.state.buffered_bytes();
                slot.larger_fetch = ingested.needs_larger_fetch;
                slot.read_ahead.observe_answer_end(
                    expected_end,
                    &fetched,
                    ingested.truncated_tail_bytes,
                    ingested.next_fetch_position,
                );
                // Only what lies beyond the position describes the offsets it advanced.
                slot.read_ahead.observe(
                    bytes
                        .saturating_sub(ingested.bytes_before_position as usize)
                        .saturating_sub(ingested.truncated_tail_bytes),
                    ingested.next_fetch_position - position,
                    ingested.items.len(),
                );
                slot.state
                    .accept(ingested.items, ingested.next_fetch_position);
                self.buffered_bytes += slot.state.buffered_bytes() - before;
                self.counters.dropped_control += ingested.dropped_control;
                self.counters.dropped_aborted += ingested.dropped_aborted;
                self.counters.fetched_twice_bytes += ingested.bytes_before_position;
                self.counters.cut_off_bytes += ingested.truncated_tail_bytes as u64;
                self.counters.slow_path.add(&ingested.slow_path);
            }
            Err(error) => {
                let offset = error.offset;
                self.stop_partition(index, offset, error.to_string());
            }
        }
    }

    fn launch_log_bounds(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let Some(leader) = slot.source_leader else {
            self.metadata_wanted = true;
            self.retry_later(index, true);
            return;
        };
        slot.reading_bounds = true;
        let topic = self.routes[slot.route].source.clone();
        let partition = slot.partition;
        let source = self.source.clone();
        self.tasks.push(Box::pin(async move {
            let request: HashMap<i32, Vec<(String, i32)>> =
                HashMap::from([(leader, vec![(topic.clone(), partition)])]);
            let result = async {
                let earliest = setup::list_offsets(&source, &request, -2).await?;
                let latest = setup::list_offsets(&source, &request, -1).await?;
                let key = (topic, partition);
                Ok((
                    earliest.get(&key).copied().unwrap_or(0),
                    latest.get(&key).copied().unwrap_or(0),
                ))
            }
            .await;
            Completion::LogBounds {
                slot: index,
                result,
            }
        }));
    }

    fn on_log_bounds(&mut self, index: usize, result: Result<(i64, i64), EngineError>) {
        self.slots[index].reading_bounds = false;
        let (earliest, latest) = match result {
            Ok(bounds) => bounds,
            Err(error) => {
                tracing::warn!(flow = %self.spec.name(), %error, "could not read the source log bounds; retrying");
                self.retry_later(index, true);
                return;
            }
        };
        let position = self.slots[index].state.fetch_position();
        if position < earliest && self.slots[index].state.is_idle() {
            let route = &self.routes[self.slots[index].route];
            tracing::error!(
                flow = %self.spec.name(), topic = %route.source, partition = self.slots[index].partition,
                from = position, to = earliest, lost = earliest - position,
                "source offsets were deleted by retention before strait copied them; continuing from the log start (raise retention on the source or keep strait running)"
            );
            self.drop_held(index);
            let slot = &mut self.slots[index];
            slot.state = PartitionState::new(earliest);
        } else if position > latest {
            self.stop_partition(
                index,
                position,
                format!("fetch position {position} is past the source log end {latest}: the source log was truncated (unclean leader election or topic recreated); inspect the topic, then reset this flow's progress group"),
            );
        } else {
            self.retry_later(index, true);
        }
    }

    fn on_produce(
        &mut self,
        broker: i32,
        lane: u16,
        sent: Vec<(usize, i32)>,
        result: Result<ProduceResponse, WireError>,
    ) {
        if let Some(n) = self.produces_in_flight.get_mut(&(broker, lane)) {
            *n = n.saturating_sub(1);
        }
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(flow = %self.spec.name(), broker, %error, "produce failed; the batches are sent again with their sequence numbers");
                self.metadata_wanted = true;
                self.counters.produce_retries += sent.len() as u64;
                for (index, sequence) in sent {
                    self.slots[index].state.on_retriable_failure(sequence);
                    self.retry_later(index, false);
                }
                return;
            }
        };
        let sequence_of: HashMap<usize, i32> = sent.iter().copied().collect();
        let mut answered = Vec::new();
        for topic in response.responses {
            let route = if topic.topic_id.is_nil() {
                self.by_target_name.get(topic.name.0.as_str()).copied()
            } else {
                self.by_target_id.get(&topic.topic_id).copied()
            };
            let Some(route) = route else { continue };
            for partition in topic.partition_responses {
                let Some(&index) = self.slot_index.get(&(route, partition.index)) else {
                    continue;
                };
                let Some(&sequence) = sequence_of.get(&index) else {
                    continue;
                };
                answered.push(index);
                let message = partition
                    .error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                self.on_produced_partition(
                    index,
                    sequence,
                    classify_produce(partition.error_code, partition.base_offset),
                    message,
                );
            }
        }
        for (index, sequence) in sent {
            if !answered.contains(&index) {
                tracing::warn!(flow = %self.spec.name(), broker, "produce response left out a partition; sending it again");
                self.slots[index].state.on_retriable_failure(sequence);
            }
        }
    }

    fn on_produced_partition(
        &mut self,
        index: usize,
        sequence: i32,
        outcome: ProduceOutcome,
        message: String,
    ) {
        match outcome {
            ProduceOutcome::Acked { base_offset } => {
                let slot = &mut self.slots[index];
                slot.produce_failures = 0;
                let before = slot.state.buffered_bytes();
                let settled = slot.state.on_acked(sequence, base_offset);
                self.buffered_bytes -= before - slot.state.buffered_bytes();
                self.counters.records += settled.records;
                self.counters.bytes += settled.bytes;
                self.counters.batches += settled.mapped.len() as u64;
                if let (Some(events), false) = (&self.events, settled.mapped.is_empty()) {
                    let slot = &self.slots[index];
                    let route = &self.routes[slot.route];
                    let _ = events.send(FlowEvent::Mapped {
                        source_topic: route.source.as_str().into(),
                        target_topic: route.target.as_str().into(),
                        partition: slot.partition,
                        batches: settled.mapped,
                    });
                }
            }
            ProduceOutcome::Retry {
                error,
                refresh_metadata,
            } => {
                tracing::debug!(flow = %self.spec.name(), ?error, "produce will be retried");
                self.counters.produce_retries += 1;
                self.metadata_wanted |= refresh_metadata;
                self.slots[index].state.on_retriable_failure(sequence);
                self.retry_later(index, false);
            }
            ProduceOutcome::ResetProducer { error }
                if error == ResponseError::OutOfOrderSequenceNumber
                    && !self.slots[index].state.is_first_unsettled(sequence) =>
            {
                // An earlier batch of this partition failed; this one follows it again.
                self.counters.produce_retries += 1;
                self.slots[index].state.on_retriable_failure(sequence);
            }
            ProduceOutcome::ResetProducer { error } => {
                tracing::warn!(flow = %self.spec.name(), ?error, "target lost the producer state; taking a new producer identity");
                self.counters.produce_retries += 1;
                self.slots[index].state.on_retriable_failure(sequence);
                self.producer_reset_wanted = true;
            }
            ProduceOutcome::Stop { error } => {
                let offset = self.slots[index].state.progress();
                self.slots[index].state.on_retriable_failure(sequence);
                self.stop_partition(
                    index,
                    offset,
                    format!(
                        "target refused the batch: {error:?} {message} — {}",
                        advice(error)
                    ),
                );
            }
        }
    }
}

/// A fetch response, the Fetch version it was asked at (sessions need v7) and the
/// connection it came on.
struct FetchedResponse {
    response: FetchResponse,
    version: i16,
    connection: Connection,
}

async fn send_fetch(
    source: &ClusterClient,
    leader: i32,
    lane: u16,
    request: FetchRequest,
    announce: Option<mpsc::UnboundedSender<((i32, u16), Connection)>>,
) -> Result<FetchedResponse, WireError> {
    let connection = source.connection_lane(leader, Purpose::Fetch, lane).await?;
    if let Some(announce) = announce {
        // The flow may have finished; then nobody needs the figure.
        let _ = announce.send(((leader, lane), connection.clone()));
    }
    let version = connection.version_for::<FetchRequest>().unwrap_or(4);
    let response = connection.request_at_version(request, version).await?;
    connection.throttle(response.throttle_time_ms);
    Ok(FetchedResponse {
        response,
        version,
        connection,
    })
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

/// net.ipv4.tcp_rmem's maximum in this network namespace, the ceiling of autotuned
/// receive buffers.
fn autotune_receive_max() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem").ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

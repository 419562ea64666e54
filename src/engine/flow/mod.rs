//! The driver of one replication flow: it owns every partition's state and runs fetches,
//! produces, metadata refreshes and progress commits as futures whose completions come
//! back to this one task. The decisions live in the pure modules beside it; this file
//! holds the flow's state, its start and its loop, and its children the handlers of one
//! concern each: `fetching`, `producing`, `links` (the source links measured each period)
//! and `upkeep` (metadata, new topics, the log-shape probe, progress commits).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::ProduceResponse;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::wire::{Backoff, ClusterClient, Connection, MetadataSnapshot, WireError};

use super::diagnosis::TimeShare;
use super::error::EngineError;
use super::events::{FlowEvent, RouteInfo};
use super::fetch_lanes::{FetchLanes, LaneTicket};
use super::fetch_session::FetchSession;
use super::lanes::{fetch_sizing, memory_budget, FetchSizing};
use super::log_shape::PartitionKey;
use super::partition::PartitionState;
use super::read_ahead::ReadAhead;
use super::routes::{Prepared, RouteSetup};
use super::setup::{self, ProducerIdentity};
use super::source_links::SourceLinks;
use super::spec::FlowSpec;
use super::stats::{status_line, FlowCounters, StatusSample};
use super::target_path::{produce_connections, TargetPath};

mod fetching;
mod links;
mod producing;
mod upkeep;

use fetching::FetchedResponse;

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

    fn waits_for_target(&self) -> bool {
        let cap = self.sizing.partition_buffer_cap;
        self.slots
            .iter()
            .any(|slot| slot.is_live() && slot.waits_for_target(cap))
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
}

/// net.ipv4.tcp_rmem's maximum in this network namespace, the ceiling of autotuned
/// receive buffers.
fn autotune_receive_max() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem").ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

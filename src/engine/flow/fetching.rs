//! Fetching: which partitions ask on which lane, and what their answers do (ingested at
//! the position, held when read ahead, retried, or a partition stopped).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::sync::mpsc;

use crate::batch::AbortedTransactions;
use crate::engine::error::EngineError;
use crate::engine::fetch_lanes::LaneTicket;
use crate::engine::fetch_session::{FetchSession, SessionRequest, Wanted};
use crate::engine::ingest::ingest;
use crate::engine::lanes::{
    fetches_per_lane, reads_ahead, worth_a_connection, LaneAssignment, LanePartition,
};
use crate::engine::outcome::{advice, classify_fetch_error, FetchOutcome};
use crate::engine::partition::PartitionState;
use crate::engine::read_ahead::{read_ahead_cap, Answered, NextFetch};
use crate::engine::setup;
use crate::wire::{ClusterClient, Connection, Purpose, WireError};

use super::{
    Completion, FlowRunner, Slot, FIRST_FETCH_BYTES, LANES_PER_RESENDING_PARTITION,
    MAX_FETCH_RESPONSE_BYTES,
};

impl FlowRunner {
    pub(super) fn launch_fetches(&mut self) {
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

    pub(super) fn on_fetch(
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
    pub(super) fn on_fetched_partition(
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
    pub(super) fn take_read_ahead(&mut self, index: usize) {
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
    pub(super) fn ingest_at_position(
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

    pub(super) fn launch_log_bounds(&mut self, index: usize) {
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

    pub(super) fn on_log_bounds(&mut self, index: usize, result: Result<(i64, i64), EngineError>) {
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
}

/// A fetch response, the Fetch version it was asked at (sessions need v7) and the
/// connection it came on.
pub(super) struct FetchedResponse {
    response: FetchResponse,
    version: i16,
    connection: Connection,
}

pub(super) async fn send_fetch(
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

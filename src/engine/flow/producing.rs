//! Producing: batches patched into produce requests per target connection, and what the
//! acknowledgements settle.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ProduceResponse;

use crate::batch::{patch, ProducerStamp};
use crate::engine::events::FlowEvent;
use crate::engine::outcome::{advice, classify_produce, ProduceOutcome};
use crate::engine::target_path::produce_lane;
use crate::wire::{send_produce, ProduceTopicBatches, Purpose, WireError};

use super::{Completion, FlowRunner, MAX_PRODUCE_REQUEST_BYTES};

impl FlowRunner {
    pub(super) fn launch_produces(&mut self) {
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

    pub(super) fn on_produce(
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

    pub(super) fn on_produced_partition(
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

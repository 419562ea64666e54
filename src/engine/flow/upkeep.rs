//! Upkeep beside the copy: metadata refreshes, new topics and partitions, the log-shape
//! probe, and progress commits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::engine::error::EngineError;
use crate::engine::events::FlowEvent;
use crate::engine::log_shape::{self, PartitionKey};
use crate::engine::setup;
use crate::engine::spec::{StartPosition, TopicRoute};
use crate::wire::{MetadataSnapshot, WireError};

use super::{Completion, FlowRunner, ProgressOffsets};

impl FlowRunner {
    pub(super) fn launch_maintenance(&mut self) {
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
    pub(super) fn launch_shape_probe(&mut self) {
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

    pub(super) fn on_shapes(&mut self, result: Result<HashMap<PartitionKey, f64>, EngineError>) {
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

    pub(super) fn launch_discovery(&mut self) {
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
    pub(super) fn on_discovered(&mut self, result: Result<Arc<MetadataSnapshot>, WireError>) {
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
    pub(super) fn retire(&mut self, source_topic: &str) {
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

    pub(super) fn progress_to_commit(&self) -> (ProgressOffsets, Vec<(usize, i64)>) {
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
    pub(super) fn on_progress_committed(&mut self, committed: Vec<(usize, i64)>) {
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

    pub(super) fn launch_commit(&mut self) {
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

    pub(super) fn on_metadata(
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
                    slot.source_leader = source.leader(&route.source, slot.partition);
                    slot.target_leader = target.leader(&route.target, slot.partition);
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(flow = %self.spec.name(), %error, "metadata refresh failed; retrying");
                self.metadata_wanted = true;
            }
        }
    }
}

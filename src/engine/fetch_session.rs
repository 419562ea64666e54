//! Incremental fetch sessions (KIP-227), one per source broker. After a full fetch
//! the broker keeps each partition's fetch offset; later requests name only partitions
//! that are new or moved, and list those to drop, so many idle partitions cost nothing
//! per request. Pure: the driver builds requests from what this returns.

use std::collections::HashMap;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

/// What one partition asks for in a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
}

/// The request to send: its session fields, the partitions to list and those to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    pub send: Vec<Wanted>,
    pub forget: Vec<(String, Uuid, i32)>,
}

/// Kafka's epoch values: 0 opens a session with a full fetch, -1 fetches without one.
const OPEN_SESSION_EPOCH: i32 = 0;
const NO_SESSION_EPOCH: i32 = -1;
/// Only committed records: a mirror must not copy what an aborted transaction wrote
/// before its abort marker.
const READ_COMMITTED: i8 = 1;
/// A consumer, not a follower replica.
const CONSUMER_REPLICA_ID: i32 = -1;

impl SessionRequest {
    /// A full fetch outside any session: for connections that keep several fetches on
    /// their way, which a session (one answer before the next request) cannot.
    pub fn sessionless(wanted: Vec<Wanted>) -> Self {
        SessionRequest {
            session_id: 0,
            epoch: NO_SESSION_EPOCH,
            send: wanted,
            forget: Vec::new(),
        }
    }

    /// The Fetch request: partitions grouped under their topics in the order wanted,
    /// answers of at most `max_bytes` in all, waiting at most `max_wait_ms` for data.
    pub fn into_fetch_request(self, max_bytes: i32, max_wait_ms: i32) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for want in self.send {
            let partition = FetchPartition::default()
                .with_partition(want.partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(want.fetch_offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(want.max_bytes);
            match topics
                .iter_mut()
                .find(|t| t.topic_id == want.topic_id && t.topic.0.as_str() == want.topic)
            {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(want.topic)))
                        .with_topic_id(want.topic_id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for (topic, topic_id, partition) in self.forget {
            match forgotten
                .iter_mut()
                .find(|t| t.topic_id == topic_id && t.topic.0.as_str() == topic)
            {
                Some(entry) => entry.partitions.push(partition),
                None => forgotten.push(
                    ForgottenTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_topic_id(topic_id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(CONSUMER_REPLICA_ID))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_isolation_level(READ_COMMITTED)
            .with_session_id(self.session_id)
            .with_session_epoch(self.epoch)
            .with_topics(topics)
            .with_forgotten_topics_data(forgotten)
    }
}

#[derive(Debug, Default)]
pub struct FetchSession {
    /// 0 while no session is open.
    session_id: i32,
    next_epoch: i32,
    /// What the broker holds for each partition of the open session.
    known: HashMap<(Uuid, String, i32), (i64, i32)>,
    /// Brokers without sessions (Fetch before v7) or after a refusal storm.
    disabled: bool,
}

impl FetchSession {
    /// A session handler for a broker whose Fetch version is `fetch_version`.
    pub fn new(fetch_version: i16) -> Self {
        FetchSession {
            disabled: fetch_version < 7,
            ..FetchSession::default()
        }
    }

    /// The request for the partitions wanted now. Partitions of the session that are
    /// not wanted (paused for back-pressure, or gone) are dropped from it.
    pub fn request(&mut self, wanted: &[Wanted]) -> SessionRequest {
        if self.disabled {
            return SessionRequest::sessionless(wanted.to_vec());
        }
        if self.session_id == 0 {
            self.known = wanted
                .iter()
                .map(|w| (key(w), (w.fetch_offset, w.max_bytes)))
                .collect();
            self.next_epoch = OPEN_SESSION_EPOCH;
            return SessionRequest {
                session_id: 0,
                epoch: OPEN_SESSION_EPOCH,
                send: wanted.to_vec(),
                forget: Vec::new(),
            };
        }
        let mut send = Vec::new();
        let mut next: HashMap<(Uuid, String, i32), (i64, i32)> = HashMap::new();
        for w in wanted {
            let state = (w.fetch_offset, w.max_bytes);
            if self.known.get(&key(w)) != Some(&state) {
                send.push(w.clone());
            }
            next.insert(key(w), state);
        }
        let mut forget: Vec<(String, Uuid, i32)> = self
            .known
            .keys()
            .filter(|k| !next.contains_key(*k))
            .map(|(id, topic, partition)| (topic.clone(), *id, *partition))
            .collect();
        forget.sort();
        self.known = next;
        SessionRequest {
            session_id: self.session_id,
            epoch: self.next_epoch,
            send,
            forget,
        }
    }

    /// The broker answered the request built last with `error_code` (top level) and
    /// `session_id`.
    pub fn on_response(&mut self, error_code: i16, session_id: i32) {
        if self.disabled {
            return;
        }
        if error_code != 0 {
            // FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH and the like: start
            // over with a full fetch.
            self.reset();
            return;
        }
        if self.session_id == 0 {
            if session_id == 0 {
                // The broker keeps no session for us (its cache is full): fetch in full.
                self.known.clear();
                return;
            }
            self.session_id = session_id;
        }
        self.next_epoch = next_epoch(self.next_epoch);
    }

    /// After a failed request (its outcome unknown) the next fetch is a full one.
    pub fn reset(&mut self) {
        self.session_id = 0;
        self.next_epoch = OPEN_SESSION_EPOCH;
        self.known.clear();
    }
}

fn key(w: &Wanted) -> (Uuid, String, i32) {
    (w.topic_id, w.topic.clone(), w.partition)
}

/// Epochs run 1..=i32::MAX and then wrap to 1 (0 opens a session).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(partition: i32, offset: i64) -> Wanted {
        Wanted {
            topic: "t".into(),
            topic_id: Uuid::from_u128(7),
            partition,
            fetch_offset: offset,
            max_bytes: 1024,
        }
    }

    #[test]
    fn a_session_opens_with_a_full_fetch_then_sends_only_moved_partitions() {
        let mut session = FetchSession::new(12);
        let first = session.request(&[wanted(0, 10), wanted(1, 20)]);
        assert_eq!((first.session_id, first.epoch), (0, 0));
        assert_eq!(first.send.len(), 2);
        session.on_response(0, 99);

        let second = session.request(&[wanted(0, 15), wanted(1, 20)]);
        assert_eq!((second.session_id, second.epoch), (99, 1));
        assert_eq!(second.send, vec![wanted(0, 15)], "partition 1 did not move");
        assert!(second.forget.is_empty());
        session.on_response(0, 99);

        let third = session.request(&[wanted(0, 15)]);
        assert_eq!(third.epoch, 2);
        assert!(third.send.is_empty());
        assert_eq!(
            third.forget,
            vec![("t".into(), Uuid::from_u128(7), 1)],
            "paused: dropped"
        );
        session.on_response(0, 99);

        let fourth = session.request(&[wanted(0, 15), wanted(1, 20)]);
        assert_eq!(fourth.send, vec![wanted(1, 20)], "resumed: added again");
    }

    #[test]
    fn a_refused_session_starts_over_with_a_full_fetch() {
        let mut session = FetchSession::new(12);
        session.request(&[wanted(0, 10)]);
        session.on_response(0, 5);
        session.request(&[wanted(0, 11)]);
        session.on_response(71, 0); // INVALID_FETCH_SESSION_EPOCH
        let again = session.request(&[wanted(0, 11)]);
        assert_eq!((again.session_id, again.epoch), (0, 0));
        assert_eq!(again.send, vec![wanted(0, 11)]);
    }

    #[test]
    fn without_a_session_from_the_broker_every_fetch_is_full() {
        let mut session = FetchSession::new(12);
        session.request(&[wanted(0, 10)]);
        session.on_response(0, 0);
        let next = session.request(&[wanted(0, 10)]);
        assert_eq!((next.session_id, next.epoch), (0, 0));
        assert_eq!(next.send.len(), 1);
    }

    #[test]
    fn old_brokers_fetch_without_sessions() {
        let mut session = FetchSession::new(6);
        let request = session.request(&[wanted(0, 10)]);
        assert_eq!((request.session_id, request.epoch), (0, -1));
        session.on_response(0, 0);
        assert_eq!(session.request(&[wanted(0, 10)]).send.len(), 1);
    }

    #[test]
    fn a_request_lists_partitions_under_their_topics_and_drops_the_forgotten() {
        let other = |partition: i32, offset: i64| Wanted {
            topic: "u".into(),
            topic_id: Uuid::from_u128(8),
            ..wanted(partition, offset)
        };
        let session = SessionRequest {
            session_id: 42,
            epoch: 3,
            send: vec![wanted(0, 10), other(5, 50), wanted(2, 30)],
            forget: vec![
                ("t".into(), Uuid::from_u128(7), 1),
                ("u".into(), Uuid::from_u128(8), 4),
                ("t".into(), Uuid::from_u128(7), 3),
            ],
        };
        let request = session.into_fetch_request(8 << 20, 500);
        assert_eq!((request.session_id, request.session_epoch), (42, 3));
        assert_eq!(
            (request.max_bytes, request.max_wait_ms, request.min_bytes),
            (8 << 20, 500, 1)
        );
        assert_eq!(request.isolation_level, 1, "read committed");
        assert_eq!(request.replica_id, BrokerId(-1));
        // (topic, its id, then each partition's number, offset and size limit)
        type Listed<'a> = (&'a str, Uuid, Vec<(i32, i64, i32)>);
        let listed: Vec<Listed<'_>> = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
                    .collect();
                (t.topic.0.as_str(), t.topic_id, partitions)
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                ("t", Uuid::from_u128(7), vec![(0, 10, 1024), (2, 30, 1024)]),
                ("u", Uuid::from_u128(8), vec![(5, 50, 1024)]),
            ]
        );
        let forgotten: Vec<(&str, Vec<i32>)> = request
            .forgotten_topics_data
            .iter()
            .map(|t| (t.topic.0.as_str(), t.partitions.clone()))
            .collect();
        assert_eq!(forgotten, vec![("t", vec![1, 3]), ("u", vec![4])]);
    }

    #[test]
    fn a_sessionless_request_is_a_full_fetch_outside_sessions() {
        let request = SessionRequest::sessionless(vec![wanted(0, 10)]).into_fetch_request(1024, 0);
        assert_eq!((request.session_id, request.session_epoch), (0, -1));
        assert_eq!(request.topics.len(), 1);
        assert!(request.forgotten_topics_data.is_empty());
    }

    #[test]
    fn epochs_wrap_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(3), 4);
    }
}

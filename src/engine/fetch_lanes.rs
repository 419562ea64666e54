//! Which fetch connection ("lane" of a source broker) each fetch on its way went out on,
//! and how many each lane carries. A lane's connection can be replaced while fetches are
//! still on the old one: the replacement starts a new generation of the lane, and the old
//! connection's answers still count for their partitions but no longer for the lane, whose
//! new connection takes fetches at once.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// A source broker and one of its fetch connections.
pub type LaneKey = (i32, u16);

/// The lane a fetch goes out on, and which of the lane's connections carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneTicket {
    pub key: LaneKey,
    pub generation: u32,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    ticket: LaneTicket,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct FetchLanes {
    /// Requests on each lane's current connection.
    in_flight: HashMap<LaneKey, usize>,
    /// By (slot, offset) of the partition fetch.
    by_fetch: HashMap<(usize, i64), Sent>,
    generations: HashMap<LaneKey, u32>,
}

impl FetchLanes {
    /// Requests on the current connection of lane `key`.
    pub fn in_flight(&self, key: LaneKey) -> usize {
        self.in_flight.get(&key).copied().unwrap_or(0)
    }

    /// Requests on the current connections of all lanes.
    pub fn total_in_flight(&self) -> usize {
        self.in_flight.values().sum()
    }

    /// What a request sent on lane `key` now goes out with.
    pub fn ticket(&self, key: LaneKey) -> LaneTicket {
        LaneTicket {
            key,
            generation: self.generations.get(&key).copied().unwrap_or(0),
        }
    }

    fn is_current(&self, ticket: LaneTicket) -> bool {
        ticket == self.ticket(ticket.key)
    }

    /// One request went out with `ticket` for the partition fetches `fetches` (slot,
    /// offset). A fetch sent again at the same offset takes the entry over.
    pub fn on_sent(&mut self, ticket: LaneTicket, fetches: &[(usize, i64)], now: Instant) {
        if self.is_current(ticket) {
            *self.in_flight.entry(ticket.key).or_default() += 1;
        }
        for &fetch in fetches {
            self.by_fetch.insert(fetch, Sent { ticket, at: now });
        }
    }

    /// The request sent with `ticket` ended (answered or failed). Returns whether it came
    /// from the lane's current connection: only then does the lane's session or connection
    /// learn from it.
    pub fn on_ended(&mut self, ticket: LaneTicket, fetches: &[(usize, i64)]) -> bool {
        for fetch in fetches {
            if self
                .by_fetch
                .get(fetch)
                .is_some_and(|sent| sent.ticket == ticket)
            {
                self.by_fetch.remove(fetch);
            }
        }
        let current = self.is_current(ticket);
        if current {
            if let Some(n) = self.in_flight.get_mut(&ticket.key) {
                *n = n.saturating_sub(1);
            }
        }
        current
    }

    /// The lane the fetch of slot `index` at `offset` went out on, and whether that lane
    /// still has the connection it went out on.
    pub fn lane_of(&self, index: usize, offset: i64) -> Option<(LaneKey, bool)> {
        let sent = self.by_fetch.get(&(index, offset))?;
        Some((sent.ticket.key, self.is_current(sent.ticket)))
    }

    /// Lanes whose current connection has owed an answer since before `since`.
    pub fn owing_since(&self, since: Instant) -> BTreeSet<LaneKey> {
        self.by_fetch
            .values()
            .filter(|sent| sent.at < since && self.is_current(sent.ticket))
            .map(|sent| sent.ticket.key)
            .collect()
    }

    /// Lane `key` gets a new connection: what is on its way on the old one no longer
    /// counts against the lane.
    pub fn replace(&mut self, key: LaneKey) {
        *self.generations.entry(key).or_default() += 1;
        self.in_flight.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_replaced_lane_takes_fetches_at_once_and_its_old_answers_still_end() {
        let start = Instant::now();
        let mut lanes = FetchLanes::default();
        let lane = (1, 14);
        let old = lanes.ticket(lane);
        lanes.on_sent(old, &[(0, 100)], start);
        lanes.on_sent(old, &[(0, 200), (3, 50)], start);
        assert_eq!(lanes.in_flight(lane), 2);
        assert_eq!(lanes.lane_of(0, 100), Some((lane, true)));

        lanes.replace(lane);
        assert_eq!(lanes.in_flight(lane), 0, "the new connection is free");
        assert_eq!(lanes.lane_of(0, 100), Some((lane, false)));
        let new = lanes.ticket(lane);
        assert_ne!(new, old);
        lanes.on_sent(new, &[(1, 10)], start);
        assert_eq!(lanes.in_flight(lane), 1);

        // The old connection's answer: its fetch ends, the lane's count stays.
        assert!(!lanes.on_ended(old, &[(0, 100)]));
        assert_eq!(lanes.lane_of(0, 100), None);
        assert_eq!(lanes.in_flight(lane), 1);
        assert!(lanes.on_ended(new, &[(1, 10)]));
        assert_eq!(lanes.in_flight(lane), 0);
        assert_eq!(lanes.total_in_flight(), 0);
    }

    #[test]
    fn a_fetch_sent_again_elsewhere_belongs_to_its_second_lane() {
        let start = Instant::now();
        let mut lanes = FetchLanes::default();
        let (first, second) = (lanes.ticket((1, 0)), lanes.ticket((1, 1)));
        lanes.on_sent(first, &[(2, 500)], start);
        lanes.on_sent(second, &[(2, 500)], start);
        // The first sending's answer leaves the second one's entry alone.
        lanes.on_ended(first, &[(2, 500)]);
        assert_eq!(lanes.lane_of(2, 500), Some(((1, 1), true)));
        lanes.on_ended(second, &[(2, 500)]);
        assert_eq!(lanes.lane_of(2, 500), None);
    }

    #[test]
    fn lanes_owe_answers_from_their_oldest_fetch_on_the_current_connection() {
        let start = Instant::now();
        let later = start + Duration::from_secs(2);
        let mut lanes = FetchLanes::default();
        lanes.on_sent(lanes.ticket((1, 0)), &[(0, 0)], start);
        lanes.on_sent(lanes.ticket((1, 1)), &[(1, 0)], later);
        lanes.on_sent(lanes.ticket((1, 2)), &[(2, 0)], start);
        let since = start + Duration::from_secs(1);
        assert_eq!(lanes.owing_since(since), BTreeSet::from([(1, 0), (1, 2)]));
        // A replaced connection's fetches are no longer the lane's.
        lanes.replace((1, 2));
        assert_eq!(lanes.owing_since(since), BTreeSet::from([(1, 0)]));
    }
}

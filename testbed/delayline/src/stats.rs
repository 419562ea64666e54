//! Counters of one direction, printed to the log so that a run can be checked afterwards.

use std::fmt;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    /// Random loss.
    pub lost: u64,
    /// The bottleneck's queue was full.
    pub queue_full: u64,
    /// The ring reached its largest size.
    pub overflow: u64,
    /// Due longer ago than the queue allows on a link without a rate limit: the
    /// forwarder could not keep up. A rate-limited link delivers such packets late.
    pub late: u64,
    /// Dropped while the link was cut.
    pub cut: u64,
    /// The far device refused the packet (e.g. it is down).
    pub write_errors: u64,
    /// Times the far device had no room (the write would block) and delivery waited.
    pub far_full: u64,
    /// The most a delivered packet was behind its due time: how far the forwarder lagged.
    pub most_behind_ns: u64,
    /// The longest one pass of reading this direction's device took, and of writing its
    /// due packets to the far device; and the most the loop woke up after it meant to:
    /// where the time went when the forwarder fell behind.
    pub slowest_read_ns: u64,
    pub slowest_write_ns: u64,
    pub most_overslept_ns: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} packets, {}; dropped: {} lost, {} queue full, {} overflow, {} late, {} cut, {} write errors; \
             far device full {} times, delivered up to {:.1} ms behind time \
             (longest read pass {:.1} ms, write pass {:.1} ms, woke up to {:.1} ms late)",
            self.forwarded_packets,
            Bytes(self.forwarded_bytes),
            self.lost,
            self.queue_full,
            self.overflow,
            self.late,
            self.cut,
            self.write_errors,
            self.far_full,
            self.most_behind_ns as f64 / 1e6,
            self.slowest_read_ns as f64 / 1e6,
            self.slowest_write_ns as f64 / 1e6,
            self.most_overslept_ns as f64 / 1e6,
        )
    }
}

/// A byte count for people: `12.5 MB`.
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0 as f64;
        match self.0 {
            0..1_000 => write!(f, "{} B", self.0),
            1_000..1_000_000 => write!(f, "{:.1} kB", value / 1e3),
            1_000_000..1_000_000_000 => write!(f, "{:.1} MB", value / 1e6),
            _ => write!(f, "{:.2} GB", value / 1e9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_as_a_sentence() {
        let counters = Counters {
            forwarded_packets: 3,
            forwarded_bytes: 12_500_000,
            lost: 1,
            far_full: 2,
            most_behind_ns: 1_250_000,
            slowest_read_ns: 300_000,
            slowest_write_ns: 2_000_000,
            most_overslept_ns: 150_000_000,
            ..Counters::default()
        };
        assert_eq!(
            counters.to_string(),
            "3 packets, 12.5 MB; dropped: 1 lost, 0 queue full, 0 overflow, 0 late, 0 cut, 0 write errors; \
             far device full 2 times, delivered up to 1.2 ms behind time \
             (longest read pass 0.3 ms, write pass 2.0 ms, woke up to 150.0 ms late)"
        );
        assert_eq!(Bytes(999).to_string(), "999 B");
        assert_eq!(Bytes(2_340_000_000).to_string(), "2.34 GB");
    }
}

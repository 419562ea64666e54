//! What the link does to one packet: lose it, or give it the time it arrives at the far
//! end. A token bucket paces packets at the link rate; a packet that would wait in the
//! bottleneck longer than the queue allows is dropped, as a router with a full buffer
//! drops it. Times are nanoseconds on one monotonic clock.

use crate::params::Shaping;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver at this time.
    Deliver(u64),
    /// Random loss.
    Lost,
    /// The bottleneck's buffer is full.
    QueueFull,
}

pub struct Shaper {
    delay_ns: u64,
    queue_ns: u64,
    /// Bits per second, when rate limited.
    rate_bits: Option<u64>,
    /// The bucket holds a burst of about one millisecond at the link rate, and always
    /// at least one packet of the largest size. Tokens count bits times 10^9, so that a
    /// nanosecond earns `rate_bits` of them and integer arithmetic stays exact.
    bucket_size: u128,
    /// Drop when a uniform draw in [0, 1) falls below this.
    loss: f64,
    random: XorShift,
    /// Tokens in the bucket at `bucket_time`.
    tokens: u128,
    bucket_time: u64,
    /// Deliveries never overtake each other, even when the delay shrinks on reload.
    last_due: u64,
}

impl Shaper {
    pub fn new(shaping: &Shaping, largest_packet: usize, seed: u64) -> Shaper {
        let mut shaper = Shaper {
            delay_ns: 0,
            queue_ns: 0,
            rate_bits: None,
            bucket_size: 0,
            loss: 0.0,
            random: XorShift::new(seed),
            tokens: 0,
            bucket_time: 0,
            last_due: 0,
        };
        shaper.reconfigure(shaping, largest_packet);
        shaper.tokens = shaper.bucket_size;
        shaper
    }

    /// Takes new settings; packets already admitted keep their delivery times.
    pub fn reconfigure(&mut self, shaping: &Shaping, largest_packet: usize) {
        self.delay_ns = duration_ns(shaping.delay);
        self.queue_ns = duration_ns(shaping.queue);
        self.rate_bits = shaping.rate_bits;
        self.bucket_size = shaping.rate_bits.map_or(0, |bits| {
            let one_millisecond = u128::from(bits) * 1_000_000;
            one_millisecond.max(cost(largest_packet))
        });
        self.tokens = self.tokens.min(self.bucket_size);
        self.loss = shaping.loss;
    }

    /// The fate of a packet of `len` bytes that enters the link at `now`.
    pub fn admit(&mut self, now: u64, len: usize) -> Verdict {
        if self.loss > 0.0 && self.random.next_unit() < self.loss {
            return Verdict::Lost;
        }
        let departure = match self.rate_bits {
            None => now,
            Some(rate_bits) => {
                let rate_bits = u128::from(rate_bits);
                let start = now.max(self.bucket_time);
                let elapsed = u128::from(start - self.bucket_time);
                let tokens = (self.tokens + elapsed * rate_bits).min(self.bucket_size);
                let cost = cost(len);
                let (departure, tokens_left) = if tokens >= cost {
                    (start, tokens - cost)
                } else {
                    let wait = (cost - tokens).div_ceil(rate_bits);
                    // Tokens earned during the wait beyond the cost stay in the bucket.
                    let surplus = wait * rate_bits - (cost - tokens);
                    (start + wait as u64, surplus)
                };
                if departure - now > self.queue_ns {
                    return Verdict::QueueFull;
                }
                self.bucket_time = departure;
                self.tokens = tokens_left;
                departure
            }
        };
        let due = (departure + self.delay_ns).max(self.last_due);
        self.last_due = due;
        Verdict::Deliver(due)
    }
}

/// Tokens that a packet of `len` bytes takes.
fn cost(len: usize) -> u128 {
    len as u128 * 8 * 1_000_000_000
}

fn duration_ns(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// xorshift64*: plenty for dropping packets at random, and free of allocation.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (value >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    fn shaping(delay_ms: u64, rate_bits: Option<u64>, loss: f64) -> Shaping {
        Shaping {
            delay: Duration::from_millis(delay_ms),
            rate_bits,
            loss,
            queue: Duration::from_millis(50),
        }
    }

    #[test]
    fn unlimited_link_only_delays() {
        let mut shaper = Shaper::new(&shaping(50, None, 0.0), 9000, 1);
        assert_eq!(shaper.admit(0, 9000), Verdict::Deliver(50 * MS));
        assert_eq!(shaper.admit(3, 9000), Verdict::Deliver(50 * MS + 3));
    }

    #[test]
    fn rate_limit_paces_a_burst_after_the_bucket_empties() {
        // 8 Mbit/s: 1 byte per microsecond; the bucket holds 1 ms = 1000 bytes.
        let mut shaper = Shaper::new(&shaping(10, Some(8_000_000), 0.0), 1000, 1);
        assert_eq!(shaper.admit(0, 1000), Verdict::Deliver(10 * MS));
        // The bucket is empty: the next 1000 bytes leave 1 ms later, and so on.
        assert_eq!(shaper.admit(0, 1000), Verdict::Deliver(11 * MS));
        assert_eq!(shaper.admit(0, 500), Verdict::Deliver(11 * MS + MS / 2));
        // After a pause the bucket has refilled, but holds no more than its size.
        assert_eq!(shaper.admit(100 * MS, 1000), Verdict::Deliver(110 * MS));
        assert_eq!(shaper.admit(100 * MS, 1000), Verdict::Deliver(111 * MS));
    }

    #[test]
    fn a_packet_that_would_wait_longer_than_the_queue_is_dropped() {
        // 8 Mbit/s and a 50 ms queue: 50 packets of 1000 bytes fit after the first.
        let mut shaper = Shaper::new(&shaping(0, Some(8_000_000), 0.0), 1000, 1);
        let verdicts: Vec<Verdict> = (0..52).map(|_| shaper.admit(0, 1000)).collect();
        assert_eq!(verdicts[50], Verdict::Deliver(50 * MS));
        assert_eq!(verdicts[51], Verdict::QueueFull);
        // A dropped packet takes no tokens: later traffic resumes where the queue was.
        assert_eq!(shaper.admit(MS, 1000), Verdict::Deliver(51 * MS));
    }

    #[test]
    fn loss_rate_is_close_to_the_setting() {
        let mut shaper = Shaper::new(&shaping(0, None, 0.01), 1500, 42);
        let lost = (0..200_000)
            .filter(|_| shaper.admit(0, 1500) == Verdict::Lost)
            .count();
        // 1% of 200 000 is 2000, with a standard deviation of about 45.
        assert!((1700..2300).contains(&lost), "{lost} lost");
    }

    #[test]
    fn shorter_delay_after_reload_does_not_reorder() {
        let mut shaper = Shaper::new(&shaping(150, None, 0.0), 9000, 1);
        assert_eq!(shaper.admit(0, 100), Verdict::Deliver(150 * MS));
        shaper.reconfigure(&shaping(50, None, 0.0), 9000);
        assert_eq!(shaper.admit(MS, 100), Verdict::Deliver(150 * MS));
        assert_eq!(shaper.admit(200 * MS, 100), Verdict::Deliver(250 * MS));
    }
}

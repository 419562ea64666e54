//! Jittered exponential backoff, free of I/O: the caller brings the random source.

use std::time::Duration;

use rand::Rng;

/// How the random part of a delay is drawn from the exponential cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the cap: only for tests and single clients.
    None,
    /// Uniform in `[0, cap]`: spreads a herd of clients the most.
    Full,
    /// Uniform in `[cap/2, cap]`: never retries almost at once.
    Equal,
}

/// Exponential backoff: attempt `n` (0-based) waits around `min(max, base * factor^n)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub factor: f64,
    pub jitter: Jitter,
}

impl Default for Backoff {
    /// Kafka's client defaults: retry.backoff.ms=100, retry.backoff.max.ms=1000.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
            jitter: Jitter::Equal,
        }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry number `attempt` (0 = first retry).
    pub fn cap(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let scaled = self.base.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        if scaled.is_finite() && scaled < self.max.as_secs_f64() {
            Duration::from_secs_f64(scaled)
        } else {
            self.max
        }
    }

    /// The delay before retry number `attempt`, drawn from `rng`.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let cap = self.cap(attempt);
        match self.jitter {
            Jitter::None => cap,
            Jitter::Full => cap.mul_f64(rng.random::<f64>()),
            Jitter::Equal => {
                let half = cap / 2;
                half + (cap - half).mul_f64(rng.random::<f64>())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    /// A random source stuck on one value: 0 draws 0.0, u64::MAX draws just under 1.0.
    struct Fixed(u64);

    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            self.0 as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(self.0 as u8);
        }
    }

    fn backoff(jitter: Jitter) -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            factor: 2.0,
            jitter,
        }
    }

    #[test]
    fn cap_grows_by_factor_and_saturates() {
        let b = backoff(Jitter::None);
        let caps: Vec<u128> = (0..6).map(|n| b.cap(n).as_millis()).collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.cap(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn full_jitter_spans_zero_to_cap() {
        let b = backoff(Jitter::Full);
        assert_eq!(b.delay(2, &mut Fixed(0)), Duration::ZERO);
        let high = b.delay(2, &mut Fixed(u64::MAX));
        assert!(high <= Duration::from_millis(400));
        assert!(high > Duration::from_millis(399));
    }

    #[test]
    fn equal_jitter_spans_half_cap_to_cap() {
        let b = backoff(Jitter::Equal);
        assert_eq!(b.delay(1, &mut Fixed(0)), Duration::from_millis(100));
        let high = b.delay(1, &mut Fixed(u64::MAX));
        assert!(high <= Duration::from_millis(200));
        assert!(high > Duration::from_millis(199));
    }

    #[test]
    fn no_jitter_is_the_cap() {
        let b = backoff(Jitter::None);
        assert_eq!(b.delay(3, &mut Fixed(12345)), Duration::from_millis(800));
    }
}

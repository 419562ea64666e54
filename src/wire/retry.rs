//! Retrying an operation on retriable wire errors, with jittered backoff.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::Backoff;
use super::error::WireError;

/// Runs `op` until it succeeds, fails with a non-retriable error, or the next wait would end
/// past `max_elapsed` (then the last error is returned). Between tries it sleeps the backoff
/// delay, then runs `between` with the error (to refresh metadata, reconnect...).
pub async fn retry_with<T, Op, OpFut, Between, BetweenFut>(
    backoff: &Backoff,
    max_elapsed: Duration,
    mut op: Op,
    mut between: Between,
) -> Result<T, WireError>
where
    Op: FnMut() -> OpFut,
    OpFut: Future<Output = Result<T, WireError>>,
    Between: FnMut(WireError) -> BetweenFut,
    BetweenFut: Future<Output = ()>,
{
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) if !error.is_retriable() => return Err(error),
            Err(error) => error,
        };
        let delay = backoff.delay(attempt, &mut rand::rng());
        if started.elapsed() + delay > max_elapsed {
            return Err(error);
        }
        tracing::debug!(%error, attempt, ?delay, "retrying");
        tokio::time::sleep(delay).await;
        between(error).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::backoff::Jitter;
    use std::cell::Cell;

    fn quick() -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
            factor: 2.0,
            jitter: Jitter::Full,
        }
    }

    fn closed() -> WireError {
        WireError::ConnectionClosed {
            broker: "b:1".into(),
        }
    }

    #[tokio::test]
    async fn retries_retriable_errors_until_success() {
        let calls = Cell::new(0);
        let between_calls = Cell::new(0);
        let result = retry_with(
            &quick(),
            Duration::from_secs(60),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err(closed())
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| {
                between_calls.set(between_calls.get() + 1);
                async {}
            },
        )
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(between_calls.get(), 2);
    }

    #[tokio::test]
    async fn stops_at_the_first_final_error() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry_with(
            &quick(),
            Duration::from_secs(60),
            || {
                calls.set(calls.get() + 1);
                async {
                    Err(WireError::UnsupportedSecurityProtocol {
                        protocol: "SSL".into(),
                    })
                }
            },
            |_| async {},
        )
        .await;
        assert!(matches!(
            result,
            Err(WireError::UnsupportedSecurityProtocol { .. })
        ));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn gives_up_with_the_last_error_when_out_of_time() {
        let calls = Cell::new(0);
        let slow = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(10),
            factor: 1.0,
            jitter: Jitter::None,
        };
        let result: Result<(), _> = retry_with(
            &slow,
            Duration::from_secs(5),
            || {
                calls.set(calls.get() + 1);
                async { Err(closed()) }
            },
            |_| async {},
        )
        .await;
        assert!(matches!(result, Err(WireError::ConnectionClosed { .. })));
        assert_eq!(calls.get(), 1);
    }
}

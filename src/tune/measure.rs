//! `strait tune --measure`: the round-trip time to the source brokers, taken from TCP
//! handshakes (a handshake is one round trip and costs the broker nothing).

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Handshakes per address; the quickest one is the path's round trip without queueing.
pub const HANDSHAKES: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The round trip of a path from its handshake times: the shortest, since queues and
/// scheduling only add to it.
pub fn path_rtt(handshakes: &[Duration]) -> Option<Duration> {
    handshakes.iter().min().copied()
}

/// The round trip to `address` ("host:port"), or why it could not be measured.
pub async fn measure_rtt(address: &str) -> Result<Duration, String> {
    let mut handshakes = Vec::with_capacity(HANDSHAKES);
    for _ in 0..HANDSHAKES {
        let started = Instant::now();
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                handshakes.push(started.elapsed());
                drop(stream);
            }
            Ok(Err(error)) => return Err(format!("cannot connect to {address}: {error}")),
            Err(_) => {
                return Err(format!(
                    "no answer from {address} within {CONNECT_TIMEOUT:?}"
                ))
            }
        }
    }
    path_rtt(&handshakes).ok_or_else(|| format!("no handshake with {address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quickest_handshake_is_the_round_trip() {
        let ms = Duration::from_millis;
        assert_eq!(path_rtt(&[ms(130), ms(101), ms(180)]), Some(ms(101)));
        assert_eq!(path_rtt(&[]), None);
    }

    #[tokio::test]
    async fn a_listening_address_is_measured_and_a_closed_one_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let rtt = measure_rtt(&address).await.unwrap();
        assert!(rtt < CONNECT_TIMEOUT);
        drop(listener);
        let error = measure_rtt(&address).await.unwrap_err();
        assert!(error.contains(&address), "{error}");
    }
}

//! What TCP alone carries across the emulated link: the copy's bytes, sent from the
//! source's namespace to the target's over as many connections as a mirror opens, with
//! the kernel's settings at both ends and no Kafka in the way. A mirror's copy across
//! the link is judged against the link's rate; this says how much of that rate TCP
//! itself gets through this emulation on this machine, slow start and the queue's
//! drops included.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::report::mib;
use crate::wan;

const SAMPLE_INTERVAL: Duration = Duration::from_millis(10);
const CHUNK: usize = 256 << 10;

/// Seconds from the first byte received, and bytes received by then.
pub type Sample = (f64, u64);

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TcpAlone {
    pub connections: usize,
    pub bytes: u64,
    /// From the first byte received to the last.
    pub seconds: f64,
    pub first_tenth_seconds: f64,
    /// From 10 % of the bytes received to 90 %.
    pub middle_tenths_seconds: f64,
    pub last_tenth_seconds: f64,
    /// From 25 % of the bytes received to 75 %.
    pub middle_half_seconds: f64,
}

impl TcpAlone {
    /// The shape of a transfer of `bytes` from its samples, which rise to `bytes`.
    pub fn from_samples(connections: usize, bytes: u64, samples: &[Sample]) -> Option<TcpAlone> {
        let at = |share: f64| time_at(samples, share * bytes as f64);
        let (tenth, quarter, three_quarters, nine_tenths) =
            (at(0.1)?, at(0.25)?, at(0.75)?, at(0.9)?);
        let end = at(1.0)?;
        Some(TcpAlone {
            connections,
            bytes,
            seconds: end,
            first_tenth_seconds: tenth,
            middle_tenths_seconds: nine_tenths - tenth,
            last_tenth_seconds: end - nine_tenths,
            middle_half_seconds: three_quarters - quarter,
        })
    }

    pub fn mib_s(&self) -> f64 {
        mib(self.bytes) / self.seconds.max(1e-3)
    }

    pub fn middle_half_mib_s(&self) -> f64 {
        mib(self.bytes) / 2.0 / self.middle_half_seconds.max(1e-3)
    }

    /// One sentence for the report.
    pub fn sentence(&self) -> String {
        format!(
            "TCP alone across the same link, before the runs: {} connections from the source's \
             namespace to the target's carried the source log's {:.0} MiB at {:.0} MiB/s from \
             the first byte to the last (middle half {:.0}; first 10 % in {:.2} s, 10-90 % in \
             {:.2} s, last 10 % in {:.2} s), with the hosts' TCP settings and no broker: \
             what the link gives TCP itself on this machine.",
            self.connections,
            mib(self.bytes),
            self.mib_s(),
            self.middle_half_mib_s(),
            self.first_tenth_seconds,
            self.middle_tenths_seconds,
            self.last_tenth_seconds,
        )
    }
}

/// When the samples first reach `bytes`, interpolated between the two around it.
fn time_at(samples: &[Sample], bytes: f64) -> Option<f64> {
    let mut before = (0.0, 0u64);
    for &(seconds, received) in samples {
        if received as f64 >= bytes {
            let (t0, b0) = before;
            let span = (received - b0) as f64;
            if span <= 0.0 {
                return Some(seconds);
            }
            return Some(t0 + (seconds - t0) * ((bytes - b0 as f64) / span).clamp(0.0, 1.0));
        }
        before = (seconds, received);
    }
    None
}

/// Sends `bytes` over `connections` connections from `source_namespace` (where the
/// listener lives, at the source host's address) to this thread's namespace, and times
/// their arrival. Fails when the link does not carry them within `limit`.
pub fn carry(
    source_namespace: &str,
    connections: usize,
    bytes: u64,
    limit: Duration,
) -> anyhow::Result<TcpAlone> {
    let listener = wan::create_in(source_namespace, || {
        TcpListener::bind((wan::SOURCE_HOST, 0)).with_context(|| {
            format!(
                "listening on {} in namespace {source_namespace}",
                wan::SOURCE_HOST
            )
        })
    })?;
    carry_from(listener, connections, bytes, limit)
}

/// `carry` from a listener wherever it is.
fn carry_from(
    listener: TcpListener,
    connections: usize,
    bytes: u64,
    limit: Duration,
) -> anyhow::Result<TcpAlone> {
    if connections == 0 || bytes == 0 {
        bail!("TCP alone needs at least one connection and one byte");
    }
    let address = listener.local_addr()?;
    // The connections draw the bytes from one pool a chunk at a time, as a mirror's
    // connections share a partition's fetches: fixed shares would end with the slowest
    // connection alone on the link (at 300 ms its last 10 % took 7.4 s, against 2-2.5 s).
    let unsent = Arc::new(AtomicU64::new(bytes));
    let senders = {
        let unsent = Arc::clone(&unsent);
        thread::spawn(move || -> anyhow::Result<()> {
            let mut writers = Vec::new();
            for _ in 0..connections {
                let (stream, _) = listener.accept().context("accepting a connection")?;
                stream.set_write_timeout(Some(limit))?;
                let unsent = Arc::clone(&unsent);
                writers.push(thread::spawn(move || send(stream, &unsent)));
            }
            for writer in writers {
                writer
                    .join()
                    .map_err(|_| anyhow::anyhow!("a sender panicked"))??;
            }
            Ok(())
        })
    };
    let received = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut readers = Vec::new();
    // All at once, as a mirror opens its connections: one after the other would take a
    // round trip each, and the first would be well on their way before the last began.
    for _ in 0..connections {
        let received = Arc::clone(&received);
        readers.push(thread::spawn(move || receive(address, limit, &received)));
    }
    let mut samples = Vec::new();
    let mut first_byte: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let got = received.load(Ordering::Relaxed);
        if got > 0 {
            let since = *first_byte.get_or_insert(now);
            samples.push(((now - since).as_secs_f64(), got));
        }
        if got >= bytes || readers.iter().all(|r| r.is_finished()) {
            break;
        }
        if started.elapsed() > limit {
            bail!(
                "TCP alone: {got} of {bytes} bytes crossed the link in {} s",
                limit.as_secs()
            );
        }
        thread::sleep(SAMPLE_INTERVAL);
    }
    for reader in readers {
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("a receiver panicked"))??;
    }
    senders
        .join()
        .map_err(|_| anyhow::anyhow!("the sender panicked"))??;
    let got = received.load(Ordering::Relaxed);
    if got != bytes {
        bail!("TCP alone: {got} bytes arrived, {bytes} were sent");
    }
    TcpAlone::from_samples(connections, bytes, &samples)
        .context("TCP alone: too few samples to time the transfer")
}

fn send(mut stream: TcpStream, unsent: &AtomicU64) -> anyhow::Result<()> {
    let chunk = vec![0u8; CHUNK];
    while let Ok(left) = unsent.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        (left > 0).then(|| left - left.min(CHUNK as u64))
    }) {
        let n = left.min(CHUNK as u64) as usize;
        stream
            .write_all(&chunk[..n])
            .context("sending across the link")?;
    }
    stream.shutdown(Shutdown::Write)?;
    // Waits for the receiver's close, so that nothing is cut off in flight.
    let _ = stream.read(&mut [0u8; 1]);
    Ok(())
}

fn receive(address: SocketAddr, limit: Duration, received: &AtomicU64) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&address, limit)
        .with_context(|| format!("connecting to {address} across the link"))?;
    stream.set_read_timeout(Some(limit))?;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("receiving across the link"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_transfer_spends_its_time_in_proportion() {
        // 100 bytes at 10 per second, sampled every second.
        let samples: Vec<Sample> = (1..=10).map(|s| (f64::from(s), s as u64 * 10)).collect();
        let shape = TcpAlone::from_samples(4, 100, &samples).unwrap();
        assert_eq!(shape.seconds, 10.0);
        assert!((shape.first_tenth_seconds - 1.0).abs() < 1e-9);
        assert!((shape.middle_tenths_seconds - 8.0).abs() < 1e-9);
        assert!((shape.last_tenth_seconds - 1.0).abs() < 1e-9);
        assert!((shape.middle_half_seconds - 5.0).abs() < 1e-9);
    }

    #[test]
    fn a_slow_start_shows_in_the_first_tenth_not_in_the_middle() {
        // Nothing for 3 s, then 10 bytes per second.
        let mut samples = vec![(1.0, 0), (2.0, 0), (3.0, 0)];
        samples.extend((1..=10).map(|s| (3.0 + f64::from(s), s as u64 * 10)));
        let shape = TcpAlone::from_samples(1, 100, &samples).unwrap();
        assert!((shape.first_tenth_seconds - 4.0).abs() < 1e-9);
        assert!((shape.middle_half_seconds - 5.0).abs() < 1e-9);
        assert_eq!(shape.seconds, 13.0);
    }

    #[test]
    fn a_transfer_that_never_ends_has_no_shape() {
        let samples = [(1.0, 10), (2.0, 50)];
        assert_eq!(TcpAlone::from_samples(1, 100, &samples), None);
    }

    #[test]
    fn every_byte_sent_over_loopback_is_counted_once() {
        // Not a multiple of the chunk: one draw takes what is left.
        let bytes = (64 << 20) + 7;
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let carried = carry_from(listener, 3, bytes, Duration::from_secs(60)).unwrap();
        assert_eq!((carried.connections, carried.bytes), (3, bytes));
        assert!(carried.first_tenth_seconds <= carried.seconds - carried.last_tenth_seconds);
        assert!(carried.middle_half_seconds <= carried.middle_tenths_seconds);
    }

    #[test]
    fn nothing_to_carry_is_refused() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let error = carry_from(listener, 0, 1, Duration::from_secs(1)).unwrap_err();
        assert!(
            error.to_string().contains("at least one connection"),
            "{error}"
        );
    }
}

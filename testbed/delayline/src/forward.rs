//! The event loop: read packets from either tun device as they come, hold each in its
//! direction's ring until the shaper's delivery time, write it to the other device.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::params::{Options, Shaping};
use crate::ring::PacketRing;
use crate::shaper::{Shaper, Verdict};
use crate::signals::{Signal, SignalFd};
use crate::stats::{Bytes, Counters};
use crate::tun::set_segmentation_offload;
use crate::vnet;

const SIGNALS: Token = Token(2);
/// A direction's ring never grows past this: 8 s of traffic at 1 Gbit/s.
const MAX_RING_BYTES: usize = 1 << 30;
/// How far behind its due times the forwarder may fall (its CPU taken by the hosts it
/// links) before its ring must grow: growing stalls it, copying into fresh memory.
const FORWARDER_LAG_ROOM: Duration = Duration::from_millis(500);
/// Starting size when the rate is unlimited and gives no hint.
const UNLIMITED_RING_BYTES: usize = 16 << 20;
/// The longest one pass of reading a device may take before the due packets are
/// written: a source flooding the link (32 bbr flows in start-up, most of it dropped at
/// the full queue) kept one pass reading for 219 ms at 300 ms, and every packet due
/// meanwhile, in both directions, was delivered that late.
const READ_PASS: Duration = Duration::from_millis(1);
/// A write that the device refuses for lack of room is tried again after this.
const RETRY: Duration = Duration::from_millis(1);
/// The largest IP packet, which a segmentation-offload packet may be.
const LARGEST_IP_PACKET: usize = 65535;

struct Direction {
    /// "a->b" or "b->a".
    name: &'static str,
    ring: PacketRing,
    shaper: Shaper,
    counters: Counters,
    /// The last write failed: its error is logged once until a write succeeds.
    failing: bool,
}

pub struct Forwarder {
    options: Options,
    shaping: Shaping,
    /// A's device, then B's; direction `i` reads `tuns[i]` and writes the other.
    tuns: [File; 2],
    directions: [Direction; 2],
    signals: SignalFd,
    clock: Instant,
    cut: bool,
    /// Where packets go when a ring is full, to be dropped.
    scratch: Vec<u8>,
    /// The most one read can return: the MTU, or an offload packet and its header.
    largest_frame: usize,
}

impl Forwarder {
    pub fn new(options: Options, tuns: [File; 2], signals: SignalFd) -> Forwarder {
        let shaping = options.shaping;
        let largest_frame = largest_frame(&options);
        let clock = Instant::now();
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = since_epoch.as_nanos() as u64 ^ u64::from(std::process::id());
        let direction = |name, seed| Direction {
            name,
            ring: PacketRing::new(ring_bytes(&shaping), MAX_RING_BYTES),
            shaper: Shaper::new(&shaping, largest_frame, seed),
            counters: Counters::default(),
            failing: false,
        };
        Forwarder {
            directions: [direction("a->b", seed), direction("b->a", !seed)],
            options,
            shaping,
            tuns,
            signals,
            clock,
            cut: false,
            scratch: vec![0; largest_frame],
            largest_frame,
        }
    }

    /// Runs until SIGTERM or SIGINT.
    pub fn run(mut self) -> io::Result<()> {
        self.apply_offload()?;
        let mut poll = Poll::new()?;
        for (index, tun) in self.tuns.iter().enumerate() {
            poll.registry().register(
                &mut SourceFd(&tun.as_raw_fd()),
                Token(index),
                Interest::READABLE,
            )?;
        }
        poll.registry().register(
            &mut SourceFd(&self.signals.file().as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        let mut events = Events::with_capacity(16);
        let stats_every = self.options.stats_interval.map(|i| i.as_nanos() as u64);
        let mut next_stats = stats_every;
        let mut printed = [Counters::default(); 2];
        // A device whose last read pass ended with packets possibly left: its readiness is
        // edge-triggered, so it is read again without waiting for an event.
        let mut unread = [false; 2];
        loop {
            let now = self.now();
            let mut retry = false;
            for index in 0..2 {
                let started = self.now();
                retry |= self.deliver(index, started);
                let took = self.now() - started;
                let counters = &mut self.directions[index].counters;
                counters.slowest_write_ns = counters.slowest_write_ns.max(took);
            }
            if let (Some(every), Some(at)) = (stats_every, next_stats) {
                if now >= at {
                    let current = [self.directions[0].counters, self.directions[1].counters];
                    if current != printed {
                        self.print_stats();
                        printed = current;
                    }
                    next_stats = Some(now + every);
                }
            }
            // The write passes above may have taken milliseconds: the wait counts from
            // now, not from when they began, or every packet due meanwhile goes out that
            // much later still.
            let polled_at = self.now();
            // A packet the far device refused is due already: wait a little, not at all.
            let wake = if retry {
                Some(polled_at + RETRY.as_nanos() as u64)
            } else {
                self.directions
                    .iter()
                    .filter_map(|d| d.ring.front().map(|(due, _)| due))
                    .chain(next_stats)
                    .min()
            };
            let deadline = poll_deadline(wake, polled_at, unread.contains(&true));
            let timeout = deadline.map(|at| Duration::from_nanos(at - polled_at));
            match poll.poll(&mut events, timeout) {
                Ok(()) => {
                    // Woken later than asked: the host's CPUs were busy elsewhere.
                    if let Some(meant) = deadline {
                        let overslept = self.now().saturating_sub(meant);
                        for direction in &mut self.directions {
                            let counters = &mut direction.counters;
                            counters.most_overslept_ns = counters.most_overslept_ns.max(overslept);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut readable = unread;
            for event in events.iter() {
                match event.token() {
                    SIGNALS => {
                        if self.handle_signals()? {
                            self.print_stats();
                            return Ok(());
                        }
                    }
                    Token(index) => readable[index] = true,
                }
            }
            for index in (0..2).filter(|&index| readable[index]) {
                let started = self.now();
                unread[index] = self.receive(index)?;
                let took = self.now() - started;
                let counters = &mut self.directions[index].counters;
                counters.slowest_read_ns = counters.slowest_read_ns.max(took);
            }
        }
    }

    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Reads the packets waiting on device `index` into its direction's ring, for at most
    /// `READ_PASS`; true when it stopped with packets possibly still waiting.
    fn receive(&mut self, index: usize) -> io::Result<bool> {
        let offload = self.options.offload;
        let started = self.now();
        loop {
            if self.now() - started > READ_PASS.as_nanos() as u64 {
                return Ok(true);
            }
            let direction = &mut self.directions[index];
            let (buffer, kept) = match direction.ring.slot(self.largest_frame) {
                Some(slot) => (slot, true),
                None => (&mut self.scratch[..], false),
            };
            let len = match (&self.tuns[index]).read(buffer) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("reading the tun device of {}: {e}", direction.name),
                    ))
                }
            };
            if self.cut {
                direction.counters.cut += 1;
            } else if !kept {
                direction.counters.overflow += 1;
            } else {
                let now = self.clock.elapsed().as_nanos() as u64;
                match direction
                    .shaper
                    .admit(now, wire_bytes(offload, &buffer[..len]))
                {
                    Verdict::Deliver(due) => direction.ring.commit(len, due),
                    Verdict::Lost => direction.counters.lost += 1,
                    Verdict::QueueFull => direction.counters.queue_full += 1,
                }
            }
        }
    }

    /// Writes the packets of direction `index` that are due; true when the far device
    /// had no room and the rest must be tried again shortly.
    fn deliver(&mut self, index: usize, now: u64) -> bool {
        let direction = &mut self.directions[index];
        let mut far = &self.tuns[1 - index];
        let offload = self.options.offload;
        while let Some((due, packet)) = direction.ring.front() {
            if due > now {
                break;
            }
            if drops_as_late(&self.shaping, now - due) {
                direction.counters.late += 1;
                direction.ring.pop();
                continue;
            }
            match far.write(packet) {
                Ok(_) => {
                    let counters = &mut direction.counters;
                    counters.most_behind_ns = counters.most_behind_ns.max(now - due);
                    counters.forwarded_packets += 1;
                    counters.forwarded_bytes += wire_bytes(offload, packet) as u64;
                    direction.failing = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    direction.counters.far_full += 1;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    direction.counters.write_errors += 1;
                    if !direction.failing {
                        eprintln!(
                            "delayline: {}: the far device refuses packets ({e}); dropping them until it takes them again",
                            direction.name
                        );
                        direction.failing = true;
                    }
                }
            }
            direction.ring.pop();
        }
        false
    }

    /// Acts on pending signals; true when asked to stop.
    fn handle_signals(&mut self) -> io::Result<bool> {
        while let Some(signal) = self.signals.next()? {
            match signal {
                Signal::Stop => return Ok(true),
                Signal::Reload => self.reload(),
                Signal::Cut => {
                    self.cut = true;
                    for direction in &mut self.directions {
                        direction.counters.cut += direction.ring.packets() as u64;
                        direction.ring.clear();
                    }
                    eprintln!("delayline: link cut: every packet is dropped until SIGUSR2");
                }
                Signal::Restore => {
                    self.cut = false;
                    eprintln!("delayline: link restored");
                }
            }
        }
        Ok(false)
    }

    fn reload(&mut self) {
        let Some(path) = &self.options.control else {
            eprintln!("delayline: SIGHUP ignored: no --control file was given");
            return;
        };
        let words = match std::fs::read_to_string(path) {
            Ok(text) => text
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
            Err(e) => {
                eprintln!(
                    "delayline: cannot read {} ({e}); keeping {}",
                    path.display(),
                    self.shaping
                );
                return;
            }
        };
        let mut shaping = self.shaping;
        if let Err(reason) = shaping.apply_words(&words) {
            eprintln!(
                "delayline: {}: {reason}; keeping {}",
                path.display(),
                self.shaping
            );
            return;
        }
        self.shaping = shaping;
        for direction in &mut self.directions {
            direction.shaper.reconfigure(&shaping, self.largest_frame);
        }
        eprintln!("delayline: now {shaping}");
        if let Err(e) = self.apply_offload() {
            eprintln!("delayline: {e}");
        }
    }

    /// Large packets while the link loses nothing; single segments under random loss,
    /// so that a loss takes one segment, not up to seven at once.
    fn apply_offload(&self) -> io::Result<()> {
        if !self.options.offload {
            return Ok(());
        }
        let large_packets = self.shaping.loss == 0.0;
        for tun in &self.tuns {
            set_segmentation_offload(tun, large_packets)?;
        }
        Ok(())
    }

    fn print_stats(&self) {
        for direction in &self.directions {
            eprintln!(
                "delayline: {}: {}; in flight {} (ring {})",
                direction.name,
                direction.counters,
                Bytes(direction.ring.queued_bytes() as u64),
                Bytes(direction.ring.capacity() as u64),
            );
        }
    }
}

fn largest_frame(options: &Options) -> usize {
    if options.offload {
        vnet::HEADER_LEN + LARGEST_IP_PACKET
    } else {
        usize::from(options.mtu)
    }
}

/// When the loop, polling at `polled_at`, should wake up at the latest: at once when a
/// device may still hold packets (`unread`), else at `wake` (the next packet due, a
/// retry, or the next statistics), never before `polled_at`; None to wait for events only.
fn poll_deadline(wake: Option<u64>, polled_at: u64, unread: bool) -> Option<u64> {
    if unread {
        Some(polled_at)
    } else {
        wake.map(|at| at.max(polled_at))
    }
}

/// Whether a packet due `behind_ns` ago is dropped rather than delivered late. Without a
/// rate limit nothing else bounds the backlog when packets come in faster than the far
/// side takes them. With one, the shaper's queue bounds it, and a packet this forwarder
/// is late with was held up by this host's CPUs, which a wire never waits for: dropping
/// it would add losses the link does not have (at 300 ms, 1.7-1.9 thousand per copy of
/// W1 on a busy 2-core machine, each costing its connection a round trip of recovery),
/// delivering it late adds only jitter.
fn drops_as_late(shaping: &Shaping, behind_ns: u64) -> bool {
    shaping.rate_bits.is_none() && behind_ns > shaping.queue.as_nanos() as u64
}

/// What a frame weighs on the emulated wire (see `vnet`).
fn wire_bytes(offload: bool, frame: &[u8]) -> usize {
    if offload {
        vnet::wire_bytes(frame)
    } else {
        frame.len()
    }
}

/// Room for the bytes in flight at the link rate over the delay, a full queue and
/// `FORWARDER_LAG_ROOM`, with a margin; the ring grows when that proves short.
fn ring_bytes(shaping: &Shaping) -> usize {
    match shaping.rate_bits {
        Some(bits) => {
            let seconds = (shaping.delay + shaping.queue + FORWARDER_LAG_ROOM).as_secs_f64();
            let bytes = bits as f64 / 8.0 * seconds * 1.25;
            (bytes as usize + (1 << 20)).min(MAX_RING_BYTES)
        }
        None => UNLIMITED_RING_BYTES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_rate_limited_link_delivers_what_the_forwarder_is_late_with() {
        let shaping = Shaping {
            rate_bits: Some(1_000_000_000),
            queue: Duration::from_millis(100),
            ..Shaping::default()
        };
        assert!(!drops_as_late(&shaping, 99 * MS));
        assert!(!drops_as_late(&shaping, 5000 * MS));
    }

    #[test]
    fn the_ring_holds_half_a_second_of_lag_beyond_the_delay_and_the_queue() {
        let shaping = Shaping {
            delay: Duration::from_millis(150),
            rate_bits: Some(1_000_000_000),
            queue: Duration::from_millis(100),
            ..Shaping::default()
        };
        // 125 MB/s for 0.75 s.
        assert!(
            ring_bytes(&shaping) >= 93_750_000,
            "{}",
            ring_bytes(&shaping)
        );
        assert!(
            ring_bytes(&shaping) < 2 * 93_750_000,
            "{}",
            ring_bytes(&shaping)
        );
    }

    #[test]
    fn a_link_without_a_rate_limit_drops_what_is_later_than_its_queue() {
        let shaping = Shaping {
            rate_bits: None,
            queue: Duration::from_millis(100),
            ..Shaping::default()
        };
        assert!(!drops_as_late(&shaping, 100 * MS));
        assert!(drops_as_late(&shaping, 101 * MS));
    }

    #[test]
    fn the_wait_counts_from_when_the_loop_polls() {
        // Loop began at 0, writing took until 5 ms, the next packet is due at 3 ms: due
        // already, so no wait at all (the stale start would have waited 3 ms more).
        assert_eq!(poll_deadline(Some(3 * MS), 5 * MS, false), Some(5 * MS));
        assert_eq!(poll_deadline(Some(8 * MS), 5 * MS, false), Some(8 * MS));
        assert_eq!(poll_deadline(Some(8 * MS), 5 * MS, true), Some(5 * MS));
        assert_eq!(poll_deadline(None, 5 * MS, true), Some(5 * MS));
        assert_eq!(poll_deadline(None, 5 * MS, false), None);
    }
}

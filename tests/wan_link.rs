//! The testbed's emulated WAN link (`testbed/wan`, the delayline tool): bytes sent through
//! it arrive intact despite the loss it adds, and a round trip takes at least the
//! configured time. Needs root and network namespaces; without them the test says so and
//! skips.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const RTT: Duration = Duration::from_millis(20);
const BYTES: usize = 16 << 20;
/// Only so that a broken link fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

fn wan_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testbed/wan")
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Why this machine cannot run the test, if it cannot.
fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("it needs root for network namespaces and tun devices".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing (modprobe tun)".into());
    }
    let probe = format!("strait-probe-{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(output) if output.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
            None
        }
        Ok(output) => Some(format!(
            "`ip netns add` fails here: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run ip ({e}); install iproute2")),
    }
}

/// A link brought up for this test and taken down when dropped, also on failure.
struct Link {
    name: String,
}

impl Link {
    fn up(args: &[&str]) -> Link {
        let name = format!("st{}", std::process::id());
        run(Command::new(wan_script())
            .args(["up", "--name", &name])
            .args(args));
        Link { name }
    }

    fn namespace(&self, side: char) -> String {
        format!("{}-{side}", self.name)
    }

    /// Takes the link down and returns what the delay line counted.
    fn down(self) -> String {
        let output = run(Command::new(wan_script()).args(["down", "--name", &self.name]));
        std::mem::forget(self);
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new(wan_script())
            .args(["down", "--name", &self.name, "--force"])
            .output();
    }
}

/// Runs `work` on a thread inside network namespace `namespace`; sockets it creates
/// belong to that namespace wherever they are used afterwards.
fn in_namespace<T: Send + 'static>(
    namespace: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let handle = File::open(format!("/run/netns/{namespace}")).expect("open the namespace");
    std::thread::spawn(move || {
        // SAFETY: setns changes the network namespace of this thread only.
        let entered = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", io::Error::last_os_error());
        work()
    })
}

/// Bytes that differ from position to position, so that a lost, repeated or moved
/// segment shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn bytes_cross_the_emulated_wan_intact_and_round_trips_take_the_configured_time() {
    if let Some(reason) = missing_prerequisite() {
        eprintln!("SKIPPED wan_link: {reason}");
        return;
    }
    let link = Link::up(&["--rtt", "20ms", "--rate", "1gbit", "--loss", "1%"]);

    let listener = in_namespace(&link.namespace('b'), || TcpListener::bind("10.77.2.1:0"))
        .join()
        .expect("bind thread")
        .expect("bind in namespace b");
    let address: SocketAddr = listener.local_addr().unwrap();
    let connecting = in_namespace(&link.namespace('a'), move || {
        TcpStream::connect_timeout(&address, IO_TIMEOUT)
    });
    let (mut server, peer) = listener.accept().expect("accept");
    let mut client = connecting
        .join()
        .expect("connect thread")
        .expect("connect from namespace a");
    assert_eq!(
        peer.ip().to_string(),
        "10.77.1.1",
        "the client's address in namespace a"
    );
    for stream in [&client, &server] {
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    }

    // Ping-pong: each exchange crosses the link once each way.
    let echo = std::thread::spawn(move || {
        let mut byte = [0u8];
        for _ in 0..5 {
            server.read_exact(&mut byte).unwrap();
            server.write_all(&byte).unwrap();
        }
        server
    });
    let mut shortest = Duration::MAX;
    for round in 0..5u8 {
        let started = Instant::now();
        client.write_all(&[round]).unwrap();
        let mut byte = [0u8];
        client.read_exact(&mut byte).unwrap();
        shortest = shortest.min(started.elapsed());
        assert_eq!(byte, [round]);
    }
    let mut server = echo.join().expect("echo thread");
    assert!(
        shortest >= RTT,
        "a round trip took {shortest:?}, less than the link's {RTT:?}"
    );

    // Bulk transfer through 1% random loss.
    let sent = pattern(BYTES);
    let receiving = std::thread::spawn(move || {
        let mut received = Vec::with_capacity(BYTES);
        server.read_to_end(&mut received).unwrap();
        received
    });
    client.write_all(&sent).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let received = receiving.join().expect("receiving thread");
    assert_eq!(received.len(), sent.len(), "bytes received");
    if let Some(at) = received.iter().zip(&sent).position(|(r, s)| r != s) {
        panic!("the received bytes differ from the sent ones at offset {at}");
    }

    let counters = link.down();
    let lost = counters
        .lines()
        .find(|line| line.contains("a->b:"))
        .and_then(|line| line.split("dropped: ").nth(1))
        .and_then(|dropped| dropped.split(' ').next())
        .and_then(|count| count.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no a->b loss count in:\n{counters}"));
    // About 1% of ~1900 packets: TCP recovered from real losses.
    assert!(lost > 0, "the link lost no packet:\n{counters}");
}

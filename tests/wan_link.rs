//! The testbed's emulated WAN link (`testbed/wan`, the delayline tool): bytes sent through
//! it arrive intact despite the loss it adds, and a round trip takes at least the
//! configured time. Then strait across it: a deliberately small receive buffer is
//! diagnosed as window-limited with the `strait tune` fix, and a copy survives the link
//! being cut for 30 s. Needs root and network namespaces; without them the tests say so
//! and skip.

mod common;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    assert_same_records, create_topic, end_offsets, produce, read_topic, unique_topic, Cluster,
    Compare, FlowFile, NewRecord, ProduceOptions,
};

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
    // Tests of this file probe in parallel: each under a name of its own.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let probe = format!(
        "strait-probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
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
        // Tests of this file bring up links in parallel: each under a name of its own.
        static LINKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "st{}-{}",
            std::process::id(),
            LINKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
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

const STRAIT: &str = env!("CARGO_BIN_EXE_strait");
const TESTBED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testbed/testbed");
/// Address of namespace a under `testbed/wan up`'s defaults.
const SOURCE_HOST: &str = "10.77.1.1";
const MIRROR_RTT_MS: u64 = 50;
const CUT: Duration = Duration::from_secs(30);
/// Only so that a broken strait fails the test instead of hanging it.
const WAIT_LIMIT: Duration = Duration::from_secs(240);

/// A one-node Kafka cluster inside namespace a of a link, stopped when dropped. strait
/// mirrors from it into it, so fetches and produces both cross the link.
struct NamespacedCluster {
    name: String,
}

impl NamespacedCluster {
    fn start(link: &Link) -> NamespacedCluster {
        let name = format!("wl{}", std::process::id());
        run(Command::new(wan_script()).args([
            "exec",
            "--name",
            &link.name,
            "a",
            TESTBED,
            "start",
            &name,
            "--port",
            "19092",
            "--host",
            SOURCE_HOST,
            "--set",
            "socket.send.buffer.bytes=-1",
            "--lease",
            &std::process::id().to_string(),
        ]));
        NamespacedCluster { name }
    }
}

impl Drop for NamespacedCluster {
    fn drop(&mut self) {
        let _ = Command::new(TESTBED).args(["stop", &self.name]).output();
    }
}

/// `strait run` inside namespace b, its log in a file.
struct MirrorInNamespace {
    child: Child,
    log: PathBuf,
}

impl MirrorInNamespace {
    fn start(namespace: &str, config: &std::path::Path) -> MirrorInNamespace {
        let log = config.with_extension("log");
        let file = File::create(&log).expect("create the strait log");
        let child = Command::new("ip")
            .args(["netns", "exec", namespace, STRAIT, "run"])
            .arg(config)
            .env("STRAIT_LOG", "info")
            .stdout(file.try_clone().expect("clone the log handle"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start strait in namespace b");
        MirrorInNamespace { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `done()` holds; fails with strait's log if it exits or hangs.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&str) -> bool) {
        let started = Instant::now();
        while !done(&self.log()) {
            if let Some(status) = self.child.try_wait().expect("poll strait") {
                panic!(
                    "strait exited with {status} before {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < WAIT_LIMIT,
                "{what}: not within {WAIT_LIMIT:?}; strait log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM (strait drains and commits), then its log.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM strait failed");
        let status = self.child.wait().expect("wait for strait");
        let log = self.log();
        assert!(status.success(), "strait exited with {status}; log:\n{log}");
        log
    }
}

impl Drop for MirrorInNamespace {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wan(link: &Link, command: &str) {
    run(Command::new(wan_script()).args([command, "--name", &link.name]));
}

/// Records of about 1 KiB whose keys and values tell each one apart.
fn numbered_records(prefix: &str, count: usize) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            let mut value = format!("{prefix}-{i}-").into_bytes();
            value.resize(1024, b'a' + (i % 26) as u8);
            NewRecord::new()
                .with_key(format!("{prefix}-{i}"))
                .with_value(value)
                .with_header("n", i.to_string())
        })
        .collect()
}

fn strait_tune(namespace: Option<&str>, args: &[&str]) -> String {
    let mut command = match namespace {
        Some(namespace) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", namespace, STRAIT]);
            command
        }
        None => Command::new(STRAIT),
    };
    let output = run(command.arg("tune").args(args));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The number before " ms" after `label` in `text`.
fn millis_after(text: &str, label: &str) -> Option<f64> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split(" ms").next()?.trim().parse().ok()
}

#[test]
fn strait_across_the_wan_is_diagnosed_window_limited_and_survives_a_cut_link() {
    if let Some(reason) = missing_prerequisite() {
        eprintln!("SKIPPED wan_link (strait across the link): {reason}");
        return;
    }
    let link = Link::up(&["--rtt", &format!("{MIRROR_RTT_MS}ms"), "--rate", "1gbit"]);
    let cluster = NamespacedCluster::start(&link);
    // The shared helpers' "source" cluster is the one inside namespace a; this test's
    // clients run on threads in that namespace.
    std::env::set_var("STRAIT_SOURCE_BOOTSTRAP", format!("{SOURCE_HOST}:19092"));
    let mirror_namespace = link.namespace('b');
    let body = in_namespace(&link.namespace('a'), move || {
        let dir = tempfile::tempdir().expect("temp dir");
        window_limited_is_diagnosed(&mirror_namespace, dir.path());
        copy_survives_a_cut(&link, &mirror_namespace, dir.path());
        link
    });
    let link = match body.join() {
        Ok(link) => link,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    drop(cluster);
    link.down();
}

fn window_limited_is_diagnosed(mirror_namespace: &str, dir: &std::path::Path) {
    let topic = unique_topic("wan-window");
    create_topic(Cluster::Source, &topic, 4, &[]);
    produce(
        Cluster::Source,
        &topic,
        &numbered_records("w", 20_000),
        &ProduceOptions::default(),
    );
    let mut flow = FlowFile::new(Cluster::Source, Cluster::Source, &[&topic]);
    let buffer_key = format!("{}.receive.buffer.bytes", flow.source_alias);
    flow.extra.push(format!("{buffer_key} = 16384"));
    let config = dir.join("window.properties");
    std::fs::write(&config, flow.render()).expect("write the properties file");

    let mut strait = MirrorInNamespace::start(mirror_namespace, &config);
    strait.wait_until("a window-limited diagnosis", |log| {
        log.lines()
            .any(|line| line.contains("strait::status") && line.contains("window-limited: rtt"))
    });
    let log = strait.stop();
    let status = log
        .lines()
        .find(|line| line.contains("strait::status") && line.contains("window-limited: rtt"))
        .expect("the status line with the diagnosis");
    assert!(
        status.contains(&format!("{buffer_key}=16384")) && status.contains("strait tune --rtt"),
        "the diagnosis names the setting and the tune command: {status}"
    );
    assert!(status.contains("fetch connections"), "{status}");
    let rtt = millis_after(status, "window-limited: rtt ").expect("the measured rtt");
    assert!(
        rtt >= MIRROR_RTT_MS as f64,
        "measured rtt {rtt} ms below the link's {MIRROR_RTT_MS} ms: {status}"
    );

    // The fix the status line points to, with the round trip it measured.
    let config_arg = config.to_str().expect("utf-8 path");
    let advice = strait_tune(
        None,
        &[
            "--rtt",
            &format!("{rtt}ms"),
            "--bandwidth",
            "1gbit",
            "--config",
            config_arg,
        ],
    );
    assert!(
        advice.contains(&format!("{buffer_key} = 16384"))
            && advice.contains("remove the line to let the kernel autotune"),
        "strait tune names the small buffer and its fix:\n{advice}"
    );
    let measured = strait_tune(
        Some(mirror_namespace),
        &["--measure", "--bandwidth", "1gbit", "--config", config_arg],
    );
    let measured_rtt = millis_after(
        &measured,
        &format!(
            "measured rtt to {} ({SOURCE_HOST}:19092): ",
            flow.source_alias
        ),
    )
    .unwrap_or_else(|| panic!("no measured rtt in:\n{measured}"));
    assert!(
        measured_rtt >= MIRROR_RTT_MS as f64,
        "handshakes measured {measured_rtt} ms on a {MIRROR_RTT_MS} ms link:\n{measured}"
    );
}

fn copy_survives_a_cut(link: &Link, mirror_namespace: &str, dir: &std::path::Path) {
    let topic = unique_topic("wan-cut");
    create_topic(Cluster::Source, &topic, 4, &[]);
    let options = ProduceOptions::default();
    let mut expected = produce(
        Cluster::Source,
        &topic,
        &numbered_records("before", 5_000),
        &options,
    );
    let flow = FlowFile::new(Cluster::Source, Cluster::Source, &[&topic]);
    let config = dir.join("cut.properties");
    std::fs::write(&config, flow.render()).expect("write the properties file");
    let remote = flow.remote(&topic);

    let mut strait = MirrorInNamespace::start(mirror_namespace, &config);
    strait.wait_until("the first records on the target", |_| {
        std::panic::catch_unwind(|| end_offsets(Cluster::Source, &remote))
            .is_ok_and(|ends| ends.iter().sum::<i64>() > 0)
    });
    wan(link, "cut");
    // Written on the source side of the cut, so strait can only copy them after it; in
    // batches of 10 records, which strait, its produce requests crossing the link too,
    // sends merged (five batches of a partition on their way per round trip otherwise).
    let small_batches = ProduceOptions {
        batch_records: 10,
        linger_ms: 0,
        ..ProduceOptions::default()
    };
    expected.extend(produce(
        Cluster::Source,
        &topic,
        &numbered_records("during", 5_000),
        &small_batches,
    ));
    std::thread::sleep(CUT);
    wan(link, "restore");

    let source_ends = end_offsets(Cluster::Source, &topic);
    strait.wait_until("the whole copy after the cut", |_| {
        std::panic::catch_unwind(|| end_offsets(Cluster::Source, &remote))
            .is_ok_and(|ends| ends == source_ends)
    });
    let log = strait.stop();
    assert!(
        !log.contains("partition stopped"),
        "strait gave up a partition:\n{log}"
    );
    let target_rtt = log
        .lines()
        .filter(|line| line.contains("strait::status"))
        .find_map(|line| millis_after(line, "target rtt "))
        .unwrap_or_else(|| panic!("no status line with the path to the target:\n{log}"));
    assert!(
        target_rtt >= MIRROR_RTT_MS as f64,
        "target rtt {target_rtt} ms on a {MIRROR_RTT_MS} ms link"
    );
    assert!(
        log.contains("merged for a long link"),
        "small batches were merged for the long path to the target:\n{log}"
    );
    let copied = read_topic(Cluster::Source, &remote);
    assert_same_records(&expected, &copied, Compare::EXACT);
}

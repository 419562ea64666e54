//! Running the strait binary the way an operator does: a properties file, `strait run`,
//! SIGTERM to stop (or SIGKILL to crash it), its log kept for failure messages.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::admin::unique_topic;
use super::cluster::Cluster;
use super::consume::try_end_offsets;

const STRAIT: &str = env!("CARGO_BIN_EXE_strait");
// A guard against hanging when strait is broken, far above any honest copy here.
const COPY_LIMIT: Duration = Duration::from_secs(240);

/// A properties file for one flow `source_alias->target_alias` between two testbed
/// clusters, mirroring exactly the topics named (regex-escaped): heartbeat topics are
/// not replicated unless a test asks for it.
///
/// Each FlowFile has aliases of its own. The aliases name the flow's progress group,
/// its remote topics and its internal topics (checkpoints, offset syncs, offset maps),
/// so flows of tests running side by side, or between other clusters, share none.
pub struct FlowFile {
    pub source_alias: String,
    pub target_alias: String,
    pub source: Cluster,
    pub target: Cluster,
    pub topics: Vec<String>,
    /// Extra lines appended verbatim (e.g. `strait.start.position = latest`).
    pub extra: Vec<String>,
}

impl FlowFile {
    pub fn new(source: Cluster, target: Cluster, topics: &[&str]) -> Self {
        FlowFile {
            source_alias: unique_alias("src"),
            target_alias: unique_alias("dst"),
            source,
            target,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            extra: Vec::new(),
        }
    }

    /// The remote name of a source topic under the default replication policy.
    pub fn remote(&self, topic: &str) -> String {
        format!("{}.{topic}", self.source_alias)
    }

    pub fn render(&self) -> String {
        let topics: Vec<String> = self.topics.iter().map(|t| regex_escape(t)).collect();
        let topics_line = if topics.is_empty() {
            String::new()
        } else {
            format!(
                "{}->{}.topics = {}\n",
                self.source_alias,
                self.target_alias,
                topics.join(", ")
            )
        };
        let mut text = format!(
            "clusters = {src}, {dst}\n\
             {src}.bootstrap.servers = {src_bootstrap}\n\
             {dst}.bootstrap.servers = {dst_bootstrap}\n\
             {src}->{dst}.enabled = true\n\
             {topics_line}\
             replication.factor = 1\n\
             strait.status.interval.seconds = 1\n\
             heartbeats.replication.enabled = false\n",
            src = self.source_alias,
            dst = self.target_alias,
            src_bootstrap = self.source.bootstrap(),
            dst_bootstrap = self.target.bootstrap(),
        );
        for line in &self.extra {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("mirror.properties");
        fs::write(&path, self.render()).expect("write properties file");
        path
    }
}

/// A cluster alias no other flow uses: letters and digits only, as topic names and
/// property keys take them.
pub fn unique_alias(prefix: &str) -> String {
    unique_topic(prefix).replace(['-', '.', '_'], "")
}

fn regex_escape(topic: &str) -> String {
    topic
        .chars()
        .flat_map(|c| match c {
            '.' | '-' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => {
                vec!['\\', c]
            }
            _ => vec![c],
        })
        .collect()
}

/// A running `strait run`.
pub struct Strait {
    child: Child,
    log: PathBuf,
}

impl Strait {
    pub fn start(config: &Path) -> Strait {
        Strait::start_with(config, &[])
    }

    pub fn start_with(config: &Path, args: &[&str]) -> Strait {
        let log = config.with_extension(format!("{}.log", unique_suffix()));
        let log_file = fs::File::create(&log).expect("create strait log");
        let child = Command::new(STRAIT)
            .arg("run")
            .arg(config)
            .args(args)
            .env("STRAIT_LOG", "info")
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {STRAIT}: {e}"));
        Strait { child, log }
    }

    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll strait") {
            panic!(
                "strait exited early with {status}; its log:\n{}",
                self.log()
            );
        }
    }

    /// Waits until every partition of `topic` on `cluster` holds `expected[p]` records
    /// (the target's offsets have no gaps: strait writes without transactions).
    pub fn wait_for_counts(&mut self, cluster: Cluster, topic: &str, expected: &[i64]) {
        let started = Instant::now();
        loop {
            self.assert_alive();
            // The target topic appears only once strait has created it.
            let ends = try_end_offsets(cluster, topic);
            if ends.as_deref() == Some(expected) {
                return;
            }
            if let Some(ends) = &ends {
                if ends.iter().zip(expected).any(|(have, want)| have > want) {
                    panic!(
                        "{topic} on {cluster:?} holds more than expected: {ends:?} > {expected:?}; strait log:\n{}",
                        self.log()
                    );
                }
            }
            assert!(
                started.elapsed() < COPY_LIMIT,
                "{topic} on {cluster:?} reached {ends:?}, not {expected:?}, within {COPY_LIMIT:?}; strait log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until `done()` holds, failing with strait's log if it exits or takes too long.
    pub fn wait_until(&mut self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            self.assert_alive();
            assert!(
                started.elapsed() < COPY_LIMIT,
                "{what} did not happen within {COPY_LIMIT:?}; strait log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until `current()` equals `expected`, failing with the last value seen and
    /// strait's log if it exits or takes too long.
    pub fn wait_for_value<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        expected: &T,
        mut current: impl FnMut() -> T,
    ) {
        let started = Instant::now();
        loop {
            let seen = current();
            if &seen == expected {
                return;
            }
            self.assert_alive();
            assert!(
                started.elapsed() < COPY_LIMIT,
                "{what}: {seen:?}, not {expected:?}, after {COPY_LIMIT:?}; strait log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM, then the exit status; strait drains and commits before it exits.
    pub fn stop(self) -> (std::process::ExitStatus, String) {
        self.stop_with("TERM")
    }

    /// Sends `signal_name` (TERM, INT) and waits for strait to exit.
    pub fn stop_with(mut self, signal_name: &str) -> (std::process::ExitStatus, String) {
        signal(self.child.id(), signal_name);
        let status =
            wait_with_limit(&mut self.child, Duration::from_secs(60)).unwrap_or_else(|| {
                let _ = self.child.kill();
                panic!(
                    "strait did not exit within 60 s of SIG{signal_name}; its log:\n{}",
                    self.log()
                )
            });
        let log = self.log();
        (status, log)
    }

    /// Waits up to `limit` for strait to exit by itself: the exit status and its log.
    pub fn wait_for_exit(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let status = wait_with_limit(&mut self.child, limit).unwrap_or_else(|| {
            panic!(
                "strait did not exit by itself within {limit:?}; its log:\n{}",
                self.log()
            )
        });
        let log = self.log();
        (status, log)
    }

    /// SIGKILL: a crash, nothing drained or committed.
    pub fn kill(mut self) -> String {
        signal(self.child.id(), "KILL");
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Strait {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `strait ARGS` to completion: (exit code, stdout, stderr).
pub fn strait_command(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(STRAIT)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {STRAIT}: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("poll child") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

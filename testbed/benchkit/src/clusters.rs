//! The benchmark's own Kafka clusters, started and stopped through testbed/testbed on
//! ports apart from the test clusters, with a bigger heap.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::process;
use crate::wan;

/// Clusters this benchmark started and must stop, for the cleanup after a signal.
static STARTED: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

pub struct ClusterSpec {
    pub name: &'static str,
    pub port: u16,
    /// The address its listener binds and advertises.
    pub host: &'static str,
    /// Broker settings added to the testbed's (`--set key=value`).
    pub settings: &'static [&'static str],
    /// The network namespace it runs in, when not this process's own.
    pub namespace: Option<String>,
}

/// A deleted topic's files go after a second (Kafka waits a minute by default): the
/// benchmark deletes each copy after checking it and waits for the files to be gone, so
/// that the deletion's disk work does not fall into the next system's run.
const DELETE_AT_ONCE: &str = "file.delete.delay.ms=1000";

impl ClusterSpec {
    /// The clusters on this machine's loopback.
    pub fn loopback() -> [ClusterSpec; 2] {
        [
            ClusterSpec {
                name: "bench-source",
                port: 19192,
                host: "127.0.0.1",
                settings: &[DELETE_AT_ONCE],
                namespace: None,
            },
            ClusterSpec {
                name: "bench-target",
                port: 29192,
                host: "127.0.0.1",
                settings: &[DELETE_AT_ONCE],
                namespace: None,
            },
        ]
    }

    /// The clusters at the two ends of the emulated WAN; the benchmark's work runs on
    /// the target's side. The source broker leaves its send buffers to the kernel's
    /// autotuning: Kafka's default of a fixed 100 KiB caps every fetch response stream
    /// at 100 KiB per round trip (1.7 MB/s at 100 ms, see tuning/README.md). With the
    /// mirror beside the source, produce requests cross the link instead, and the target
    /// broker leaves its receive buffers to autotuning, as tuning/README.md advises.
    pub fn wan(source_namespace: String, mirror_beside_source: bool) -> [ClusterSpec; 2] {
        [
            ClusterSpec {
                name: "bench-wan-source",
                port: 19192,
                host: wan::SOURCE_HOST,
                settings: &["socket.send.buffer.bytes=-1", DELETE_AT_ONCE],
                namespace: Some(source_namespace),
            },
            ClusterSpec {
                name: "bench-wan-target",
                port: 29192,
                host: wan::TARGET_HOST,
                settings: if mirror_beside_source {
                    &["socket.receive.buffer.bytes=-1", DELETE_AT_ONCE]
                } else {
                    &[DELETE_AT_ONCE]
                },
                namespace: None,
            },
        ]
    }
}

pub struct Testbed {
    pub script: PathBuf,
    pub run_dir: PathBuf,
}

fn is_log_dir_of(dir: &str, topic: &str) -> bool {
    let Some(rest) = dir.strip_prefix(topic).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let partition = rest.split('.').next().unwrap_or_default();
    !partition.is_empty() && partition.bytes().all(|b| b.is_ascii_digit())
}

impl Testbed {
    /// Log directories of `topic` on `cluster`'s brokers: its partitions' (`topic-3`), and
    /// once deleted, the same renamed for deletion (`topic-3.<id>-delete`) until the broker
    /// removes them.
    pub fn topic_log_dirs(&self, cluster: &str, topic: &str) -> usize {
        let Ok(nodes) = std::fs::read_dir(self.run_dir.join(cluster)) else {
            return 0;
        };
        nodes
            .flatten()
            .filter_map(|node| std::fs::read_dir(node.path().join("data")).ok())
            .flat_map(|entries| entries.flatten())
            .filter(|entry| is_log_dir_of(&entry.file_name().to_string_lossy(), topic))
            .count()
    }

    pub fn new(repo: &Path) -> Self {
        let run_dir = std::env::var_os("STRAIT_TESTBED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join(".testbed-run"));
        Self {
            script: repo.join("testbed/testbed"),
            run_dir,
        }
    }

    /// Starts the cluster afresh (its old data thrown away), leased to this process so
    /// that it stops by itself once this process is gone; or, with `reuse`, keeps a
    /// running one (and starts one that outlives this process).
    pub fn start(
        &self,
        spec: &ClusterSpec,
        xmx: &str,
        reuse: bool,
        log: &Path,
    ) -> anyhow::Result<String> {
        if !reuse {
            self.stop(spec.name);
        }
        let port = spec.port.to_string();
        let mut args: Vec<String> = [
            "start", spec.name, "--port", &port, "--xmx", xmx, "--host", spec.host,
        ]
        .map(String::from)
        .to_vec();
        for setting in spec.settings {
            args.push("--set".to_string());
            args.push(setting.to_string());
        }
        if !reuse {
            args.push("--lease".to_string());
            args.push(std::process::id().to_string());
        }
        let child = process::spawn_in(
            spec.namespace.as_deref(),
            spec.name,
            &self.script,
            &args,
            log,
        )?;
        STARTED
            .lock()
            .expect("cluster registry")
            .push((self.script.clone(), spec.name.to_string()));
        match child.wait(Duration::from_secs(300)) {
            Some(finished) if finished.succeeded() => {}
            Some(_) => bail!(
                "cluster {} did not start{} (log: {})",
                spec.name,
                child.last_words(),
                log.display()
            ),
            None => bail!(
                "cluster {} did not start within 300 s (log: {})",
                spec.name,
                log.display()
            ),
        }
        Ok(format!("{}:{}", spec.host, spec.port))
    }

    pub fn stop(&self, name: &str) {
        stop_cluster(&self.script, name);
        STARTED
            .lock()
            .expect("cluster registry")
            .retain(|(_, n)| n != name);
    }

    pub fn broker_pid(&self, name: &str) -> anyhow::Result<i32> {
        let file = self.node_dir(name).join("pid");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("pid of cluster {name} ({})", file.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("pid file {} holds '{}'", file.display(), text.trim()))
    }

    /// Bytes of the topic's log segments on disk: the record batches as the broker
    /// stores them.
    pub fn log_bytes(&self, name: &str, topic: &str) -> anyhow::Result<u64> {
        let data = self.node_dir(name).join("data");
        let mut total = 0;
        let prefix = format!("{topic}-");
        for entry in std::fs::read_dir(&data).with_context(|| format!("{}", data.display()))? {
            let entry = entry?;
            let dir_name = entry.file_name().to_string_lossy().into_owned();
            let is_partition = dir_name
                .strip_prefix(&prefix)
                .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
            if !is_partition {
                continue;
            }
            for segment in std::fs::read_dir(entry.path())? {
                let segment = segment?;
                if segment.path().extension().is_some_and(|e| e == "log") {
                    total += segment.metadata()?.len();
                }
            }
        }
        Ok(total)
    }

    fn node_dir(&self, name: &str) -> PathBuf {
        self.run_dir.join(name).join("node-1")
    }
}

fn stop_cluster(script: &Path, name: &str) {
    let _ = Command::new(script)
        .args(["stop", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Stops every cluster this benchmark started and has not stopped yet.
pub fn stop_all_started() {
    let started: Vec<(PathBuf, String)> =
        std::mem::take(&mut *STARTED.lock().expect("cluster registry"));
    for (script, name) in started {
        stop_cluster(&script, &name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topics_log_dirs_are_counted_live_and_renamed_for_deletion() {
        let run_dir =
            std::env::temp_dir().join(format!("benchkit-deletion-{}", std::process::id()));
        let data = run_dir.join("bench-target/node-1/data");
        for dir in [
            "copy-0",
            "copy-1.2f6c0a-delete",
            "copy-x-0",
            "copy-extra-2",
            "other-0",
        ] {
            std::fs::create_dir_all(data.join(dir)).unwrap();
        }
        let testbed = Testbed {
            script: PathBuf::new(),
            run_dir: run_dir.clone(),
        };
        assert_eq!(testbed.topic_log_dirs("bench-target", "copy"), 2);
        assert_eq!(testbed.topic_log_dirs("bench-target", "copy-x"), 1);
        assert_eq!(testbed.topic_log_dirs("bench-source", "copy"), 0);
        std::fs::remove_dir_all(data.join("copy-0")).unwrap();
        std::fs::remove_dir_all(data.join("copy-1.2f6c0a-delete")).unwrap();
        assert_eq!(testbed.topic_log_dirs("bench-target", "copy"), 0);
        std::fs::remove_dir_all(run_dir).unwrap();
    }
}

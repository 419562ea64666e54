//! The emulated WAN of `--wan rtt=100ms,rate=1gbit,loss=0.1%`: testbed/wan's two network
//! namespaces joined by its user-space delay line. The source cluster runs in namespace
//! a; the target cluster, the mirror under test and this benchmark itself in namespace b,
//! so that the mirror is a sidecar next to the target and fetches across the link.

use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Mutex;

use anyhow::{bail, Context};

/// The link's name in testbed/wan: namespaces `bench-a` and `bench-b`.
const LINK_NAME: &str = "bench";
/// testbed/wan's default addresses of the two namespaces.
pub const SOURCE_HOST: &str = "10.77.1.1";
pub const TARGET_HOST: &str = "10.77.2.1";

/// The link this benchmark brought up and must take down (the `testbed/wan` script and
/// the log that gets its final counters), for the cleanup after a signal too.
static UP: Mutex<Option<(PathBuf, PathBuf)>> = Mutex::new(None);

/// The link's shaping and set-up, as `key=value` pairs in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WanSpec {
    settings: Vec<(String, String)>,
}

/// The keys `--wan` takes; each becomes `testbed/wan up --<key> <value>`, which checks
/// the values.
const KEYS: [(&str, &str); 8] = [
    ("rtt", "round-trip time, e.g. 100ms"),
    ("delay", "one-way delay, e.g. 50ms"),
    ("rate", "link rate, e.g. 1gbit"),
    ("loss", "random loss, e.g. 0.1%"),
    ("queue", "bottleneck buffer as time, e.g. 100ms"),
    ("mtu", "MTU of the link devices, e.g. 9000"),
    (
        "offload",
        "segmentation offload of the link devices, on (default) or off",
    ),
    (
        "tune",
        "sysctl profile applied in both namespaces, e.g. tuning/wan-100ms.conf",
    ),
];

impl FromStr for WanSpec {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        let mut settings: Vec<(String, String)> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                bail!("--wan '{item}' is not key=value; write e.g. rtt=100ms,rate=1gbit,loss=0.1%");
            };
            let (key, value) = (key.trim(), value.trim());
            if !KEYS.iter().any(|(known, _)| *known == key) {
                bail!(
                    "--wan: unknown key '{key}'; use {}",
                    KEYS.map(|(k, what)| format!("{k} ({what})")).join(", ")
                );
            }
            if value.is_empty() {
                bail!("--wan: {key} has no value");
            }
            if settings.iter().any(|(k, _)| k == key) {
                bail!("--wan: {key} is given twice");
            }
            if ["rtt", "delay"].contains(&key)
                && settings.iter().any(|(k, _)| k == "rtt" || k == "delay")
            {
                bail!("--wan: give rtt or delay, not both");
            }
            settings.push((key.to_string(), value.to_string()));
        }
        if settings.is_empty() {
            bail!("--wan names no setting; write e.g. rtt=100ms,rate=1gbit,loss=0.1%");
        }
        Ok(Self { settings })
    }
}

impl fmt::Display for WanSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .settings
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        f.write_str(&items.join(","))
    }
}

impl WanSpec {
    /// The options of `testbed/wan up`; a relative profile path is taken from `repo`.
    fn up_arguments(&self, repo: &Path) -> Vec<String> {
        let mut args = Vec::new();
        for (key, value) in &self.settings {
            args.push(format!("--{key}"));
            args.push(if key == "tune" && Path::new(value).is_relative() {
                repo.join(value).display().to_string()
            } else {
                value.clone()
            });
        }
        args
    }
}

/// A link this benchmark brought up.
pub struct Link {
    script: PathBuf,
}

impl Link {
    /// Takes down what a failed earlier run left of the link (so that no shaping or
    /// profile of it survives), brings it up afresh with `spec`, and registers it for
    /// [`take_down`].
    pub fn up(repo: &Path, spec: &WanSpec, log: &Path) -> anyhow::Result<Self> {
        let script = repo.join("testbed/wan");
        let link = Self { script };
        take_down_link(&link.script, None);
        *UP.lock().expect("link registry") = Some((link.script.clone(), log.to_path_buf()));
        let output = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let status = Command::new(&link.script)
            .arg("up")
            .args(["--name", LINK_NAME])
            .args(spec.up_arguments(repo))
            .stdout(output.try_clone()?)
            .stderr(output)
            .status()
            .with_context(|| format!("running {}", link.script.display()))?;
        if !status.success() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "the WAN link did not come up ({status}): {} (log: {})",
                text.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or(""),
                log.display()
            );
        }
        Ok(link)
    }

    /// Moves this thread, and every thread and process it starts from now on, into
    /// namespace b (the target's side). The process's main thread must stay outside:
    /// `testbed/wan down --force` stops every process whose main thread is inside.
    pub fn enter_target_side(&self) -> anyhow::Result<()> {
        enter(&target_namespace())
    }
}

/// Runs `make` on a thread of its own inside network `namespace`, so that the sockets
/// of what it creates, and of the threads that creates, live there (a thread's network
/// namespace is its own, and threads it starts inherit it).
pub fn create_in<T: Send>(
    namespace: &str,
    make: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(namespace)?;
                make()
            })
            .join()
            .map_err(|_| anyhow::anyhow!("a thread in namespace {namespace} panicked"))?
    })
}

fn enter(namespace: &str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{namespace}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: setns only reads the descriptor, which stays open for the call.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("entering network namespace {path}"));
    }
    Ok(())
}

/// The link's device in both namespaces (`testbed/wan`'s default).
pub const LINK_DEVICE: &str = "wan0";

/// Namespace a, where the source cluster runs.
pub fn source_namespace() -> String {
    format!("{LINK_NAME}-a")
}

pub fn target_namespace() -> String {
    format!("{LINK_NAME}-b")
}

/// Stops what still runs in the namespaces and deletes them with the delay line.
pub fn take_down() {
    if let Some((script, log)) = UP.lock().expect("link registry").take() {
        take_down_link(&script, Some(&log));
    }
}

/// `testbed/wan down`; its output (the delay line's final counters: packets, drops at
/// the bottleneck's queue) goes to the end of `log`.
fn take_down_link(script: &Path, log: Option<&Path>) {
    let output = log.and_then(|path| std::fs::OpenOptions::new().append(true).open(path).ok());
    let (stdout, stderr) = match output
        .as_ref()
        .map(|file| (file.try_clone(), file.try_clone()))
    {
        Some((Ok(out), Ok(err))) => (Stdio::from(out), Stdio::from(err)),
        _ => (Stdio::null(), Stdio::null()),
    };
    let _ = Command::new(script)
        .args(["down", "--name", LINK_NAME, "--force"])
        .stdout(stdout)
        .stderr(stderr)
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_becomes_wan_up_options_in_its_order() {
        let spec: WanSpec = "rtt=100ms, rate=1gbit,loss=0.1%,tune=tuning/wan-100ms.conf"
            .parse()
            .unwrap();
        assert_eq!(
            spec.up_arguments(Path::new("/repo")),
            [
                "--rtt",
                "100ms",
                "--rate",
                "1gbit",
                "--loss",
                "0.1%",
                "--tune",
                "/repo/tuning/wan-100ms.conf"
            ]
        );
        assert_eq!(
            spec.to_string(),
            "rtt=100ms,rate=1gbit,loss=0.1%,tune=tuning/wan-100ms.conf"
        );
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (text, named) in [
            ("rtt=100ms,jitter=5ms", "jitter"),
            ("rtt", "key=value"),
            ("loss=", "no value"),
            ("rate=1gbit,rate=2gbit", "twice"),
            ("rtt=100ms,delay=50ms", "not both"),
            ("", "names no setting"),
        ] {
            let error = text.parse::<WanSpec>().unwrap_err().to_string();
            assert!(error.contains(named), "'{text}': {error}");
        }
    }
}

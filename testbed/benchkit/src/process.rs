//! Child processes: each runs in its own process group with its output in a log file,
//! dies with the benchmark (parent-death signal), and is killed with its group when the
//! benchmark ends, however it ends.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Process groups still running, killed by [`kill_all`].
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// How a child ended, from `wait4`.
#[derive(Clone, Copy, Debug)]
pub struct Finished {
    /// Exit code, or `128 + signal` when a signal ended it.
    pub code: i32,
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.code == 0
    }
}

pub struct Child {
    pub name: String,
    pub pid: i32,
    pub log: PathBuf,
}

/// Starts `program` with stdout and stderr appended to `log`.
pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    spawn_with_env(name, program, args, &[], log)
}

/// Starts `program` inside network `namespace` (through `ip netns exec`, which becomes
/// the program), or here when it is `None`.
pub fn spawn_in(
    namespace: Option<&str>,
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
) -> anyhow::Result<Child> {
    match namespace {
        None => spawn(name, program, args, log),
        Some(namespace) => {
            let mut wrapped = vec![
                "netns".to_string(),
                "exec".to_string(),
                namespace.to_string(),
                program.display().to_string(),
            ];
            wrapped.extend(args.iter().cloned());
            spawn(name, Path::new("ip"), &wrapped, log)
        }
    }
}

pub fn spawn_with_env(
    name: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, String)],
    log: &Path,
) -> anyhow::Result<Child> {
    let output = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("{name}: cannot open its log file {}", log.display()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().with_context(|| {
        format!(
            "{name}: cannot start {} (log: {})",
            program.display(),
            log.display()
        )
    })?;
    let pid = child.id() as i32;
    LIVE_GROUPS.lock().expect("process registry").push(pid);
    Ok(Child {
        name: name.to_string(),
        pid,
        log: log.to_path_buf(),
    })
}

impl Child {
    /// The exit of a child that has ended, without waiting for one that runs.
    pub fn exited(&self) -> Option<Finished> {
        reap(self.pid, libc::WNOHANG)
    }

    /// Whether the child has ended, leaving it unreaped so that /proc still shows its
    /// CPU time.
    pub fn has_exited(&self) -> bool {
        // SAFETY: siginfo is plain data that waitid fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let found = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // With WNOHANG, a running child leaves si_pid at 0.
        found == 0 && unsafe { info.si_pid() } == self.pid
    }

    /// Waits until the child ends or `limit` passes (then it is killed and `None`
    /// returned).
    pub fn wait(&self, limit: Duration) -> Option<Finished> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(finished) = self.exited() {
                return Some(finished);
            }
            if Instant::now() >= deadline {
                self.stop(Duration::from_secs(5));
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to the group, SIGKILL once `grace` has passed.
    pub fn stop(&self, grace: Duration) -> Finished {
        if let Some(finished) = self.exited() {
            return finished;
        }
        signal_group(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(finished) = self.exited() {
                return finished;
            }
            thread::sleep(Duration::from_millis(50));
        }
        signal_group(self.pid, libc::SIGKILL);
        // Only the cleanup after a signal reaps it elsewhere; then nothing is known.
        reap(self.pid, 0).unwrap_or(Finished {
            code: 128 + libc::SIGKILL,
            cpu_seconds: 0.0,
            max_rss_bytes: 0,
        })
    }

    /// ": <last line of the log>", or nothing for an empty log: the end of an error
    /// message.
    pub fn last_words(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| format!(": {l}"))
            .unwrap_or_default()
    }
}

fn reap(pid: i32, flags: i32) -> Option<Finished> {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
    if reaped != pid {
        return None;
    }
    // The group may have members left (a JVM never forks, but be sure).
    signal_group(pid, libc::SIGKILL);
    LIVE_GROUPS
        .lock()
        .expect("process registry")
        .retain(|&g| g != pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(Finished {
        code,
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: killpg has no memory effects; a group that is gone yields ESRCH.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Kills every process group still running: SIGTERM, then SIGKILL after `grace`.
pub fn kill_all(grace: Duration) {
    let groups: Vec<i32> = LIVE_GROUPS.lock().expect("process registry").clone();
    for &group in &groups {
        signal_group(group, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    for &group in &groups {
        while Instant::now() < deadline && reap(group, libc::WNOHANG).is_none() {
            thread::sleep(Duration::from_millis(50));
        }
        signal_group(group, libc::SIGKILL);
        reap(group, 0);
    }
}

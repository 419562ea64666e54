//! The kernel settings that bound one TCP connection's throughput, read through
//! [`SysctlSource`] so that the analysis runs on fixtures in tests.

use std::io;
use std::path::PathBuf;

/// Reads a sysctl by its dotted name (`net.core.rmem_max`).
pub trait SysctlSource {
    fn read(&self, key: &str) -> io::Result<String>;
}

/// This machine's `/proc/sys` (of the network namespace strait runs in: most TCP
/// settings are per namespace).
pub struct ProcSys {
    root: PathBuf,
}

impl Default for ProcSys {
    fn default() -> Self {
        ProcSys {
            root: PathBuf::from("/proc/sys"),
        }
    }
}

impl SysctlSource for ProcSys {
    fn read(&self, key: &str) -> io::Result<String> {
        std::fs::read_to_string(self.root.join(key.replace('.', "/")))
    }
}

pub const RMEM_MAX: &str = "net.core.rmem_max";
pub const WMEM_MAX: &str = "net.core.wmem_max";
pub const TCP_RMEM: &str = "net.ipv4.tcp_rmem";
pub const TCP_WMEM: &str = "net.ipv4.tcp_wmem";
pub const TCP_WINDOW_SCALING: &str = "net.ipv4.tcp_window_scaling";
pub const TCP_SLOW_START_AFTER_IDLE: &str = "net.ipv4.tcp_slow_start_after_idle";
pub const TCP_CONGESTION_CONTROL: &str = "net.ipv4.tcp_congestion_control";
pub const TCP_AVAILABLE_CONGESTION_CONTROL: &str = "net.ipv4.tcp_available_congestion_control";

/// Each setting is `None` when it could not be read; `unreadable` says why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelLimits {
    /// Ceiling of an explicit SO_RCVBUF (without the FORCE variant).
    pub rmem_max: Option<u64>,
    /// Ceiling of an explicit SO_SNDBUF.
    pub wmem_max: Option<u64>,
    /// min, default, max of autotuned receive buffers.
    pub tcp_rmem: Option<[u64; 3]>,
    /// min, default, max of autotuned send buffers.
    pub tcp_wmem: Option<[u64; 3]>,
    pub window_scaling: Option<bool>,
    pub slow_start_after_idle: Option<bool>,
    pub congestion_control: Option<String>,
    pub available_congestion_control: Option<Vec<String>>,
    /// (setting, reason) for each setting that could not be read.
    pub unreadable: Vec<(String, String)>,
}

impl KernelLimits {
    pub fn read(source: &dyn SysctlSource) -> KernelLimits {
        let mut reader = Reader {
            source,
            unreadable: Vec::new(),
        };
        KernelLimits {
            rmem_max: reader.get(RMEM_MAX, |t| t.parse().ok()),
            wmem_max: reader.get(WMEM_MAX, |t| t.parse().ok()),
            tcp_rmem: reader.get(TCP_RMEM, triple),
            tcp_wmem: reader.get(TCP_WMEM, triple),
            window_scaling: reader.get(TCP_WINDOW_SCALING, flag),
            slow_start_after_idle: reader.get(TCP_SLOW_START_AFTER_IDLE, flag),
            congestion_control: reader.get(TCP_CONGESTION_CONTROL, |t| {
                (!t.is_empty()).then(|| t.to_string())
            }),
            available_congestion_control: reader.get(TCP_AVAILABLE_CONGESTION_CONTROL, |t| {
                Some(t.split_whitespace().map(str::to_string).collect())
            }),
            unreadable: reader.unreadable,
        }
    }
}

struct Reader<'a> {
    source: &'a dyn SysctlSource,
    unreadable: Vec<(String, String)>,
}

impl Reader<'_> {
    fn get<T>(&mut self, key: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let text = match self.source.read(key) {
            Ok(text) => text,
            Err(error) => {
                self.unreadable.push((key.to_string(), error.to_string()));
                return None;
            }
        };
        let text = text.trim();
        let value = parse(text);
        if value.is_none() {
            self.unreadable
                .push((key.to_string(), format!("unexpected value {text:?}")));
        }
        value
    }
}

fn triple(text: &str) -> Option<[u64; 3]> {
    let values: Vec<u64> = text
        .split_whitespace()
        .map(|word| word.parse().ok())
        .collect::<Option<_>>()?;
    values.try_into().ok()
}

fn flag(text: &str) -> Option<bool> {
    match text {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use std::collections::HashMap;

    /// A `/proc/sys` made of the given entries; any other key is missing.
    pub struct FixedSysctls(pub HashMap<String, String>);

    impl FixedSysctls {
        pub fn set(&mut self, key: &str, value: &str) {
            self.0.insert(key.to_string(), value.to_string());
        }

        /// The settings of a sysctl.d file (`key = value` lines, `#` comments).
        pub fn from_profile(text: &str) -> FixedSysctls {
            FixedSysctls(
                text.lines()
                    .map(|line| line.split('#').next().unwrap_or_default())
                    .filter_map(|line| line.split_once('='))
                    .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
                    .collect(),
            )
        }
    }

    impl SysctlSource for FixedSysctls {
        fn read(&self, key: &str) -> io::Result<String> {
            self.0
                .get(key)
                .map(|value| format!("{value}\n"))
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
        }
    }

    /// The machine these figures were measured on: Debian's kernel defaults with the
    /// receive ceiling raised.
    pub fn this_machine() -> FixedSysctls {
        let mut sysctls = FixedSysctls(HashMap::new());
        for (key, value) in [
            (RMEM_MAX, "4194304"),
            (WMEM_MAX, "4194304"),
            (TCP_RMEM, "4096\t131072\t33554432"),
            (TCP_WMEM, "4096\t16384\t4194304"),
            (TCP_WINDOW_SCALING, "1"),
            (TCP_SLOW_START_AFTER_IDLE, "1"),
            (TCP_CONGESTION_CONTROL, "bbr"),
            (TCP_AVAILABLE_CONGESTION_CONTROL, "reno bbr cubic"),
        ] {
            sysctls.set(key, value);
        }
        sysctls
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn reads_every_setting() {
        let limits = KernelLimits::read(&this_machine());
        assert_eq!(limits.rmem_max, Some(4_194_304));
        assert_eq!(limits.tcp_rmem, Some([4096, 131_072, 33_554_432]));
        assert_eq!(limits.tcp_wmem, Some([4096, 16_384, 4_194_304]));
        assert_eq!(limits.window_scaling, Some(true));
        assert_eq!(limits.slow_start_after_idle, Some(true));
        assert_eq!(limits.congestion_control.as_deref(), Some("bbr"));
        assert_eq!(
            limits.available_congestion_control,
            Some(vec!["reno".into(), "bbr".into(), "cubic".into()])
        );
        assert!(limits.unreadable.is_empty());
    }

    #[test]
    fn missing_and_odd_settings_are_reported_not_guessed() {
        let mut sysctls = this_machine();
        sysctls.0.remove(WMEM_MAX);
        sysctls.set(TCP_RMEM, "4096 131072");
        let limits = KernelLimits::read(&sysctls);
        assert_eq!(limits.wmem_max, None);
        assert_eq!(limits.tcp_rmem, None);
        assert_eq!(
            limits.unreadable,
            vec![
                (
                    WMEM_MAX.to_string(),
                    "No such file or directory".to_string()
                ),
                (
                    TCP_RMEM.to_string(),
                    "unexpected value \"4096 131072\"".to_string()
                ),
            ]
        );
    }

    #[test]
    fn proc_sys_maps_dots_to_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net/ipv4")).unwrap();
        std::fs::write(dir.path().join("net/ipv4/tcp_rmem"), "1 2 3\n").unwrap();
        let source = ProcSys {
            root: dir.path().to_path_buf(),
        };
        assert_eq!(source.read(TCP_RMEM).unwrap(), "1 2 3\n");
        assert!(source.read(TCP_WMEM).is_err());
    }
}

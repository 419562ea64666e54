//! Which clusters the tests talk to, and starting them through the testbed.

use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

const TESTBED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testbed/testbed");

/// A named testbed cluster. `STRAIT_<NAME>_BOOTSTRAP` points a test run at a cluster of
/// one's own; without it the testbed's cluster of that name is used, started on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// Newest Kafka 4.x, single node, 127.0.0.1:19092.
    Source,
    /// Newest Kafka 4.x, single node, 127.0.0.1:29092.
    Target,
    /// Kafka 3.9.x, single node, 127.0.0.1:31092.
    Legacy,
    /// Newest Kafka 4.x, three nodes, 127.0.0.1:32092-32094.
    Trio,
}

impl Cluster {
    pub const ALL: [Cluster; 4] = [
        Cluster::Source,
        Cluster::Target,
        Cluster::Legacy,
        Cluster::Trio,
    ];

    /// The testbed's name of this cluster.
    pub fn name(self) -> &'static str {
        match self {
            Cluster::Source => "source",
            Cluster::Target => "target",
            Cluster::Legacy => "legacy",
            Cluster::Trio => "trio",
        }
    }

    fn bootstrap_env_var(self) -> &'static str {
        match self {
            Cluster::Source => "STRAIT_SOURCE_BOOTSTRAP",
            Cluster::Target => "STRAIT_TARGET_BOOTSTRAP",
            Cluster::Legacy => "STRAIT_LEGACY_BOOTSTRAP",
            Cluster::Trio => "STRAIT_TRIO_BOOTSTRAP",
        }
    }

    /// Bootstrap servers of the cluster; the first call in a test binary makes sure the
    /// cluster answers (starting it through the testbed if it is ours).
    pub fn bootstrap(self) -> &'static str {
        static BOOTSTRAPS: [OnceLock<String>; 4] = [const { OnceLock::new() }; 4];
        BOOTSTRAPS[self as usize].get_or_init(|| self.resolve_bootstrap())
    }

    fn resolve_bootstrap(self) -> String {
        let var = self.bootstrap_env_var();
        match std::env::var(var) {
            Ok(bootstrap) if !bootstrap.trim().is_empty() => {
                let bootstrap = bootstrap.trim().to_string();
                if let Err(cause) = answers(&bootstrap) {
                    panic!("{var}={bootstrap} does not answer ({cause}); start that cluster or unset {var} to use the testbed's {}", self.name());
                }
                bootstrap
            }
            _ => {
                // The lease lets the testbed stop a cluster it started for us once no
                // test process has used it for a while; running clusters are left alone.
                let pid = std::process::id().to_string();
                testbed(&["start", self.name(), "--lease", &pid]);
                testbed(&["bootstrap", self.name()]).trim().to_string()
            }
        }
    }

    /// Kafka version of the testbed cluster of this name (e.g. "4.3.1").
    pub fn kafka_version(self) -> String {
        testbed(&["version", self.name()]).trim().to_string()
    }

    /// Client configuration with `bootstrap.servers` set, for any rdkafka client.
    pub fn client_config(self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        config
    }
}

fn answers(bootstrap: &str) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| e.to_string())?;
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs `testbed/testbed ARGS` and returns its standard output; panics with the
/// testbed's own message if it fails.
pub fn testbed(args: &[&str]) -> String {
    let output = Command::new(TESTBED)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {TESTBED}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    assert!(
        output.status.success(),
        "`testbed {}` failed ({}):\n{stderr}",
        args.join(" "),
        output.status
    );
    String::from_utf8(output.stdout).expect("testbed prints UTF-8")
}

/// Runs one of Kafka's CLI tools (`testbed tool`, e.g. "console-consumer", "topics") from
/// the jars of the cluster's own Kafka version; the caller inspects status and output.
pub fn kafka_tool(cluster: Cluster, tool: &str, args: &[&str]) -> Output {
    Command::new(TESTBED)
        .arg("tool")
        .arg(cluster.name())
        .arg(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {TESTBED} tool {tool}: {e}"))
}

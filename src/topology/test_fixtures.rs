//! Unit-test fixtures shared by the topology modules.

use crate::config::{FlowConfig, MirrorConfig};

use super::config_sync::{ConfigSource, TopicConfigEntry};

/// The one flow `A->B` of a file with `extra` lines appended.
pub fn flow(extra: &str) -> FlowConfig {
    let text = format!(
        "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n\
         A->B.enabled = true\n{extra}"
    );
    let (config, _warnings) = MirrorConfig::parse(&text, "test.properties").unwrap();
    config.flows[0].clone()
}

/// A writable, non-sensitive topic config entry.
pub fn entry(name: &str, value: &str, source: ConfigSource) -> TopicConfigEntry {
    TopicConfigEntry {
        name: name.to_string(),
        value: Some(value.to_string()),
        source,
        read_only: false,
        sensitive: false,
    }
}

//! Which topic configurations a remote topic takes from its source topic, as MM2's
//! `MirrorSourceConnector.targetConfig` and `incrementalAlterConfigs` decide, compared
//! with what the target topic already has so that only real changes are sent.
//!
//! MM2's rules: read-only, sensitive and static-broker entries and the properties
//! matched by `config.properties.exclude` are never copied; an entry the source leaves
//! at Kafka's default is removed from the target topic (the target's default applies)
//! unless `use.defaults.from = source`, in which case its value is copied; every other
//! entry (topic-level or dynamic broker setting) is copied as a topic-level value.
//!
//! One deliberate difference: `compression.type` on the target is `producer`, whatever
//! the source says, so the target stores the forwarded batches as they are instead of
//! recompressing them. A user who wants another value on the target lists
//! `compression.type` in `config.properties.exclude` and sets it there: strait then
//! leaves it alone.

use crate::config::{ConfigPropertyFilter, TopicConfigDefaults};

pub const COMPRESSION_TYPE: &str = "compression.type";
/// The compression.type under which a broker keeps a produced batch's codec.
pub const KEEP_PRODUCER_COMPRESSION: &str = "producer";

/// Where the value of a described configuration comes from (DescribeConfigs
/// `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on this topic.
    DynamicTopic,
    /// Set dynamically for one broker.
    DynamicBroker,
    /// Set dynamically for every broker of the cluster.
    DynamicDefaultBroker,
    /// From a broker's server.properties.
    StaticBroker,
    /// Kafka's built-in default.
    Default,
    /// A source this version of strait does not know (code 0 is Kafka's UNKNOWN).
    Other(i8),
}

impl ConfigSource {
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }
}

/// One configuration of a topic as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigEntry {
    pub name: String,
    /// `None` for sensitive entries and for entries without a value.
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
}

/// One IncrementalAlterConfigs operation on a target topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set a topic-level value.
    Set { name: String, value: String },
    /// Remove the topic-level value, so the target cluster's default applies.
    Delete { name: String },
}

impl ConfigOp {
    pub fn name(&self) -> &str {
        match self {
            ConfigOp::Set { name, .. } | ConfigOp::Delete { name } => name,
        }
    }
}

/// Why a source topic's configuration is not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCopied {
    /// Matched by `config.properties.exclude` (MM2's defaults included).
    Excluded,
    ReadOnly,
    Sensitive,
    /// From the source brokers' server.properties: a cluster setting, not the topic's.
    StaticBroker,
    /// Not left at the default, yet without a value to copy.
    NoValue,
    /// The target brokers do not know this configuration (an older Kafka).
    UnknownToTarget,
    /// The source has another compression.type; the target keeps `producer` so that
    /// forwarded batches are stored as they are.
    CompressionKeptAsProducer,
}

impl std::fmt::Display for NotCopied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotCopied::Excluded => "excluded by config.properties.exclude",
            NotCopied::ReadOnly => "read-only",
            NotCopied::Sensitive => "sensitive",
            NotCopied::StaticBroker => "a static broker setting of the source cluster",
            NotCopied::NoValue => "no value on the source",
            NotCopied::UnknownToTarget => "unknown to the target cluster's brokers",
            NotCopied::CompressionKeptAsProducer => {
                "kept at producer on the target so forwarded batches are stored as they are"
            }
        })
    }
}

/// What a config sync does to one target topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSyncPlan {
    /// The operations to send; empty when the target topic is already in step.
    pub ops: Vec<ConfigOp>,
    /// Source configurations that are not copied, with the reason (entries the source
    /// leaves at the default and the target does too are in neither list).
    pub not_copied: Vec<(String, NotCopied)>,
}

/// MM2's selection of a source entry, before looking at the target: the operation MM2
/// would send, or why it sends none.
fn wanted_op(
    entry: &TopicConfigEntry,
    filter: &ConfigPropertyFilter,
    defaults: TopicConfigDefaults,
) -> Result<ConfigOp, NotCopied> {
    if !filter.should_replicate(&entry.name) {
        return Err(NotCopied::Excluded);
    }
    if entry.read_only {
        return Err(NotCopied::ReadOnly);
    }
    if entry.sensitive {
        return Err(NotCopied::Sensitive);
    }
    if entry.source == ConfigSource::StaticBroker {
        return Err(NotCopied::StaticBroker);
    }
    if entry.source == ConfigSource::Default && defaults == TopicConfigDefaults::Target {
        return Ok(ConfigOp::Delete {
            name: entry.name.clone(),
        });
    }
    match &entry.value {
        Some(value) => Ok(ConfigOp::Set {
            name: entry.name.clone(),
            value: value.clone(),
        }),
        None => Err(NotCopied::NoValue),
    }
}

/// Whether `op` would change the target topic described by `current`.
fn changes(op: &ConfigOp, current: &TopicConfigEntry) -> bool {
    let topic_level = current.source == ConfigSource::DynamicTopic;
    match op {
        ConfigOp::Set { value, .. } => !topic_level || current.value.as_ref() != Some(value),
        ConfigOp::Delete { .. } => topic_level,
    }
}

/// The operations that bring the target topic (described by `target`) in step with the
/// source topic (described by `source`).
pub fn plan_config_sync(
    source: &[TopicConfigEntry],
    target: &[TopicConfigEntry],
    filter: &ConfigPropertyFilter,
    defaults: TopicConfigDefaults,
) -> ConfigSyncPlan {
    let on_target = |name: &str| target.iter().find(|entry| entry.name == name);
    let mut plan = ConfigSyncPlan::default();
    for entry in source {
        let mut wanted = wanted_op(entry, filter, defaults);
        if entry.name == COMPRESSION_TYPE && wanted != Err(NotCopied::Excluded) {
            if matches!(&wanted, Ok(ConfigOp::Set { value, .. }) if value != KEEP_PRODUCER_COMPRESSION)
            {
                plan.not_copied
                    .push((entry.name.clone(), NotCopied::CompressionKeptAsProducer));
            }
            wanted = Ok(keep_producer_compression());
        }
        let op = match wanted {
            Ok(op) => op,
            Err(reason) => {
                plan.not_copied.push((entry.name.clone(), reason));
                continue;
            }
        };
        match on_target(&entry.name) {
            None => plan
                .not_copied
                .push((entry.name.clone(), NotCopied::UnknownToTarget)),
            Some(current) if current.read_only => plan
                .not_copied
                .push((entry.name.clone(), NotCopied::ReadOnly)),
            Some(current) if changes(&op, current) => plan.ops.push(op),
            Some(_) => {}
        }
    }
    plan
}

fn keep_producer_compression() -> ConfigOp {
    ConfigOp::Set {
        name: COMPRESSION_TYPE.to_string(),
        value: KEEP_PRODUCER_COMPRESSION.to_string(),
    }
}

/// The configurations a new remote topic is created with (MM2's `createNewTopics`): the
/// source entries MM2 copies, plus `compression.type=producer` unless excluded.
pub fn configs_for_new_topic(
    source: &[TopicConfigEntry],
    filter: &ConfigPropertyFilter,
    defaults: TopicConfigDefaults,
) -> Vec<(String, String)> {
    let mut configs: Vec<(String, String)> = source
        .iter()
        .filter(|entry| entry.name != COMPRESSION_TYPE)
        .filter_map(|entry| match wanted_op(entry, filter, defaults) {
            Ok(ConfigOp::Set { name, value }) => Some((name, value)),
            _ => None,
        })
        .collect();
    if filter.should_replicate(COMPRESSION_TYPE) {
        configs.push((
            COMPRESSION_TYPE.to_string(),
            KEEP_PRODUCER_COMPRESSION.to_string(),
        ));
    }
    configs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PatternList;
    use crate::topology::test_fixtures::entry;

    fn set(name: &str, value: &str) -> ConfigOp {
        ConfigOp::Set {
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    fn delete(name: &str) -> ConfigOp {
        ConfigOp::Delete {
            name: name.to_string(),
        }
    }

    fn excluding(patterns: &str) -> ConfigPropertyFilter {
        ConfigPropertyFilter {
            exclude: PatternList::parse(patterns).unwrap(),
        }
    }

    /// A freshly created target topic: every entry at the default.
    fn defaults_of(source: &[TopicConfigEntry]) -> Vec<TopicConfigEntry> {
        source
            .iter()
            .map(|e| entry(&e.name, "target-default", ConfigSource::Default))
            .collect()
    }

    fn plan(source: &[TopicConfigEntry], target: &[TopicConfigEntry]) -> ConfigSyncPlan {
        plan_config_sync(
            source,
            target,
            &ConfigPropertyFilter::default(),
            TopicConfigDefaults::Target,
        )
    }

    #[test]
    fn topic_level_and_dynamic_broker_values_are_set_on_the_target() {
        let source = [
            entry("retention.ms", "123", ConfigSource::DynamicTopic),
            entry("segment.bytes", "4096", ConfigSource::DynamicDefaultBroker),
            entry("segment.ms", "60000", ConfigSource::DynamicBroker),
            entry("flush.ms", "5", ConfigSource::Other(0)),
        ];
        let result = plan(&source, &defaults_of(&source));
        assert_eq!(
            result.ops,
            vec![
                set("retention.ms", "123"),
                set("segment.bytes", "4096"),
                set("segment.ms", "60000"),
                set("flush.ms", "5"),
            ]
        );
        assert!(result.not_copied.is_empty(), "{:?}", result.not_copied);
    }

    #[test]
    fn mm2_default_exclusions_and_the_flow_filter_are_not_copied() {
        let source = [
            entry("min.insync.replicas", "2", ConfigSource::DynamicTopic),
            entry(
                "unclean.leader.election.enable",
                "true",
                ConfigSource::DynamicTopic,
            ),
            entry(
                "message.timestamp.type",
                "LogAppendTime",
                ConfigSource::DynamicTopic,
            ),
            entry(
                "leader.replication.throttled.replicas",
                "0:1",
                ConfigSource::DynamicTopic,
            ),
            entry("retention.ms", "1", ConfigSource::DynamicTopic),
        ];
        let result = plan(&source, &defaults_of(&source));
        assert_eq!(result.ops, vec![set("retention.ms", "1")]);
        assert_eq!(result.not_copied.len(), 4);
        assert!(result
            .not_copied
            .iter()
            .all(|(_, reason)| *reason == NotCopied::Excluded));

        let custom = plan_config_sync(
            &source,
            &defaults_of(&source),
            &excluding("retention\\..*"),
            TopicConfigDefaults::Target,
        );
        // A user's list replaces MM2's default list, as in MM2.
        assert!(custom.ops.contains(&set("min.insync.replicas", "2")));
        assert!(!custom.ops.iter().any(|op| op.name() == "retention.ms"));
    }

    #[test]
    fn read_only_sensitive_and_static_broker_entries_are_skipped() {
        let mut read_only = entry("a.read.only", "1", ConfigSource::DynamicTopic);
        read_only.read_only = true;
        let sensitive = TopicConfigEntry {
            sensitive: true,
            value: None,
            ..entry("a.secret", "", ConfigSource::DynamicTopic)
        };
        let source = [
            read_only,
            sensitive,
            entry("log.flush.interval", "9", ConfigSource::StaticBroker),
        ];
        let result = plan(&source, &defaults_of(&source));
        assert!(result.ops.is_empty(), "{:?}", result.ops);
        assert_eq!(
            result.not_copied,
            vec![
                ("a.read.only".to_string(), NotCopied::ReadOnly),
                ("a.secret".to_string(), NotCopied::Sensitive),
                ("log.flush.interval".to_string(), NotCopied::StaticBroker),
            ]
        );
    }

    #[test]
    fn source_defaults_remove_target_overrides_unless_defaults_come_from_the_source() {
        let source = [entry("retention.ms", "604800000", ConfigSource::Default)];
        let overridden = [entry("retention.ms", "1000", ConfigSource::DynamicTopic)];
        assert_eq!(plan(&source, &overridden).ops, vec![delete("retention.ms")]);
        // Nothing to remove when the target has no topic-level value.
        assert!(plan(&source, &defaults_of(&source)).ops.is_empty());

        let from_source = plan_config_sync(
            &source,
            &overridden,
            &ConfigPropertyFilter::default(),
            TopicConfigDefaults::Source,
        );
        assert_eq!(from_source.ops, vec![set("retention.ms", "604800000")]);
    }

    #[test]
    fn values_already_on_the_target_topic_are_not_sent_again() {
        let source = [entry("retention.ms", "5", ConfigSource::DynamicTopic)];
        let same = [entry("retention.ms", "5", ConfigSource::DynamicTopic)];
        assert!(plan(&source, &same).ops.is_empty());
        // The same value inherited from a broker is not pinned to the topic.
        let inherited = [entry("retention.ms", "5", ConfigSource::StaticBroker)];
        assert_eq!(
            plan(&source, &inherited).ops,
            vec![set("retention.ms", "5")]
        );
    }

    #[test]
    fn configurations_the_target_does_not_know_are_reported() {
        let source = [entry(
            "remote.storage.enable",
            "true",
            ConfigSource::DynamicTopic,
        )];
        let result = plan(&source, &[]);
        assert!(result.ops.is_empty());
        assert_eq!(
            result.not_copied,
            vec![(
                "remote.storage.enable".to_string(),
                NotCopied::UnknownToTarget
            )]
        );
    }

    #[test]
    fn compression_stays_producer_on_the_target() {
        let zstd_source = [entry(COMPRESSION_TYPE, "zstd", ConfigSource::DynamicTopic)];
        let result = plan(&zstd_source, &defaults_of(&zstd_source));
        assert_eq!(result.ops, vec![set(COMPRESSION_TYPE, "producer")]);
        assert_eq!(
            result.not_copied,
            vec![(
                COMPRESSION_TYPE.to_string(),
                NotCopied::CompressionKeptAsProducer
            )]
        );

        // A source at the default still gets `producer` pinned on the target, whose
        // brokers may default to a codec.
        let default_source = [entry(COMPRESSION_TYPE, "producer", ConfigSource::Default)];
        let gzip_target = [entry(COMPRESSION_TYPE, "gzip", ConfigSource::StaticBroker)];
        let result = plan(&default_source, &gzip_target);
        assert_eq!(result.ops, vec![set(COMPRESSION_TYPE, "producer")]);
        assert!(result.not_copied.is_empty());

        let in_step = [entry(
            COMPRESSION_TYPE,
            "producer",
            ConfigSource::DynamicTopic,
        )];
        assert!(plan(&zstd_source, &in_step).ops.is_empty());
    }

    #[test]
    fn excluding_compression_leaves_the_target_value_alone() {
        let source = [entry(COMPRESSION_TYPE, "zstd", ConfigSource::DynamicTopic)];
        let target = [entry(COMPRESSION_TYPE, "lz4", ConfigSource::DynamicTopic)];
        let result = plan_config_sync(
            &source,
            &target,
            &excluding("compression\\.type"),
            TopicConfigDefaults::Target,
        );
        assert!(result.ops.is_empty());
        assert_eq!(
            result.not_copied,
            vec![(COMPRESSION_TYPE.to_string(), NotCopied::Excluded)]
        );
    }

    #[test]
    fn new_topics_take_the_copied_values_and_producer_compression() {
        let source = [
            entry("retention.ms", "7", ConfigSource::DynamicTopic),
            entry("segment.ms", "604800000", ConfigSource::Default),
            entry("min.insync.replicas", "2", ConfigSource::DynamicTopic),
            entry(COMPRESSION_TYPE, "gzip", ConfigSource::DynamicTopic),
            entry("max.message.bytes", "1048588", ConfigSource::StaticBroker),
        ];
        let filter = ConfigPropertyFilter::default();
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            configs_for_new_topic(&source, &filter, TopicConfigDefaults::Target),
            vec![
                pair("retention.ms", "7"),
                pair(COMPRESSION_TYPE, "producer")
            ]
        );
        assert_eq!(
            configs_for_new_topic(&source, &filter, TopicConfigDefaults::Source),
            vec![
                pair("retention.ms", "7"),
                pair("segment.ms", "604800000"),
                pair(COMPRESSION_TYPE, "producer")
            ]
        );
        assert_eq!(
            configs_for_new_topic(
                &source,
                &excluding("compression\\.type"),
                TopicConfigDefaults::Target
            ),
            vec![pair("retention.ms", "7"), pair("min.insync.replicas", "2")]
        );
    }

    #[test]
    fn config_sources_follow_the_protocol_codes() {
        assert_eq!(ConfigSource::from_code(1), ConfigSource::DynamicTopic);
        assert_eq!(ConfigSource::from_code(4), ConfigSource::StaticBroker);
        assert_eq!(ConfigSource::from_code(5), ConfigSource::Default);
        assert_eq!(ConfigSource::from_code(0), ConfigSource::Other(0));
    }
}

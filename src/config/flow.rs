//! One replication flow `<source>-><target>` with its effective settings:
//! MM2's defaults, then top-level keys, then `<source>-><target>.` keys.
//! Client overrides are layered as MM2 layers them for its connectors:
//! flow `consumer.*` < `<source>.consumer.*` < flow `source.consumer.*`
//! (and likewise for the target producer and both admins).

use std::time::Duration;

use super::cluster::{
    check_override_is_not_a_connection_setting, lookup, ClientOverrides, ClusterEntries, Entry,
};
use super::diagnostics::{Diagnostics, WarningKind};
use super::filter::{defaults, ConfigPropertyFilter, GroupFilter, PatternList, TopicFilter};
use super::filter::{
    CONFIG_PROPERTIES_EXCLUDE_DEFAULT, GROUPS_DEFAULT, GROUPS_EXCLUDE_DEFAULT, TOPICS_DEFAULT,
    TOPICS_EXCLUDE_DEFAULT,
};
use super::keys::{
    FETCH_CONNECTIONS_PER_BROKER, MEMORY_BUDGET_BYTES, PRODUCE_CONNECTIONS_PER_BROKER,
    START_POSITION,
};
use super::policy::{
    ReplicationPolicy, Separators, DEFAULT_POLICY_CLASS, DEFAULT_SEPARATOR, IDENTITY_POLICY_CLASS,
};
use super::values::{
    fix_for, parse_bool, parse_in_range, parse_integer, parse_replication_factor, parse_seconds,
    parse_start_position, trailing_comment, StartPosition,
};

/// strait's in-flight memory budget per flow when `strait.memory.budget.bytes` is not set
/// and the source is near (a round trip under 5 ms).
pub const DEFAULT_MEMORY_BUDGET_BYTES: u64 = 64 * 1024 * 1024;
/// The same across a long link (5 ms or more): fetches several windows large on many
/// connections, and answers read ahead that wait for the data before them, are what fill
/// it. At 300 ms and 1 Gbit/s, 256 MiB held W1 at 90 MiB/s in its second half with
/// fetches of 2 MiB (a batch of overlap per fetch, and gaps where estimates missed), 512 MiB
/// at 103 MiB/s with 4 MiB; peak RSS 308 MiB.
pub const LONG_LINK_MEMORY_BUDGET_BYTES: u64 = 512 * 1024 * 1024;
/// strait looks for new topics and partitions every 10 s (MM2: 10 min).
pub const DEFAULT_REFRESH_TOPICS_INTERVAL: Duration = Duration::from_secs(10);
const MIN_MEMORY_BUDGET_BYTES: i64 = 1024 * 1024;
const MEMORY_BUDGET_FIX: &str = "write a number of bytes of at least 1048576 \
    (one partition fetch at Kafka's default max.partition.fetch.bytes)";

/// The most fetch connections a flow keeps to one source broker. Across 300 ms a
/// connection to a host with Linux's default tcp_wmem carries ~2 MiB per round trip and
/// idles a round trip between fetches: filling 1 Gbit/s takes about 30.
pub const MAX_FETCH_CONNECTIONS_PER_BROKER: u16 = 32;
const FETCH_CONNECTIONS_FIX: &str =
    "write auto (the default: as many as a long link needs) or a count from 1 to 32";

/// Produce connections per target broker by default. A broker handles one connection's
/// requests one after the other, and validating a compressed batch means decompressing
/// it, so one connection holds a target broker to what one of its request threads
/// validates; a second lets another thread work beside it.
pub const DEFAULT_PRODUCE_CONNECTIONS_PER_BROKER: u16 = 2;
/// The most produce connections per target broker: beyond a few, the broker's request
/// threads (num.io.threads, 8 by default) are shared with every other client.
pub const MAX_PRODUCE_CONNECTIONS_PER_BROKER: u16 = 8;
const PRODUCE_CONNECTIONS_FIX: &str = "write auto (the default: 2, and one per partition across a long link to the target) or a count from 1 to 8";

/// Which cluster's defaults fill a topic configuration the source leaves at
/// its default (MM2's `use.defaults.from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicConfigDefaults {
    Target,
    Source,
}

/// Where the offset-syncs topic lives (MM2's `offset-syncs.topic.location`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSyncsTopicLocation {
    Source,
    Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    ReadCommitted,
    ReadUncommitted,
}

/// How strait fetches from the source cluster, read from Kafka's consumer
/// settings of the flow (`<source>.consumer.fetch.max.bytes`, ...), with
/// Kafka's consumer defaults, except `isolation.level`: strait reads
/// committed data unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSettings {
    /// `fetch.max.bytes` (default 50 MiB).
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes` (default 1 MiB).
    pub partition_max_bytes: i32,
    /// `fetch.min.bytes` (default 1).
    pub min_bytes: i32,
    /// `fetch.max.wait.ms` (default 500 ms).
    pub max_wait: Duration,
    /// `isolation.level` (default `read_committed`).
    pub isolation_level: IsolationLevel,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            max_bytes: 52_428_800,
            partition_max_bytes: 1_048_576,
            min_bytes: 1,
            max_wait: Duration::from_millis(500),
            isolation_level: IsolationLevel::ReadCommitted,
        }
    }
}

/// A periodic task of a flow: `None` when its `.enabled` key is false.
pub type Periodic = Option<Duration>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    pub source: String,
    pub target: String,
    /// The line of the `<source>-><target>.enabled` entry.
    pub line: usize,
    pub topics: TopicFilter,
    pub groups: GroupFilter,
    /// Topic configuration properties not copied to remote topics.
    pub config_properties: ConfigPropertyFilter,
    pub topic_config_defaults: TopicConfigDefaults,
    /// For the identity policy, `source_alias` is this flow's source.
    pub policy: ReplicationPolicy,
    /// For remote topics strait creates (MM2 default 2; -1: the broker's).
    pub replication_factor: i16,
    pub heartbeats_topic_replication_factor: i16,
    pub checkpoints_topic_replication_factor: i16,
    pub offset_syncs_topic_replication_factor: i16,
    pub refresh_topics: Periodic,
    pub refresh_groups: Periodic,
    pub sync_topic_configs: Periodic,
    pub sync_topic_acls: Periodic,
    pub emit_heartbeats: Periodic,
    pub emit_checkpoints: Periodic,
    pub sync_group_offsets: Periodic,
    pub emit_offset_syncs: bool,
    /// Replicate heartbeats topics even when `topics` does not include them.
    pub heartbeats_replication: bool,
    pub offset_syncs_topic_location: OffsetSyncsTopicLocation,
    /// How far the offset map may drift before a new offset sync is written.
    pub offset_lag_max: u64,
    /// Where a partition without progress starts (`strait.start.position`,
    /// else the consumer's `auto.offset.reset`, else earliest as MM2).
    pub start_position: StartPosition,
    /// `strait.memory.budget.bytes`: fetched bytes not yet acknowledged by
    /// the target, for this flow. None: chosen by the link (64 MiB near, 512 MiB
    /// across a long link).
    pub memory_budget_bytes: Option<u64>,
    /// `strait.fetch.connections.per.broker`; None: automatic.
    pub fetch_connections_per_broker: Option<u16>,
    /// `strait.produce.connections.per.broker`; None: automatic.
    pub produce_connections_per_broker: Option<u16>,
    pub fetch: FetchSettings,
    /// The target cluster has `exactly.once.source.support = enabled`.
    pub exactly_once: bool,
    /// Where MM2 kept this flow's progress (`offset.storage.topic`, default
    /// `mm2-offsets.<source>.internal` on the target), for taking over.
    pub mm2_offsets_topic: String,
    pub source_consumer: ClientOverrides,
    pub target_producer: ClientOverrides,
    pub source_admin: ClientOverrides,
    pub target_admin: ClientOverrides,
}

impl FlowConfig {
    /// `source->target`, as MM2 writes it.
    pub fn name(&self) -> String {
        format!("{}->{}", self.source, self.target)
    }

    /// MM2's `MirrorSourceConnector.shouldReplicateTopic`: selected by the
    /// filter (or a heartbeats topic), not internal, and not coming back
    /// to the target.
    pub fn should_replicate_topic(&self, topic: &str) -> bool {
        (self.topics.should_replicate(topic)
            || (self.heartbeats_replication && self.policy.is_heartbeats_topic(topic)))
            && !self.policy.is_internal_topic(topic)
            && !self.policy.would_cycle(topic, &self.target)
    }

    pub fn remote_topic(&self, topic: &str) -> String {
        self.policy.format_remote_topic(&self.source, topic)
    }

    /// The offset-syncs topic's name: it is named after the cluster at the
    /// other end from where it lives.
    pub fn offset_syncs_topic(&self) -> String {
        match self.offset_syncs_topic_location {
            OffsetSyncsTopicLocation::Source => self.policy.offset_syncs_topic(&self.target),
            OffsetSyncsTopicLocation::Target => self.policy.offset_syncs_topic(&self.source),
        }
    }

    /// The checkpoints topic on the target.
    pub fn checkpoints_topic(&self) -> String {
        self.policy.checkpoints_topic(&self.source)
    }
}

/// Whether an exclude list came from MM2's default, from its pre-3.0
/// `*.blacklist` name, or from its current name (which wins at any layer,
/// as in Kafka's `ConfigUtils.translateDeprecatedConfigs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExcludeOrigin {
    Default,
    Legacy,
    Current,
}

#[derive(Debug, Clone)]
struct Exclude {
    list: PatternList,
    origin: ExcludeOrigin,
}

impl Exclude {
    fn default_of(value: &str) -> Self {
        Exclude {
            list: defaults(value),
            origin: ExcludeOrigin::Default,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Task {
    enabled: bool,
    interval: Duration,
}

impl Task {
    fn new(enabled: bool, seconds: u64) -> Self {
        Task {
            enabled,
            interval: Duration::from_secs(seconds),
        }
    }

    fn periodic(self) -> Periodic {
        self.enabled.then_some(self.interval)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyClass {
    Default,
    Identity,
}

/// Flow settings being layered: MM2's defaults, then each layer's keys.
#[derive(Debug, Clone)]
pub(crate) struct FlowSettings {
    topics: PatternList,
    topics_exclude: Exclude,
    groups: PatternList,
    groups_exclude: Exclude,
    config_properties_exclude: Exclude,
    topic_config_defaults: TopicConfigDefaults,
    policy_class: PolicyClass,
    separator: String,
    internal_topic_separator: bool,
    replication_factor: i16,
    heartbeats_topic_replication_factor: i16,
    checkpoints_topic_replication_factor: i16,
    offset_syncs_topic_replication_factor: i16,
    refresh_topics: Task,
    refresh_groups: Task,
    sync_topic_configs: Task,
    sync_topic_acls: Task,
    emit_heartbeats: Task,
    emit_checkpoints: Task,
    sync_group_offsets: Task,
    emit_offset_syncs: bool,
    heartbeats_replication: bool,
    offset_syncs_topic_location: OffsetSyncsTopicLocation,
    offset_lag_max: u64,
    start_position: Option<StartPosition>,
    memory_budget_bytes: Option<u64>,
    fetch_connections_per_broker: Option<u16>,
    produce_connections_per_broker: Option<u16>,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            topics: defaults(TOPICS_DEFAULT),
            topics_exclude: Exclude::default_of(TOPICS_EXCLUDE_DEFAULT),
            groups: defaults(GROUPS_DEFAULT),
            groups_exclude: Exclude::default_of(GROUPS_EXCLUDE_DEFAULT),
            config_properties_exclude: Exclude::default_of(CONFIG_PROPERTIES_EXCLUDE_DEFAULT),
            topic_config_defaults: TopicConfigDefaults::Target,
            policy_class: PolicyClass::Default,
            separator: DEFAULT_SEPARATOR.to_string(),
            internal_topic_separator: true,
            replication_factor: 2,
            heartbeats_topic_replication_factor: 3,
            checkpoints_topic_replication_factor: 3,
            offset_syncs_topic_replication_factor: 3,
            refresh_topics: Task {
                enabled: true,
                interval: DEFAULT_REFRESH_TOPICS_INTERVAL,
            },
            refresh_groups: Task::new(true, 600),
            sync_topic_configs: Task::new(true, 600),
            sync_topic_acls: Task::new(true, 600),
            emit_heartbeats: Task::new(true, 1),
            // MM2 waits 60 s; translation here is exact and cheap, so a standby
            // holds each group's position at most 5 s old.
            emit_checkpoints: Task::new(true, 5),
            sync_group_offsets: Task::new(false, 60),
            emit_offset_syncs: true,
            heartbeats_replication: true,
            offset_syncs_topic_location: OffsetSyncsTopicLocation::Source,
            offset_lag_max: 100,
            start_position: None,
            memory_budget_bytes: None,
            fetch_connections_per_broker: None,
            produce_connections_per_broker: None,
        }
    }
}

/// Kinds of lists, for the checks their entries get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListOf {
    Topics,
    Groups,
    ConfigProperties,
}

impl FlowSettings {
    /// Applies one entry; returns false when `entry.name` is not a flow
    /// setting.
    pub(crate) fn apply(&mut self, entry: Entry<'_>, diagnostics: &mut Diagnostics) -> bool {
        let raw = entry.property.value.as_str();
        let result = match entry.name {
            "topics" => patterns(raw, ListOf::Topics).map(|list| self.topics = list),
            "groups" => patterns(raw, ListOf::Groups).map(|list| self.groups = list),
            "topics.exclude" | "topics.blacklist" => {
                set_exclude(&mut self.topics_exclude, entry, ListOf::Topics, diagnostics)
            }
            "groups.exclude" | "groups.blacklist" => {
                set_exclude(&mut self.groups_exclude, entry, ListOf::Groups, diagnostics)
            }
            "config.properties.exclude" | "config.properties.blacklist" => set_exclude(
                &mut self.config_properties_exclude,
                entry,
                ListOf::ConfigProperties,
                diagnostics,
            ),
            "use.defaults.from" => choice(
                raw,
                &[
                    ("target", TopicConfigDefaults::Target),
                    ("source", TopicConfigDefaults::Source),
                ],
                "a choice",
                "write target or source",
            )
            .map(|value| self.topic_config_defaults = value),
            "replication.policy.class" => {
                parse_policy_class(raw).map(|value| self.policy_class = value)
            }
            "replication.policy.separator" => parse_separator(raw).map(|s| self.separator = s),
            "replication.policy.internal.topic.separator.enabled" => {
                parse_bool(raw).map(|b| self.internal_topic_separator = b)
            }
            "replication.factor" => {
                parse_replication_factor(raw).map(|f| self.replication_factor = f)
            }
            "heartbeats.topic.replication.factor" => {
                parse_replication_factor(raw).map(|f| self.heartbeats_topic_replication_factor = f)
            }
            "checkpoints.topic.replication.factor" => {
                parse_replication_factor(raw).map(|f| self.checkpoints_topic_replication_factor = f)
            }
            "offset-syncs.topic.replication.factor" => parse_replication_factor(raw)
                .map(|f| self.offset_syncs_topic_replication_factor = f),
            "refresh.topics.enabled" => parse_bool(raw).map(|b| self.refresh_topics.enabled = b),
            "refresh.topics.interval.seconds" => {
                parse_seconds(raw).map(|d| self.refresh_topics.interval = d)
            }
            "refresh.groups.enabled" => parse_bool(raw).map(|b| self.refresh_groups.enabled = b),
            "refresh.groups.interval.seconds" => {
                parse_seconds(raw).map(|d| self.refresh_groups.interval = d)
            }
            "sync.topic.configs.enabled" => {
                parse_bool(raw).map(|b| self.sync_topic_configs.enabled = b)
            }
            "sync.topic.configs.interval.seconds" => {
                parse_seconds(raw).map(|d| self.sync_topic_configs.interval = d)
            }
            "sync.topic.acls.enabled" => parse_bool(raw).map(|b| self.sync_topic_acls.enabled = b),
            "sync.topic.acls.interval.seconds" => {
                parse_seconds(raw).map(|d| self.sync_topic_acls.interval = d)
            }
            "emit.heartbeats.enabled" => parse_bool(raw).map(|b| self.emit_heartbeats.enabled = b),
            "emit.heartbeats.interval.seconds" => {
                parse_seconds(raw).map(|d| self.emit_heartbeats.interval = d)
            }
            "emit.checkpoints.enabled" => {
                parse_bool(raw).map(|b| self.emit_checkpoints.enabled = b)
            }
            "emit.checkpoints.interval.seconds" => {
                parse_seconds(raw).map(|d| self.emit_checkpoints.interval = d)
            }
            "sync.group.offsets.enabled" => {
                parse_bool(raw).map(|b| self.sync_group_offsets.enabled = b)
            }
            "sync.group.offsets.interval.seconds" => {
                parse_seconds(raw).map(|d| self.sync_group_offsets.interval = d)
            }
            "emit.offset-syncs.enabled" => parse_bool(raw).map(|b| self.emit_offset_syncs = b),
            "heartbeats.replication.enabled" => {
                parse_bool(raw).map(|b| self.heartbeats_replication = b)
            }
            "offset-syncs.topic.location" => choice(
                raw,
                &[
                    ("source", OffsetSyncsTopicLocation::Source),
                    ("target", OffsetSyncsTopicLocation::Target),
                ],
                "a location",
                "write source or target",
            )
            .map(|value| self.offset_syncs_topic_location = value),
            "offset.lag.max" => {
                let fix = "write 0 or more (0 writes an offset sync for every batch)";
                parse_in_range(raw, 0, i64::MAX, fix).map(|n| self.offset_lag_max = n as u64)
            }
            "topic.filter.class" => {
                only_default_class(raw, "DefaultTopicFilter", "topics and topics.exclude")
            }
            "group.filter.class" => {
                only_default_class(raw, "DefaultGroupFilter", "groups and groups.exclude")
            }
            "config.property.filter.class" => only_default_class(
                raw,
                "DefaultConfigPropertyFilter",
                "config.properties.exclude",
            ),
            START_POSITION => parse_start_position(raw).map(|p| self.start_position = Some(p)),
            MEMORY_BUDGET_BYTES => {
                parse_in_range(raw, MIN_MEMORY_BUDGET_BYTES, i64::MAX, MEMORY_BUDGET_FIX)
                    .map(|n| self.memory_budget_bytes = Some(n as u64))
            }
            FETCH_CONNECTIONS_PER_BROKER if raw.trim().eq_ignore_ascii_case("auto") => {
                self.fetch_connections_per_broker = None;
                Ok(())
            }
            FETCH_CONNECTIONS_PER_BROKER => parse_in_range(
                raw,
                1,
                MAX_FETCH_CONNECTIONS_PER_BROKER.into(),
                FETCH_CONNECTIONS_FIX,
            )
            .map(|n| self.fetch_connections_per_broker = Some(n as u16)),
            PRODUCE_CONNECTIONS_PER_BROKER if raw.trim().eq_ignore_ascii_case("auto") => {
                self.produce_connections_per_broker = None;
                Ok(())
            }
            PRODUCE_CONNECTIONS_PER_BROKER => parse_in_range(
                raw,
                1,
                MAX_PRODUCE_CONNECTIONS_PER_BROKER.into(),
                PRODUCE_CONNECTIONS_FIX,
            )
            .map(|n| self.produce_connections_per_broker = Some(n as u16)),
            _ => return false,
        };
        if let Err(reason) = result {
            diagnostics.error(entry.line(), entry.key(), reason);
        }
        true
    }
}

fn set_exclude(
    exclude: &mut Exclude,
    entry: Entry<'_>,
    kind: ListOf,
    diagnostics: &mut Diagnostics,
) -> Result<(), String> {
    let legacy = entry.name.ends_with(".blacklist");
    let current_name = entry.name.replace(".blacklist", ".exclude");
    let list = patterns(&entry.property.value, kind)?;
    if legacy && exclude.origin == ExcludeOrigin::Current {
        diagnostics.warn(
            WarningKind::Ignored,
            entry.line(),
            entry.key(),
            format!("{current_name} is set too, and wins over this old name (as in MM2); remove this line"),
        );
        return Ok(());
    }
    if legacy {
        diagnostics.warn(
            WarningKind::Deprecated,
            entry.line(),
            entry.key(),
            format!("old name, removed in Kafka 4.0; strait still reads it — rename it to {current_name}"),
        );
    }
    exclude.list = list;
    exclude.origin = if legacy {
        ExcludeOrigin::Legacy
    } else {
        ExcludeOrigin::Current
    };
    Ok(())
}

fn patterns(value: &str, kind: ListOf) -> Result<PatternList, String> {
    if let Some(comment) = trailing_comment(value) {
        return Err(format!(
            "{:?} holds a comment — .properties files have no end-of-line comments: put {comment:?} on a line of its own",
            value.trim()
        ));
    }
    let list = PatternList::parse(value).map_err(|error| error.to_string())?;
    if kind == ListOf::Topics {
        if let Some(spaced) = list
            .patterns()
            .iter()
            .find(|p| p.chars().any(char::is_whitespace))
        {
            return Err(format!(
                "{spaced:?} contains whitespace, which no topic name can contain, so it matches nothing — separate entries with commas and remove the spaces"
            ));
        }
    }
    Ok(list)
}

fn parse_policy_class(value: &str) -> Result<PolicyClass, String> {
    let fix = format!(
        "strait runs no Java classes; write {DEFAULT_POLICY_CLASS} or {IDENTITY_POLICY_CLASS}"
    );
    let options = [
        (DEFAULT_POLICY_CLASS, PolicyClass::Default),
        (IDENTITY_POLICY_CLASS, PolicyClass::Identity),
    ];
    choice(value, &options, "a replication policy strait knows", &fix)
}

/// One of a fixed set of words, matched exactly as MM2 compares them.
fn choice<T: Copy>(value: &str, options: &[(&str, T)], what: &str, fix: &str) -> Result<T, String> {
    let trimmed = value.trim();
    options
        .iter()
        .find(|(word, _)| *word == trimmed)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| format!("{trimmed:?} is not {what} — {}", fix_for(value, fix)))
}

/// A separator becomes part of topic names, so it must be made of the
/// characters topic names allow.
fn parse_separator(value: &str) -> Result<String, String> {
    let separator = value.trim();
    if separator.is_empty() {
        return Err(format!(
            "is empty, which makes remote topic names ambiguous — write a separator such as {DEFAULT_SEPARATOR:?} (MM2's default) or \"_\""
        ));
    }
    if !separator
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "{separator:?} has characters topic names cannot hold — {}",
            fix_for(value, "use only letters, digits, '.', '_' and '-'")
        ));
    }
    Ok(separator.to_string())
}

fn only_default_class(value: &str, class: &str, instead: &str) -> Result<(), String> {
    let expected = format!("org.apache.kafka.connect.mirror.{class}");
    if value.trim() == expected {
        Ok(())
    } else {
        Err(format!(
            "{:?} is a custom class, and strait runs no Java classes — express the selection with {instead}, or remove this line",
            value.trim()
        ))
    }
}

/// The entries that configure one flow, beyond the top-level defaults.
pub(crate) struct FlowEntries<'a> {
    pub source: &'a ClusterEntries<'a>,
    pub target: &'a ClusterEntries<'a>,
    pub line: usize,
    /// `<source>-><target>.consumer.*` and the like, named without the flow prefix.
    pub clients: Vec<Entry<'a>>,
    /// Top-level then target-cluster `offset.storage.topic`.
    pub offset_storage_topic: Option<Entry<'a>>,
}

pub(crate) fn build_flow(
    settings: FlowSettings,
    entries: &FlowEntries<'_>,
    exactly_once: bool,
    diagnostics: &mut Diagnostics,
) -> FlowConfig {
    let source = entries.source.alias;
    let target = entries.target.alias;
    let separators = Separators::new(&settings.separator, settings.internal_topic_separator);
    let policy = match settings.policy_class {
        PolicyClass::Default => ReplicationPolicy::Default { separators },
        PolicyClass::Identity => ReplicationPolicy::Identity {
            separators,
            source_alias: Some(source.to_string()),
        },
    };

    let source_consumer = layered_overrides(entries, "consumer", Role::Source, diagnostics);
    let target_producer = layered_overrides(entries, "producer", Role::Target, diagnostics);
    let source_admin = layered_overrides(entries, "admin", Role::Source, diagnostics);
    let target_admin = layered_overrides(entries, "admin", Role::Target, diagnostics);

    let fetch = fetch_settings(&source_consumer, diagnostics);
    let start_position = match settings.start_position {
        Some(position) => position,
        None => start_from_auto_offset_reset(&source_consumer, diagnostics),
    };

    FlowConfig {
        source: source.to_string(),
        target: target.to_string(),
        line: entries.line,
        topics: TopicFilter {
            include: settings.topics,
            exclude: settings.topics_exclude.list,
        },
        groups: GroupFilter {
            include: settings.groups,
            exclude: settings.groups_exclude.list,
        },
        config_properties: ConfigPropertyFilter {
            exclude: settings.config_properties_exclude.list,
        },
        topic_config_defaults: settings.topic_config_defaults,
        policy,
        replication_factor: settings.replication_factor,
        heartbeats_topic_replication_factor: settings.heartbeats_topic_replication_factor,
        checkpoints_topic_replication_factor: settings.checkpoints_topic_replication_factor,
        offset_syncs_topic_replication_factor: settings.offset_syncs_topic_replication_factor,
        refresh_topics: settings.refresh_topics.periodic(),
        refresh_groups: settings.refresh_groups.periodic(),
        sync_topic_configs: settings.sync_topic_configs.periodic(),
        sync_topic_acls: settings.sync_topic_acls.periodic(),
        emit_heartbeats: settings.emit_heartbeats.periodic(),
        emit_checkpoints: settings.emit_checkpoints.periodic(),
        sync_group_offsets: settings.sync_group_offsets.periodic(),
        emit_offset_syncs: settings.emit_offset_syncs,
        heartbeats_replication: settings.heartbeats_replication,
        offset_syncs_topic_location: settings.offset_syncs_topic_location,
        offset_lag_max: settings.offset_lag_max,
        start_position,
        memory_budget_bytes: settings.memory_budget_bytes,
        fetch_connections_per_broker: settings.fetch_connections_per_broker,
        produce_connections_per_broker: settings.produce_connections_per_broker,
        fetch,
        exactly_once,
        mm2_offsets_topic: entries
            .offset_storage_topic
            .map(|entry| entry.value().to_string())
            .unwrap_or_else(|| format!("mm2-offsets.{source}.internal")),
        source_consumer: source_consumer.overrides(),
        target_producer: target_producer.overrides(),
        source_admin: source_admin.overrides(),
        target_admin: target_admin.overrides(),
    }
}

/// Effective client settings with the entry each came from, so that a bad
/// value is reported at its own line.
struct Layered<'a>(Vec<Entry<'a>>);

impl<'a> Layered<'a> {
    fn get(&self, name: &str) -> Option<Entry<'a>> {
        lookup(&[&self.0], name)
    }

    fn overrides(&self) -> ClientOverrides {
        let mut overrides = ClientOverrides::default();
        for entry in &self.0 {
            overrides.insert(entry.name, entry.value());
        }
        overrides
    }
}

#[derive(Clone, Copy)]
enum Role {
    Source,
    Target,
}

/// `client` is `consumer`, `producer` or `admin`; `role` the end of the
/// flow that client talks to. Later layers win.
fn layered_overrides<'a>(
    flow: &FlowEntries<'a>,
    client: &str,
    role: Role,
    diagnostics: &mut Diagnostics,
) -> Layered<'a> {
    let (cluster, role_name) = match role {
        Role::Source => (flow.source, "source"),
        Role::Target => (flow.target, "target"),
    };
    let flow_prefix = format!("{client}.");
    let role_prefix = format!("{role_name}.{client}.");
    let mut layered = Vec::new();
    let flow_wide = flow.clients.iter().filter_map(|e| strip(e, &flow_prefix));
    let cluster_own = cluster.own.iter().filter_map(|e| strip(e, &flow_prefix));
    let flow_role = flow.clients.iter().filter_map(|e| strip(e, &role_prefix));
    for entry in flow_wide.chain(cluster_own).chain(flow_role) {
        if check_override_is_not_a_connection_setting(cluster, entry, entry.name, diagnostics) {
            layered.push(entry);
        }
    }
    Layered(layered)
}

fn strip<'a>(entry: &Entry<'a>, prefix: &str) -> Option<Entry<'a>> {
    entry.name.strip_prefix(prefix).map(|name| Entry {
        name,
        property: entry.property,
    })
}

fn fetch_settings(consumer: &Layered<'_>, diagnostics: &mut Diagnostics) -> FetchSettings {
    let mut fetch = FetchSettings::default();
    let mut bytes = |name: &str, min: i64, slot: &mut i32| {
        if let Some(entry) = consumer.get(name) {
            match parse_in_range(
                &entry.property.value,
                min,
                i64::from(i32::MAX),
                &format!("write a number of bytes of at least {min}"),
            ) {
                Ok(value) => *slot = value as i32,
                Err(reason) => diagnostics.error(entry.line(), entry.key(), reason),
            }
        }
    };
    bytes("fetch.max.bytes", 1, &mut fetch.max_bytes);
    bytes(
        "max.partition.fetch.bytes",
        1,
        &mut fetch.partition_max_bytes,
    );
    bytes("fetch.min.bytes", 0, &mut fetch.min_bytes);
    if let Some(entry) = consumer.get("fetch.max.wait.ms") {
        match parse_in_range(
            &entry.property.value,
            0,
            i64::from(i32::MAX),
            "write a number of milliseconds, 0 or more",
        ) {
            Ok(millis) => fetch.max_wait = Duration::from_millis(millis as u64),
            Err(reason) => diagnostics.error(entry.line(), entry.key(), reason),
        }
    }
    if let Some(entry) = consumer.get("isolation.level") {
        match entry.value().to_ascii_lowercase().as_str() {
            "read_committed" => fetch.isolation_level = IsolationLevel::ReadCommitted,
            "read_uncommitted" => fetch.isolation_level = IsolationLevel::ReadUncommitted,
            _ => diagnostics.error(
                entry.line(),
                entry.key(),
                format!(
                    "{:?} is not an isolation level — {}",
                    entry.value(),
                    fix_for(
                        &entry.property.value,
                        "write read_committed or read_uncommitted"
                    )
                ),
            ),
        }
    }
    fetch
}

/// MM2 starts a partition without progress where its consumer's
/// `auto.offset.reset` says (earliest unless set).
fn start_from_auto_offset_reset(
    consumer: &Layered<'_>,
    diagnostics: &mut Diagnostics,
) -> StartPosition {
    let Some(entry) = consumer.get("auto.offset.reset") else {
        return StartPosition::Earliest;
    };
    match entry.value().to_ascii_lowercase().as_str() {
        "earliest" => StartPosition::Earliest,
        "latest" => StartPosition::Latest,
        _ => {
            diagnostics.error(
                entry.line(),
                entry.key(),
                format!(
                    "{:?} is not a start position strait can take from auto.offset.reset — write earliest or latest, or set {START_POSITION} (earliest, latest or a time)",
                    entry.value()
                ),
            );
            StartPosition::Earliest
        }
    }
}

/// Checks a value is a whole number without keeping it; used for keys strait
/// accepts for compatibility but does not act on.
pub(crate) fn check_integer(entry: Entry<'_>, diagnostics: &mut Diagnostics) {
    if let Err(reason) = parse_integer(&entry.property.value) {
        diagnostics.error(entry.line(), entry.key(), reason);
    }
}

#[cfg(test)]
mod tests {
    use super::super::properties::Property;
    use super::*;

    fn apply_all(settings: &mut FlowSettings, pairs: &[(&str, &str)]) -> Vec<String> {
        let properties: Vec<Property> = pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Property {
                key: k.to_string(),
                value: v.to_string(),
                line: i + 1,
            })
            .collect();
        let mut diagnostics = Diagnostics::new("f");
        for property in &properties {
            let entry = Entry {
                name: &property.key,
                property,
            };
            assert!(
                settings.apply(entry, &mut diagnostics),
                "{} is a flow key",
                property.key
            );
        }
        let (errors, _) = diagnostics.finish();
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn mm2_defaults_and_our_checkpoint_interval() {
        let settings = FlowSettings::default();
        assert!(settings.topics.matches("orders"));
        assert!(settings.topics_exclude.list.matches("__consumer_offsets"));
        assert_eq!(settings.replication_factor, 2);
        assert_eq!(
            settings.refresh_topics.periodic(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            settings.emit_heartbeats.periodic(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            settings.emit_checkpoints.periodic(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(settings.sync_group_offsets.periodic(), None);
        assert_eq!(settings.offset_lag_max, 100);
        assert_eq!(settings.memory_budget_bytes, None);
    }

    #[test]
    fn current_exclude_name_wins_over_the_legacy_one_in_any_order() {
        for order in [
            [("topics.exclude", "a"), ("topics.blacklist", "b")],
            [("topics.blacklist", "b"), ("topics.exclude", "a")],
        ] {
            let mut settings = FlowSettings::default();
            assert!(apply_all(&mut settings, &order).is_empty());
            assert!(settings.topics_exclude.list.matches("a"));
            assert!(!settings.topics_exclude.list.matches("b"));
        }
        let mut legacy_only = FlowSettings::default();
        assert!(apply_all(&mut legacy_only, &[("groups.blacklist", "test-.*")]).is_empty());
        assert!(legacy_only.groups_exclude.list.matches("test-1"));
        assert!(!legacy_only
            .groups_exclude
            .list
            .matches("console-consumer-1"));
    }

    #[test]
    fn fetch_connections_per_broker_is_auto_or_a_bounded_count() {
        let mut settings = FlowSettings::default();
        assert_eq!(settings.fetch_connections_per_broker, None);
        assert!(apply_all(
            &mut settings,
            &[("strait.fetch.connections.per.broker", "4")]
        )
        .is_empty());
        assert_eq!(settings.fetch_connections_per_broker, Some(4));
        assert!(apply_all(
            &mut settings,
            &[("strait.fetch.connections.per.broker", "Auto")]
        )
        .is_empty());
        assert_eq!(settings.fetch_connections_per_broker, None);
        let errors = apply_all(
            &mut settings,
            &[("strait.fetch.connections.per.broker", "0")],
        );
        assert_eq!(
            errors,
            vec!["f:1: strait.fetch.connections.per.broker: 0 is out of range — write auto (the default: as many as a long link needs) or a count from 1 to 32"]
        );
    }

    #[test]
    fn produce_connections_per_broker_is_a_bounded_count() {
        let mut settings = FlowSettings::default();
        assert_eq!(settings.produce_connections_per_broker, None);
        assert!(apply_all(
            &mut settings,
            &[("strait.produce.connections.per.broker", "3")]
        )
        .is_empty());
        assert_eq!(settings.produce_connections_per_broker, Some(3));
        let errors = apply_all(
            &mut settings,
            &[
                ("strait.produce.connections.per.broker", "0"),
                ("strait.produce.connections.per.broker", "9"),
            ],
        );
        assert_eq!(
            errors,
            vec![
                "f:1: strait.produce.connections.per.broker: 0 is out of range — write auto (the default: 2, and one per partition across a long link to the target) or a count from 1 to 8",
                "f:2: strait.produce.connections.per.broker: 9 is out of range — write auto (the default: 2, and one per partition across a long link to the target) or a count from 1 to 8",
            ]
        );
        assert_eq!(settings.produce_connections_per_broker, Some(3));
        assert!(apply_all(
            &mut settings,
            &[("strait.produce.connections.per.broker", "Auto")]
        )
        .is_empty());
        assert_eq!(settings.produce_connections_per_broker, None);
    }

    #[test]
    fn invalid_values_are_reported_with_their_fix() {
        let mut settings = FlowSettings::default();
        let errors = apply_all(
            &mut settings,
            &[
                ("replication.policy.separator", "/"),
                ("replication.policy.class", "IdentityReplicationPolicy"),
                ("offset-syncs.topic.location", "SOURCE"),
                ("topics", "foo.*  # only some"),
                ("topics", "foo bar"),
                ("topic.filter.class", "com.example.MyFilter"),
                ("emit.checkpoints.interval.seconds", "0"),
                ("strait.memory.budget.bytes", "1024"),
            ],
        );
        assert_eq!(
            errors,
            vec![
                "f:1: replication.policy.separator: \"/\" has characters topic names cannot hold — use only letters, digits, '.', '_' and '-'",
                "f:2: replication.policy.class: \"IdentityReplicationPolicy\" is not a replication policy strait knows — strait runs no Java classes; write org.apache.kafka.connect.mirror.DefaultReplicationPolicy or org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
                "f:3: offset-syncs.topic.location: \"SOURCE\" is not a location — write source or target",
                "f:4: topics: \"foo.*  # only some\" holds a comment — .properties files have no end-of-line comments: put \"# only some\" on a line of its own",
                "f:5: topics: \"foo bar\" contains whitespace, which no topic name can contain, so it matches nothing — separate entries with commas and remove the spaces",
                "f:6: topic.filter.class: \"com.example.MyFilter\" is a custom class, and strait runs no Java classes — express the selection with topics and topics.exclude, or remove this line",
                "f:7: emit.checkpoints.interval.seconds: 0 is out of range — write a number of seconds of at least 1 (turn the task off with its .enabled key instead of 0)",
                "f:8: strait.memory.budget.bytes: 1024 is out of range — write a number of bytes of at least 1048576 (one partition fetch at Kafka's default max.partition.fetch.bytes)",
            ]
        );
    }

    #[test]
    fn unknown_names_are_not_flow_keys() {
        let property = Property {
            key: "bootstrap.servers".into(),
            value: "x:1".into(),
            line: 1,
        };
        let mut diagnostics = Diagnostics::new("f");
        let entry = Entry {
            name: &property.key,
            property: &property,
        };
        assert!(!FlowSettings::default().apply(entry, &mut diagnostics));
    }
}

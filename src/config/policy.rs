//! Remote topic naming, with the answers of MirrorMaker 2's
//! `DefaultReplicationPolicy` and `IdentityReplicationPolicy` (including
//! their corner cases: separators inside aliases or topic names, leading
//! separators, the special treatment of heartbeats by the identity policy).

/// Class names accepted in `replication.policy.class`.
pub const DEFAULT_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.DefaultReplicationPolicy";
pub const IDENTITY_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy";
/// MM2's default `replication.policy.separator`.
pub const DEFAULT_SEPARATOR: &str = ".";

const HEARTBEATS_TOPIC: &str = "heartbeats";

/// The separators a policy writes: `topic` between the source alias and the
/// topic of a remote topic, `internal` inside the names of the checkpoints
/// and offset-syncs topics (MM2's
/// `replication.policy.internal.topic.separator.enabled=false` keeps `.`
/// there for compatibility with MM2 releases before 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Separators {
    topic: String,
    internal: String,
}

impl Separators {
    /// `separator` must not be empty (checked by the configuration layer).
    pub fn new(separator: &str, use_for_internal_topics: bool) -> Self {
        debug_assert!(
            !separator.is_empty(),
            "an empty separator is rejected earlier"
        );
        let internal = if use_for_internal_topics {
            separator
        } else {
            DEFAULT_SEPARATOR
        };
        Separators {
            topic: separator.to_string(),
            internal: internal.to_string(),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn internal(&self) -> &str {
        &self.internal
    }
}

impl Default for Separators {
    fn default() -> Self {
        Separators::new(DEFAULT_SEPARATOR, true)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationPolicy {
    /// Remote topics are named `<source alias><separator><topic>`.
    Default { separators: Separators },
    /// Remote topics keep their names, except heartbeats, which are named as
    /// by the default policy. `source_alias` is the flow's source cluster,
    /// which MM2 hands to the policy as `source.cluster.alias`: it is the
    /// answer of [`ReplicationPolicy::topic_source`] for every other topic.
    Identity {
        separators: Separators,
        source_alias: Option<String>,
    },
}

impl Default for ReplicationPolicy {
    fn default() -> Self {
        ReplicationPolicy::Default {
            separators: Separators::default(),
        }
    }
}

impl ReplicationPolicy {
    pub fn separators(&self) -> &Separators {
        match self {
            ReplicationPolicy::Default { separators }
            | ReplicationPolicy::Identity { separators, .. } => separators,
        }
    }

    /// The MM2 class name of this policy.
    pub fn class_name(&self) -> &'static str {
        match self {
            ReplicationPolicy::Default { .. } => DEFAULT_POLICY_CLASS,
            ReplicationPolicy::Identity { .. } => IDENTITY_POLICY_CLASS,
        }
    }

    /// The name on the target cluster of `topic` from `source_alias`.
    pub fn format_remote_topic(&self, source_alias: &str, topic: &str) -> String {
        match self {
            ReplicationPolicy::Identity { .. } if !looks_like_heartbeats(topic) => {
                topic.to_string()
            }
            _ => format!("{source_alias}{}{topic}", self.separators().topic),
        }
    }

    /// The alias of the cluster `topic` was replicated from, `None` when it
    /// is not a remote topic.
    pub fn topic_source(&self, topic: &str) -> Option<String> {
        match self {
            ReplicationPolicy::Identity { source_alias, .. } if !looks_like_heartbeats(topic) => {
                source_alias.clone()
            }
            _ => self.prefix_source(topic).map(str::to_string),
        }
    }

    /// The name of `topic` one hop upstream, `None` when it is not a remote
    /// topic.
    pub fn upstream_topic(&self, topic: &str) -> Option<String> {
        match self {
            ReplicationPolicy::Identity { .. } if !looks_like_heartbeats(topic) => {
                Some(topic.to_string())
            }
            _ => {
                let source = self.prefix_source(topic)?;
                Some(topic[source.len() + self.separators().topic.len()..].to_string())
            }
        }
    }

    /// The name of `topic` on the cluster where it was first written,
    /// following every hop.
    pub fn original_topic(&self, topic: &str) -> String {
        let mut current = topic.to_string();
        while let Some(upstream) = self.upstream_topic(&current) {
            if upstream == current {
                break;
            }
            current = upstream;
        }
        current
    }

    pub fn heartbeats_topic(&self) -> &'static str {
        HEARTBEATS_TOPIC
    }

    /// The checkpoints topic on the target cluster for groups from `alias`.
    pub fn checkpoints_topic(&self, alias: &str) -> String {
        format!("{alias}{}", self.checkpoints_suffix())
    }

    /// The offset-syncs topic named after `alias`, the cluster at the other
    /// end of the flow from where the topic lives.
    pub fn offset_syncs_topic(&self, alias: &str) -> String {
        let internal = &self.separators().internal;
        format!("mm2-offset-syncs{internal}{alias}{internal}internal")
    }

    pub fn is_heartbeats_topic(&self, topic: &str) -> bool {
        self.original_topic(topic) == HEARTBEATS_TOPIC
    }

    pub fn is_checkpoints_topic(&self, topic: &str) -> bool {
        topic.ends_with(&self.checkpoints_suffix())
    }

    pub fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        topic.ends_with(&format!("{}internal", self.separators().internal))
    }

    /// Kafka's own topics (`__consumer_offsets`), hidden ones (`.x`), Kafka
    /// Connect's (`*-internal`, `*.internal`) and MM2's.
    pub fn is_internal_topic(&self, topic: &str) -> bool {
        self.is_mm2_internal_topic(topic)
            || topic.starts_with("__")
            || topic.starts_with('.')
            || topic.ends_with("-internal")
            || topic.ends_with(".internal")
    }

    /// Whether `topic` already came from `target_alias` somewhere up its
    /// chain of sources, so that mirroring it there would close a loop.
    /// MM2's `MirrorSourceConnector` never replicates such a topic. The
    /// identity policy cannot see sources in names, so it prevents only
    /// heartbeat loops.
    pub fn would_cycle(&self, topic: &str, target_alias: &str) -> bool {
        let mut current = topic.to_string();
        loop {
            let Some(source) = self.topic_source(&current) else {
                return false;
            };
            if source == target_alias {
                return true;
            }
            match self.upstream_topic(&current) {
                Some(upstream) if upstream != current => current = upstream,
                _ => return false,
            }
        }
    }

    fn checkpoints_suffix(&self) -> String {
        let internal = &self.separators().internal;
        format!("{internal}checkpoints{internal}internal")
    }

    /// The text before the first separator, with the answers of Java's
    /// `String.split`: trailing empty pieces are dropped first, and fewer
    /// than two pieces mean "not a remote topic".
    fn prefix_source<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let separator = self.separators().topic.as_str();
        let mut pieces: Vec<&str> = topic.split(separator).collect();
        while pieces.last().is_some_and(|piece| piece.is_empty()) {
            pieces.pop();
        }
        if pieces.len() < 2 {
            None
        } else {
            Some(pieces[0])
        }
    }
}

fn looks_like_heartbeats(topic: &str) -> bool {
    topic.ends_with(HEARTBEATS_TOPIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> ReplicationPolicy {
        ReplicationPolicy::default()
    }

    fn with_separator(separator: &str, internal: bool) -> ReplicationPolicy {
        ReplicationPolicy::Default {
            separators: Separators::new(separator, internal),
        }
    }

    fn identity(source: Option<&str>) -> ReplicationPolicy {
        ReplicationPolicy::Identity {
            separators: Separators::default(),
            source_alias: source.map(str::to_string),
        }
    }

    #[test]
    fn default_policy_names_remote_topics() {
        let cases = [
            (
                default_policy(),
                "us-west",
                "foo-topic",
                "us-west.foo-topic",
            ),
            (default_policy(), "b", "topic1", "b.topic1"),
            (with_separator("__", true), "b", "topic1", "b__topic1"),
            (with_separator("_", true), "a", "x.y", "a_x.y"),
        ];
        for (policy, source, topic, expected) in cases {
            assert_eq!(policy.format_remote_topic(source, topic), expected);
        }
    }

    #[test]
    fn default_policy_reads_sources_like_java_split() {
        // (separator, topic, topic_source, upstream_topic)
        let cases: [(&str, &str, Option<&str>, Option<&str>); 14] = [
            (".", "topic", None, None),
            (".", "source1.topic", Some("source1"), Some("topic")),
            (
                ".",
                "source2.source1.topic",
                Some("source2"),
                Some("source1.topic"),
            ),
            (".", "a..b", Some("a"), Some(".b")),
            // A leading separator yields an empty source, as in Java.
            (".", ".hidden", Some(""), Some("hidden")),
            // Trailing empty pieces are dropped before counting.
            (".", "topic.", None, None),
            (".", "a.b.", Some("a"), Some("b.")),
            (".", ".", None, None),
            (".", "..", None, None),
            (".", "", None, None),
            ("__", "source1__topic4", Some("source1"), Some("topic4")),
            ("__", "a___b", Some("a"), Some("_b")),
            ("__", "source1.topic", None, None),
            ("-", "us-west-orders", Some("us"), Some("west-orders")),
        ];
        for (separator, topic, source, upstream) in cases {
            let policy = with_separator(separator, true);
            assert_eq!(
                policy.topic_source(topic).as_deref(),
                source,
                "source of {topic:?} with {separator:?}"
            );
            assert_eq!(
                policy.upstream_topic(topic).as_deref(),
                upstream,
                "upstream of {topic:?} with {separator:?}"
            );
        }
    }

    #[test]
    fn original_topic_follows_every_hop() {
        let policy = default_policy();
        assert_eq!(policy.original_topic("topic"), "topic");
        assert_eq!(policy.original_topic("a.topic"), "topic");
        assert_eq!(policy.original_topic("c.b.a.topic"), "topic");
        assert_eq!(identity(Some("a")).original_topic("topic"), "topic");
        assert_eq!(
            identity(None).original_topic("b.a.heartbeats"),
            "heartbeats"
        );
    }

    #[test]
    fn heartbeats_topics() {
        let policy = default_policy();
        for topic in [
            "heartbeats",
            "source1.heartbeats",
            "source2.source1.heartbeats",
        ] {
            assert!(policy.is_heartbeats_topic(topic), "{topic}");
        }
        for topic in [
            "heartbeats!",
            "!heartbeats",
            "source1heartbeats",
            "source1-heartbeats",
        ] {
            assert!(!policy.is_heartbeats_topic(topic), "{topic}");
        }
        // With another separator, a dotted name is no longer a remote heartbeats topic.
        assert!(!with_separator("_", true).is_heartbeats_topic("us-west.heartbeats"));
        assert!(with_separator("_", true).is_heartbeats_topic("us-west_heartbeats"));
        assert_eq!(policy.heartbeats_topic(), "heartbeats");
        assert_eq!(with_separator("__", false).heartbeats_topic(), "heartbeats");
    }

    #[test]
    fn checkpoints_topics() {
        let policy = default_policy();
        assert_eq!(
            policy.checkpoints_topic("source1"),
            "source1.checkpoints.internal"
        );
        assert!(policy.is_checkpoints_topic("source1.checkpoints.internal"));
        assert!(policy.is_checkpoints_topic("source2.source1.checkpoints.internal"));
        for topic in [
            "checkpoints.internal",
            "checkpoints-internal",
            "checkpoints.internal!",
            "!checkpoints.internal",
            "source1checkpointsinternal",
        ] {
            assert!(!policy.is_checkpoints_topic(topic), "{topic}");
        }
    }

    #[test]
    fn internal_topic_names_follow_the_internal_separator_switch() {
        let custom = with_separator("__", true);
        let legacy = with_separator("__", false);
        assert_eq!(
            custom.offset_syncs_topic("CLUSTER"),
            "mm2-offset-syncs__CLUSTER__internal"
        );
        assert_eq!(
            legacy.offset_syncs_topic("CLUSTER"),
            "mm2-offset-syncs.CLUSTER.internal"
        );
        assert_eq!(
            custom.checkpoints_topic("CLUSTER"),
            "CLUSTER__checkpoints__internal"
        );
        assert_eq!(
            legacy.checkpoints_topic("CLUSTER"),
            "CLUSTER.checkpoints.internal"
        );
        assert_eq!(
            default_policy().offset_syncs_topic("B"),
            "mm2-offset-syncs.B.internal"
        );
        assert!(custom.is_checkpoints_topic("A__checkpoints__internal"));
        assert!(!custom.is_checkpoints_topic("A.checkpoints.internal"));
        assert!(custom.is_mm2_internal_topic("mm2-offset-syncs__B__internal"));
    }

    #[test]
    fn internal_topics() {
        let policy = default_policy();
        for topic in [
            "__consumer_offsets",
            ".hiddentopic",
            "mm2-offsets.CLUSTER.internal",
            "mm2-offsets-CLUSTER-internal",
            "connect-configs-internal",
        ] {
            assert!(policy.is_internal_topic(topic), "{topic}");
        }
        for topic in ["mm2-offsets_CLUSTER_internal", "orders", "internal"] {
            assert!(!policy.is_internal_topic(topic), "{topic}");
        }
        // A custom separator adds its own suffix; Connect's suffixes still count.
        let custom = with_separator("_", true);
        assert!(custom.is_internal_topic("mm2-offset-syncs_B_internal"));
        assert!(custom.is_internal_topic("x.internal"));
    }

    #[test]
    fn cycles_are_detected_through_the_whole_chain() {
        let policy = default_policy();
        // (topic, target, cycles)
        let cases = [
            ("target.topic1", "target", true),
            ("target.source.topic1", "target", true),
            ("source.target.topic1", "target", true),
            ("target.source.target.topic1", "target", true),
            ("source.target.source.topic1", "target", true),
            ("topic1", "target", false),
            ("source.topic1", "target", false),
            ("other.source.topic1", "target", false),
        ];
        for (topic, target, cycles) in cases {
            assert_eq!(
                policy.would_cycle(topic, target),
                cycles,
                "{topic} -> {target}"
            );
        }
    }

    #[test]
    fn identity_policy_keeps_names_and_prevents_only_heartbeat_loops() {
        for policy in [identity(None), identity(Some("source"))] {
            for topic in [
                "target.topic1",
                "target.source.topic1",
                "source.target.topic1",
                "topic1",
                "othersource.topic1",
                "heartbeats",
                "othersource.heartbeats",
            ] {
                assert!(
                    !policy.would_cycle(topic, "target"),
                    "{topic} with {policy:?}"
                );
            }
            for topic in [
                "target.heartbeats",
                "target.source.heartbeats",
                "source.target.heartbeats",
                "source.target.source.heartbeats",
            ] {
                assert!(
                    policy.would_cycle(topic, "target"),
                    "{topic} with {policy:?}"
                );
            }
        }
    }

    #[test]
    fn identity_policy_sources() {
        let policy = identity(Some("primary"));
        assert_eq!(policy.format_remote_topic("primary", "topic1"), "topic1");
        assert_eq!(policy.topic_source("topic1").as_deref(), Some("primary"));
        assert_eq!(policy.upstream_topic("topic1").as_deref(), Some("topic1"));
        assert_eq!(
            policy.format_remote_topic("backup", "heartbeats"),
            "backup.heartbeats"
        );
        assert_eq!(
            policy.topic_source("backup.heartbeats").as_deref(),
            Some("backup")
        );
        assert_eq!(policy.topic_source("heartbeats"), None);
        // Anything ending in "heartbeats" is named by the default rules.
        assert_eq!(
            policy.format_remote_topic("b", "xheartbeats"),
            "b.xheartbeats"
        );
        assert_eq!(policy.topic_source("xheartbeats"), None);
        assert_eq!(identity(None).topic_source("topic1"), None);
    }

    #[test]
    fn class_names() {
        assert_eq!(default_policy().class_name(), DEFAULT_POLICY_CLASS);
        assert_eq!(identity(None).class_name(), IDENTITY_POLICY_CLASS);
    }
}

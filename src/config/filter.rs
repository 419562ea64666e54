//! Include/exclude lists of regular expressions, matched against a whole
//! name as Java's `Pattern.matches` does: MM2's `DefaultTopicFilter`,
//! `DefaultGroupFilter` and `DefaultConfigPropertyFilter`.

use regex::Regex;

/// MM2's defaults (`DefaultTopicFilter`, `DefaultGroupFilter`,
/// `DefaultConfigPropertyFilter`).
pub const TOPICS_DEFAULT: &str = ".*";
pub const TOPICS_EXCLUDE_DEFAULT: &str = r".*[\-\.]internal, .*\.replica, __.*";
pub const GROUPS_DEFAULT: &str = ".*";
pub const GROUPS_EXCLUDE_DEFAULT: &str = "console-consumer-.*, connect-.*, __.*";
pub const CONFIG_PROPERTIES_EXCLUDE_DEFAULT: &str = r"follower\.replication\.throttled\.replicas, leader\.replication\.throttled\.replicas, message\.timestamp\.difference\.max\.ms, message\.timestamp\.type, unclean\.leader\.election\.enable, min\.insync\.replicas";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a regular expression strait can use: {reason} — {}", self.fix())]
pub struct PatternError {
    /// The offending entry of the list, or the whole list when no single
    /// entry is at fault (Java joins the entries with `|` before compiling).
    pub pattern: String,
    pub reason: String,
    /// Valid for Java, which has look-around and backreferences; strait's
    /// regex engine (linear time) has neither.
    pub java_only: bool,
}

impl PatternError {
    fn fix(&self) -> &'static str {
        if self.java_only {
            "Java accepts it, strait's regex engine does not: rewrite it without look-around or backreferences"
        } else {
            "fix the expression (entries are regular expressions matched against whole names)"
        }
    }
}

/// A comma-separated list of regular expressions. MM2 joins them with `|`
/// and matches whole names; an empty list matches nothing.
#[derive(Debug, Clone)]
pub struct PatternList {
    patterns: Vec<String>,
    regex: Option<Regex>,
}

impl PatternList {
    pub fn new(patterns: Vec<String>) -> Result<Self, PatternError> {
        if patterns.is_empty() {
            return Ok(PatternList {
                patterns,
                regex: None,
            });
        }
        // Java compiles the joined text itself: check that first, so that
        // entries like "a)(b" are refused as MM2 refuses them.
        let joined = patterns.join("|");
        let anchored = Regex::new(&joined).and_then(|_| Regex::new(&format!("^(?:{joined})$")));
        match anchored {
            Ok(regex) => Ok(PatternList {
                patterns,
                regex: Some(regex),
            }),
            Err(error) => Err(blame(&patterns, error)),
        }
    }

    /// Splits a configuration value the way Kafka's `ConfigDef` splits a
    /// LIST: trimmed, then cut at commas with the whitespace around them.
    pub fn parse(value: &str) -> Result<Self, PatternError> {
        PatternList::new(split_list(value))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    pub fn matches(&self, name: &str) -> bool {
        self.regex
            .as_ref()
            .is_some_and(|regex| regex.is_match(name))
    }
}

impl PartialEq for PatternList {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for PatternList {}

/// Kafka's LIST parsing: an empty value is an empty list; otherwise empty
/// entries are kept (`a,,b` has three).
pub fn split_list(value: &str) -> Vec<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split(',')
        .map(|entry| entry.trim().to_string())
        .collect()
}

fn blame(patterns: &[String], joined_error: regex::Error) -> PatternError {
    let (pattern, error) = patterns
        .iter()
        .find_map(|pattern| {
            Regex::new(pattern)
                .err()
                .map(|error| (pattern.clone(), error))
        })
        .unwrap_or_else(|| (patterns.join("|"), joined_error));
    let reason = last_line(&error);
    PatternError {
        java_only: reason.contains("look-around") || reason.contains("backreferences"),
        pattern,
        reason,
    }
}

/// The regex crate's message is several lines with a caret diagram; its
/// last line is the actual reason.
fn last_line(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find(|line| line.trim_start().starts_with("error:"))
        .map(|line| line.trim_start().trim_start_matches("error:").trim())
        .unwrap_or(text.trim())
        .to_string()
}

/// Which topics a flow replicates: included and not excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    pub include: PatternList,
    pub exclude: PatternList,
}

impl TopicFilter {
    pub fn should_replicate(&self, topic: &str) -> bool {
        self.include.matches(topic) && !self.exclude.matches(topic)
    }
}

impl Default for TopicFilter {
    fn default() -> Self {
        TopicFilter {
            include: defaults(TOPICS_DEFAULT),
            exclude: defaults(TOPICS_EXCLUDE_DEFAULT),
        }
    }
}

/// Which consumer groups a flow checkpoints: included and not excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFilter {
    pub include: PatternList,
    pub exclude: PatternList,
}

impl GroupFilter {
    pub fn should_replicate(&self, group: &str) -> bool {
        self.include.matches(group) && !self.exclude.matches(group)
    }
}

impl Default for GroupFilter {
    fn default() -> Self {
        GroupFilter {
            include: defaults(GROUPS_DEFAULT),
            exclude: defaults(GROUPS_EXCLUDE_DEFAULT),
        }
    }
}

/// Which topic configuration properties a flow copies to remote topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPropertyFilter {
    pub exclude: PatternList,
}

impl ConfigPropertyFilter {
    pub fn should_replicate(&self, property: &str) -> bool {
        !self.exclude.matches(property)
    }
}

impl Default for ConfigPropertyFilter {
    fn default() -> Self {
        ConfigPropertyFilter {
            exclude: defaults(CONFIG_PROPERTIES_EXCLUDE_DEFAULT),
        }
    }
}

pub(crate) fn defaults(value: &str) -> PatternList {
    PatternList::parse(value).expect("MM2's default patterns compile")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(value: &str) -> PatternList {
        PatternList::parse(value).unwrap()
    }

    #[test]
    fn list_splitting_follows_configdef() {
        assert_eq!(split_list("a, b ,c"), vec!["a", "b", "c"]);
        assert_eq!(split_list("  "), Vec::<String>::new());
        assert_eq!(split_list("a,,b"), vec!["a", "", "b"]);
        assert_eq!(
            split_list("foobar-topic, quux-.*"),
            vec!["foobar-topic", "quux-.*"]
        );
    }

    #[test]
    fn patterns_match_whole_names() {
        let patterns = list("foo.*, bar");
        assert!(patterns.matches("foo"));
        assert!(patterns.matches("foobar"));
        assert!(patterns.matches("bar"));
        assert!(!patterns.matches("xfoo"));
        assert!(!patterns.matches("barx"));
        // The alternation is grouped: "a|b" does not become "^a|b$".
        let alternation = list("a|b");
        assert!(!alternation.matches("ax"));
        assert!(!alternation.matches("xb"));
    }

    #[test]
    fn an_empty_list_matches_nothing() {
        let empty = list("");
        assert!(!empty.matches(""));
        assert!(!empty.matches("topic"));
    }

    #[test]
    fn entries_are_joined_before_compiling_as_java_does() {
        // Neither half compiles alone; MM2 accepts the joined "(foo|bar)".
        let joined = list("(foo, bar)");
        assert!(joined.matches("foo"));
        assert!(joined.matches("bar"));
    }

    #[test]
    fn entries_that_break_the_grouping_are_refused_as_java_does() {
        let error = PatternList::parse("a)(b").unwrap_err();
        assert_eq!(error.pattern, "a)(b");
    }

    #[test]
    fn a_bad_entry_is_named() {
        let error = PatternList::parse("ok, [unclosed").unwrap_err();
        assert_eq!(error.pattern, "[unclosed");
        assert!(
            error.reason.contains("unclosed character class"),
            "{}",
            error.reason
        );
    }

    #[test]
    fn look_around_is_explained() {
        let error = PatternList::parse("(?!internal).*").unwrap_err();
        assert!(error.java_only);
        assert!(error.to_string().contains("Java accepts it"), "{error}");
        assert!(!PatternList::parse("(").unwrap_err().java_only);
    }

    #[test]
    fn default_topic_filter_is_mm2s() {
        let filter = TopicFilter::default();
        for topic in ["orders", "a.b-c", "replica", "x.replicas"] {
            assert!(filter.should_replicate(topic), "{topic}");
        }
        for topic in [
            "__consumer_offsets",
            "mm2-offsets.A.internal",
            "connect-configs-internal",
            "orders.replica",
        ] {
            assert!(!filter.should_replicate(topic), "{topic}");
        }
    }

    #[test]
    fn default_group_filter_is_mm2s() {
        let filter = GroupFilter::default();
        assert!(filter.should_replicate("billing"));
        for group in ["console-consumer-1234", "connect-sink", "__internal"] {
            assert!(!filter.should_replicate(group), "{group}");
        }
    }

    #[test]
    fn exclusion_wins_over_inclusion() {
        let filter = TopicFilter {
            include: list("orders.*"),
            exclude: list("orders-test"),
        };
        assert!(filter.should_replicate("orders-eu"));
        assert!(!filter.should_replicate("orders-test"));
        assert!(!filter.should_replicate("payments"));
    }

    #[test]
    fn default_config_property_filter_is_mm2s() {
        let filter = ConfigPropertyFilter::default();
        assert!(filter.should_replicate("retention.ms"));
        assert!(filter.should_replicate("cleanup.policy"));
        assert!(!filter.should_replicate("min.insync.replicas"));
        assert!(!filter.should_replicate("leader.replication.throttled.replicas"));
        // Dots are escaped in the defaults: a look-alike name is not excluded.
        assert!(filter.should_replicate("minXinsync.replicas"));
    }
}

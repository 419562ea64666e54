//! What a key of `connect-mirror-maker.properties` means: its scope
//! (top level, `<alias>.`, `<source>-><target>.`) and what kind of setting
//! it names, plus "did you mean" suggestions for keys nobody knows.

/// The keys strait adds to MM2's format. All start with `strait.` so that
/// MM2 ignores them and a file stays usable by both.
pub const START_POSITION: &str = "strait.start.position";
pub const MEMORY_BUDGET_BYTES: &str = "strait.memory.budget.bytes";
/// Fetch connections per source broker: `auto` (the default) adds connections while a
/// long link with data waiting gains from them; a number fixes the count.
pub const FETCH_CONNECTIONS_PER_BROKER: &str = "strait.fetch.connections.per.broker";
/// Produce connections per target broker, each carrying a fixed share of the partitions.
pub const PRODUCE_CONNECTIONS_PER_BROKER: &str = "strait.produce.connections.per.broker";
pub const STATUS_INTERVAL_SECONDS: &str = "strait.status.interval.seconds";
/// TCP congestion control for the connections to a cluster (`<alias>.` or top level
/// for every cluster); unset: the kernel's default (net.ipv4.tcp_congestion_control).
pub const TCP_CONGESTION_CONTROL: &str = "strait.tcp.congestion.control";
/// Idle seconds before TCP keepalive probes on the connections to a cluster; 0: off.
pub const TCP_KEEPALIVE_SECONDS: &str = "strait.tcp.keepalive.seconds";
/// Kafka Connect's offset commit period, which MM2 files already carry: for strait, how
/// often a flow commits its progress to the target (top level only).
pub const PROGRESS_COMMIT_INTERVAL_MS: &str = "offset.flush.interval.ms";

/// Settings of a replication flow (MM2's connector settings plus strait's
/// own), valid at top level (defaults for every flow) and as
/// `<source>-><target>.<key>`.
pub(crate) const FLOW_KEYS: &[&str] = &[
    "topics",
    "topics.exclude",
    "topics.blacklist",
    "groups",
    "groups.exclude",
    "groups.blacklist",
    "config.properties.exclude",
    "config.properties.blacklist",
    "use.defaults.from",
    "replication.policy.class",
    "replication.policy.separator",
    "replication.policy.internal.topic.separator.enabled",
    "replication.factor",
    "heartbeats.topic.replication.factor",
    "checkpoints.topic.replication.factor",
    "offset-syncs.topic.replication.factor",
    "refresh.topics.enabled",
    "refresh.topics.interval.seconds",
    "refresh.groups.enabled",
    "refresh.groups.interval.seconds",
    "sync.topic.configs.enabled",
    "sync.topic.configs.interval.seconds",
    "sync.topic.acls.enabled",
    "sync.topic.acls.interval.seconds",
    "emit.heartbeats.enabled",
    "emit.heartbeats.interval.seconds",
    "emit.checkpoints.enabled",
    "emit.checkpoints.interval.seconds",
    "sync.group.offsets.enabled",
    "sync.group.offsets.interval.seconds",
    "emit.offset-syncs.enabled",
    "heartbeats.replication.enabled",
    "offset-syncs.topic.location",
    "offset.lag.max",
    "topic.filter.class",
    "group.filter.class",
    "config.property.filter.class",
    START_POSITION,
    MEMORY_BUDGET_BYTES,
    FETCH_CONNECTIONS_PER_BROKER,
    PRODUCE_CONNECTIONS_PER_BROKER,
];

/// How strait connects to a cluster (Kafka's client connection settings, as
/// MM2's `MirrorClientConfig` lists them), valid as `<alias>.<key>` and at
/// top level as a default for every cluster.
pub(crate) fn is_connection_key(key: &str) -> bool {
    key == "bootstrap.servers"
        || key == "security.protocol"
        || key.starts_with("ssl.")
        || key.starts_with("sasl.")
}

/// Connection settings strait reads; the other `ssl.*` / `sasl.*` keys are
/// accepted and noted as unused.
pub(crate) const CONNECTION_KEYS_USED: &[&str] = &[
    "bootstrap.servers",
    "security.protocol",
    "sasl.mechanism",
    "sasl.jaas.config",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
];

/// Other per-cluster settings strait reads.
pub(crate) const CLUSTER_KEYS: &[&str] = &[
    "client.id",
    "send.buffer.bytes",
    "receive.buffer.bytes",
    "exactly.once.source.support",
    TCP_CONGESTION_CONTROL,
    TCP_KEEPALIVE_SECONDS,
];

/// Client override prefixes: `<alias>.consumer.fetch.max.bytes`, ...
pub(crate) const CLIENT_PREFIXES: &[&str] = &["consumer.", "producer.", "admin."];

/// The Java client of MM2 that a `consumer.` / `producer.` / `admin.` override configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientRole {
    Consumer,
    Producer,
    Admin,
}

impl ClientRole {
    /// The role and the setting of a client override's name after its cluster or flow:
    /// `consumer.fetch.min.bytes`, and in a flow also `source.consumer.`, `source.admin.`,
    /// `target.producer.` and `target.admin.` (MM2's clients of the flow's two ends).
    pub(crate) fn split(name: &str) -> Option<(ClientRole, &str)> {
        const ROLES: &[(&str, ClientRole)] = &[
            ("consumer.", ClientRole::Consumer),
            ("source.consumer.", ClientRole::Consumer),
            ("producer.", ClientRole::Producer),
            ("target.producer.", ClientRole::Producer),
            ("admin.", ClientRole::Admin),
            ("source.admin.", ClientRole::Admin),
            ("target.admin.", ClientRole::Admin),
        ];
        ROLES.iter().find_map(|(prefix, role)| {
            name.strip_prefix(prefix)
                .filter(|setting| !setting.is_empty())
                .map(|setting| (*role, setting))
        })
    }
}

/// Consumer settings strait applies to its own fetches (see `flow::fetch_settings`).
const CONSUMER_SETTINGS_USED: &[&str] = &[
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.min.bytes",
    "fetch.max.wait.ms",
    "isolation.level",
    "auto.offset.reset",
];

/// Whether consumer `setting` shapes strait's fetches (and nothing else): it takes effect
/// only where its cluster is an enabled flow's source.
pub(crate) fn is_fetch_setting(setting: &str) -> bool {
    CONSUMER_SETTINGS_USED.contains(&setting)
}

const SOCKET_BUFFER_SETTINGS: &[&str] = &["send.buffer.bytes", "receive.buffer.bytes"];

/// Why strait has no use for client override `setting` of `role`, written per cluster
/// (`<alias>.producer.batch.size`) or per flow; None when strait uses it. Connection
/// settings are checked on their own (`check_override_is_not_a_connection_setting`).
/// `alias`: the cluster to name in a fix.
pub(crate) fn unused_client_setting(
    role: ClientRole,
    setting: &str,
    per_cluster: bool,
    alias: &str,
) -> Option<String> {
    if is_connection_key(setting) {
        return None;
    }
    if SOCKET_BUFFER_SETTINGS.contains(&setting) {
        return match (per_cluster, role) {
            (true, ClientRole::Consumer | ClientRole::Producer) => None,
            _ => Some(format!(
                "strait sizes the socket buffers of all its connections to a cluster alike — write {alias}.{setting} instead; ignored"
            )),
        };
    }
    match role {
        ClientRole::Consumer if is_fetch_setting(setting) => None,
        ClientRole::Consumer => Some(format!(
            "strait fetches record batches itself, without a consumer group or polls; of the consumer's settings it uses {} and the socket buffers — ignored",
            CONSUMER_SETTINGS_USED.join(", ")
        )),
        ClientRole::Producer => Some(
            "strait forwards the source's record batches as they are, as an idempotent producer with acks=all and up to five batches per partition on their way; of the producer's settings it uses only the socket buffers — ignored"
                .to_string(),
        ),
        ClientRole::Admin => Some(
            "strait's admin requests take only the cluster's connection settings — ignored"
                .to_string(),
        ),
    }
}

/// Keys of MM2 and Kafka Connect that strait has no use for, with the
/// reason. Matched exactly, or as a prefix when they end with `.`.
const IGNORED_KEYS: &[(&str, &str)] = &[
    ("tasks.max", "strait spreads partitions over its own workers, not over Connect tasks"),
    ("consumer.poll.timeout.ms", "strait does not poll through a Java consumer; fetch waits come from consumer.fetch.max.wait.ms"),
    ("admin.timeout.ms", "strait's admin requests use its own timeouts"),
    ("metric.reporters", "strait reports through its status line and logs"),
    ("forwarding.admin.class", "strait cannot load Java classes"),
    ("key.converter", "strait copies record bytes as they are"),
    ("value.converter", "strait copies record bytes as they are"),
    ("header.converter", "strait copies record bytes as they are"),
    ("offset.storage.", "Kafka Connect's own storage; strait keeps its progress on the target cluster"),
    ("config.storage.", "Kafka Connect's own storage"),
    ("status.storage.", "Kafka Connect's own storage"),
    ("offset.flush.timeout.ms", "strait commits progress without blocking the copy"),
    ("group.id", "Kafka Connect's worker group"),
    ("worker.", "a Kafka Connect worker setting"),
    ("task.", "a Kafka Connect task setting"),
    ("plugin.path", "strait cannot load Java plugins"),
    ("listeners", "MM2's REST server; strait has none"),
    ("rest.", "MM2's REST server; strait has none"),
    ("admin.listeners", "MM2's REST server; strait has none"),
    ("dedicated.mode.enable.internal.rest", "MM2's REST server; strait has none"),
    ("name", "a Kafka Connect connector setting"),
    ("connector.class", "a Kafka Connect connector setting"),
    ("errors.", "a Kafka Connect connector setting"),
    ("transforms", "Kafka Connect transformations; strait copies records unchanged"),
    ("predicates", "Kafka Connect transformations; strait copies records unchanged"),
    ("scheduled.rebalance.max.delay.ms", "a Kafka Connect worker setting"),
    ("connect.protocol", "a Kafka Connect worker setting"),
    ("session.timeout.ms", "a Kafka Connect worker setting"),
    ("heartbeat.interval.ms", "a Kafka Connect worker setting"),
    ("rebalance.timeout.ms", "a Kafka Connect worker setting"),
    ("metrics.", "strait reports through its status line and logs"),
    ("inter.worker.", "a Kafka Connect worker setting"),
];

pub(crate) fn ignored_reason(key: &str) -> Option<&'static str> {
    IGNORED_KEYS.iter().find_map(|(known, reason)| {
        let hit = if known.ends_with('.') {
            key.starts_with(known)
        } else {
            key == *known || key.starts_with(&format!("{known}."))
        };
        hit.then_some(*reason)
    })
}

/// Where a key applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    Top,
    Cluster(String),
    Flow { source: String, target: String },
}

/// A key split into its scope and the setting name after the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScopedKey {
    pub scope: Scope,
    pub name: String,
}

/// A `<source>-><target>.` key whose clusters are not both declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UndeclaredFlow {
    pub source: String,
    pub target: String,
}

/// Splits `key` against the declared aliases. A flow prefix is recognised
/// by `->`; the longest declared alias wins when aliases share a prefix
/// (`us` and `us.east`).
pub(crate) fn scope_of(key: &str, aliases: &[String]) -> Result<ScopedKey, UndeclaredFlow> {
    if let Some((source, rest)) = key.split_once("->") {
        let target = longest_alias_prefix(rest, aliases);
        return match target {
            Some(target) if aliases.iter().any(|a| a == source) => Ok(ScopedKey {
                scope: Scope::Flow {
                    source: source.to_string(),
                    target: target.to_string(),
                },
                name: rest[target.len() + 1..].to_string(),
            }),
            _ => Err(UndeclaredFlow {
                source: source.to_string(),
                target: target
                    .map(str::to_string)
                    .unwrap_or_else(|| rest.split('.').next().unwrap_or_default().to_string()),
            }),
        };
    }
    if let Some(alias) = longest_alias_prefix(key, aliases) {
        return Ok(ScopedKey {
            scope: Scope::Cluster(alias.to_string()),
            name: key[alias.len() + 1..].to_string(),
        });
    }
    Ok(ScopedKey {
        scope: Scope::Top,
        name: key.to_string(),
    })
}

fn longest_alias_prefix<'a>(text: &str, aliases: &'a [String]) -> Option<&'a str> {
    aliases
        .iter()
        .filter(|alias| {
            text.len() > alias.len() + 1
                && text.starts_with(alias.as_str())
                && text.as_bytes()[alias.len()] == b'.'
        })
        .max_by_key(|alias| alias.len())
        .map(String::as_str)
}

/// Every setting name strait reads in some scope, for suggestions.
fn known_names() -> impl Iterator<Item = &'static str> {
    FLOW_KEYS
        .iter()
        .chain(CONNECTION_KEYS_USED)
        .chain(CLUSTER_KEYS)
        .chain(
            [
                "enabled",
                "clusters",
                STATUS_INTERVAL_SECONDS,
                PROGRESS_COMMIT_INTERVAL_MS,
            ]
            .iter(),
        )
        .copied()
}

/// A likely intended spelling of an unknown key: a misspelt setting name
/// (within two edits), or an alias written in another case or with a typo.
pub(crate) fn suggest(key: &str, aliases: &[String], pairs: &[(String, String)]) -> Option<String> {
    let (prefix, name) = match scope_of(key, aliases) {
        Ok(ScopedKey {
            scope: Scope::Top,
            name,
        }) => match suggest_prefix(key, aliases, pairs) {
            Some(fixed) => return Some(fixed),
            None => (String::new(), name),
        },
        Ok(ScopedKey { name, .. }) => (key[..key.len() - name.len()].to_string(), name),
        Err(_) => return suggest_prefix(key, aliases, pairs),
    };
    closest(&name, known_names(), 2).map(|best| format!("{prefix}{best}"))
}

/// `Us-east.bootstrap.servers` → `us-east.bootstrap.servers`;
/// `us-west->us.east.topics` → `us-west->us-east.topics`.
fn suggest_prefix(key: &str, aliases: &[String], pairs: &[(String, String)]) -> Option<String> {
    let flow_prefixes = pairs.iter().map(|(s, t)| format!("{s}->{t}."));
    let cluster_prefixes = aliases.iter().map(|a| format!("{a}."));
    let candidates: Vec<String> = if key.contains("->") {
        flow_prefixes.collect()
    } else {
        cluster_prefixes.collect()
    };
    let mut best: Option<(usize, String)> = None;
    for prefix in candidates {
        let plen = prefix.len();
        for cut in plen.saturating_sub(2)..=plen + 2 {
            let Some(head) = key.get(..cut) else { continue };
            if head == prefix || !head.ends_with('.') {
                continue;
            }
            let distance = if head.eq_ignore_ascii_case(&prefix) {
                0
            } else {
                levenshtein(head, &prefix)
            };
            let rest = &key[cut..];
            if distance <= 2 && !rest.is_empty() && best.as_ref().is_none_or(|(d, _)| distance < *d)
            {
                best = Some((distance, format!("{prefix}{rest}")));
            }
        }
    }
    best.map(|(_, suggestion)| suggestion)
}

fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
    max: usize,
) -> Option<&'a str> {
    candidates
        .map(|candidate| (levenshtein(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= max && *distance > 0)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn flow(source: &str, target: &str, name: &str) -> ScopedKey {
        ScopedKey {
            scope: Scope::Flow {
                source: source.into(),
                target: target.into(),
            },
            name: name.into(),
        }
    }

    #[test]
    fn scopes() {
        let declared = aliases(&["us-west", "us-east", "us", "us.east"]);
        assert_eq!(
            scope_of("us-west->us-east.topics", &declared),
            Ok(flow("us-west", "us-east", "topics"))
        );
        assert_eq!(
            scope_of("us->us.east.topics", &declared),
            Ok(flow("us", "us.east", "topics"))
        );
        assert_eq!(
            scope_of("us.east.bootstrap.servers", &declared),
            Ok(ScopedKey {
                scope: Scope::Cluster("us.east".into()),
                name: "bootstrap.servers".into()
            })
        );
        assert_eq!(
            scope_of("topics.exclude", &declared),
            Ok(ScopedKey {
                scope: Scope::Top,
                name: "topics.exclude".into()
            })
        );
        assert_eq!(
            scope_of("eu->us-east.enabled", &declared),
            Err(UndeclaredFlow {
                source: "eu".into(),
                target: "us-east".into()
            })
        );
        assert_eq!(
            scope_of("us-west->mars.enabled", &declared),
            Err(UndeclaredFlow {
                source: "us-west".into(),
                target: "mars".into()
            })
        );
    }

    #[test]
    fn ignored_keys_match_exactly_or_by_prefix() {
        assert!(ignored_reason("tasks.max").is_some());
        assert!(ignored_reason("offset.storage.topic").is_some());
        assert!(ignored_reason("key.converter.schemas.enable").is_some());
        assert!(ignored_reason("tasks.maximum").is_none());
        assert!(ignored_reason("topics").is_none());
    }

    #[test]
    fn suggestions() {
        let declared = aliases(&["us-west", "us-east"]);
        let pairs = vec![
            ("us-west".to_string(), "us-east".to_string()),
            ("us-east".to_string(), "us-west".to_string()),
        ];
        let cases = [
            (
                "Us-east.bootstrap.servers",
                Some("us-east.bootstrap.servers"),
            ),
            ("us-west->us.east.topics", Some("us-west->us-east.topics")),
            ("topic", Some("topics")),
            ("topics.exlude", Some("topics.exclude")),
            ("us-west->us-east.topic", Some("us-west->us-east.topics")),
            (
                "us-east.bootstrap.server",
                Some("us-east.bootstrap.servers"),
            ),
            ("completely.different", None),
        ];
        for (key, expected) in cases {
            assert_eq!(
                suggest(key, &declared, &pairs).as_deref(),
                expected,
                "{key}"
            );
        }
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }
}

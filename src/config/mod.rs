//! strait's configuration: MirrorMaker 2's `connect-mirror-maker.properties`,
//! read whole and checked before anything runs. Every error of a file comes
//! back at once, each with its file, line, key, reason and fix; keys that do
//! nothing come back as warnings.
//!
//! The format is MM2's ([`MirrorConfig::load`]): `clusters`,
//! `<alias>.bootstrap.servers`, `<alias>.<client setting>`,
//! `<alias>.consumer.*` / `.producer.*` / `.admin.*`,
//! `<source>-><target>.enabled`, and flow settings at top level (defaults
//! for every flow) or as `<source>-><target>.<setting>`, with MM2's defaults
//! except `refresh.topics.interval.seconds` (10 s instead of 10 min).
//!
//! strait's own keys start with `strait.` so that MM2 ignores them:
//! - `strait.start.position` (top level or per flow): where a partition
//!   without progress starts: `earliest` (default, as MM2), `latest`,
//!   milliseconds since the epoch, or a time such as `2024-05-01T12:00:00Z`.
//!   Without it, the flow's consumer `auto.offset.reset` decides, as in MM2.
//! - `strait.memory.budget.bytes` (top level or per flow): fetched bytes a
//!   flow holds until the target acknowledges them; default 64 MiB, 512 MiB
//!   when the source is 5 ms or more away.
//! - `strait.status.interval.seconds` (top level): status line period;
//!   default 10 s.
//!
//! Fetch sizes and waits are Kafka's consumer settings, layered as MM2
//! layers them: `<source>.consumer.fetch.max.bytes`,
//! `max.partition.fetch.bytes`, `fetch.min.bytes`, `fetch.max.wait.ms`,
//! `isolation.level` (strait's default: `read_committed`), and
//! `auto.offset.reset`. Of the other client settings strait reads only the
//! connection settings and, per cluster, `consumer.`/`producer.`
//! `send.buffer.bytes` and `receive.buffer.bytes`; the rest (a producer's
//! batching, in-flight and idempotence settings, a consumer's polling and
//! group settings, the admin client's timeouts) are warned about as unused.

mod cluster;
mod diagnostics;
pub mod filter;
mod flow;
mod jaas;
mod keys;
mod mm2;
pub mod policy;
pub mod properties;
mod secret;
mod values;

pub use cluster::{
    ClientCertificate, ClientOverrides, ClusterConfig, PemSource, SaslConfig, SaslMechanism,
    SecurityProtocol, TlsConfig, DEFAULT_TCP_KEEPALIVE,
};
pub use diagnostics::{ConfigError, ConfigErrors, ConfigWarning, WarningKind};
pub use filter::{ConfigPropertyFilter, GroupFilter, PatternList, TopicFilter};
pub use flow::{
    FetchSettings, FlowConfig, IsolationLevel, OffsetSyncsTopicLocation, Periodic,
    TopicConfigDefaults, DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_PRODUCE_CONNECTIONS_PER_BROKER,
    DEFAULT_REFRESH_TOPICS_INTERVAL, LONG_LINK_MEMORY_BUDGET_BYTES,
    MAX_FETCH_CONNECTIONS_PER_BROKER,
};
pub use keys::{
    MEMORY_BUDGET_BYTES, PROGRESS_COMMIT_INTERVAL_MS, START_POSITION, STATUS_INTERVAL_SECONDS,
    TCP_CONGESTION_CONTROL, TCP_KEEPALIVE_SECONDS,
};
pub use mm2::{MirrorConfig, DEFAULT_STATUS_INTERVAL};
pub use policy::{ReplicationPolicy, Separators};
pub use secret::Secret;
pub use values::StartPosition;

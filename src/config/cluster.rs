//! One Kafka cluster of the file: how to reach it and with which client
//! settings. `<alias>.<key>` wins over a top-level `<key>`, as in MM2's
//! `MirrorMakerConfig.clusterProps`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostics::{Diagnostics, WarningKind};
use super::jaas::parse_login_module;
use super::keys::{
    is_connection_key, CONNECTION_KEYS_USED, TCP_CONGESTION_CONTROL, TCP_KEEPALIVE_SECONDS,
};
use super::properties::Property;
use super::secret::{is_secret_key, Secret};
use super::values::{
    fix_for, parse_bootstrap_servers, parse_congestion_control, parse_keepalive_seconds,
    parse_socket_buffer,
};

/// Keepalive probes start after a minute of silence unless a cluster says otherwise:
/// a dead peer behind a firewall that drops idle flows is then found in minutes, not
/// after the kernel's two hours.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// An entry of the file under the setting name it has in its scope
/// (`bootstrap.servers` for the key `A.bootstrap.servers`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub name: &'a str,
    pub property: &'a Property,
}

impl Entry<'_> {
    pub(crate) fn value(&self) -> &str {
        self.property.value.trim()
    }

    pub(crate) fn line(&self) -> Option<usize> {
        Some(self.property.line)
    }

    pub(crate) fn key(&self) -> &str {
        &self.property.key
    }
}

/// The last entry named `name`, looking at `layers` from the most specific.
pub(crate) fn lookup<'a>(layers: &[&[Entry<'a>]], name: &str) -> Option<Entry<'a>> {
    layers
        .iter()
        .find_map(|layer| layer.iter().rev().find(|entry| entry.name == name).copied())
}

/// Raw Kafka client settings (`fetch.max.bytes` for `A.consumer.fetch.max.bytes`).
/// Connection settings are never in here: they live in [`ClusterConfig`].
/// `Debug` hides the values of secret-looking keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientOverrides(BTreeMap<String, String>);

impl ClientOverrides {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn insert(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_string(), value.to_string());
    }
}

impl fmt::Debug for ClientOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.0 {
            if is_secret_key(key) {
                map.entry(key, &"[redacted]");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's spelling, as `security.protocol` takes it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn login_module(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                "org.apache.kafka.common.security.scram.ScramLoginModule"
            }
        }
    }
}

/// SASL credentials, taken from the `username` and `password` options of
/// `sasl.jaas.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
    pub jaas_config: Secret,
}

/// PEM certificates, from a file or written inline in the properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(String),
}

/// The client certificate and key for mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCertificate {
    /// `ssl.keystore.location` of a PEM file holding the key and the chain.
    File {
        path: PathBuf,
        key_password: Option<Secret>,
    },
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`.
    Inline {
        certificate_chain: String,
        private_key: Secret,
        key_password: Option<Secret>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `None`: the system's trusted roots.
    pub trusted_certificates: Option<PemSource>,
    pub client_certificate: Option<ClientCertificate>,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default) checks
    /// the broker's name against its certificate; empty turns that off.
    pub verify_hostname: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub alias: String,
    /// Validated `host:port` entries (`[v6]:port` for IPv6).
    pub bootstrap_servers: Vec<String>,
    pub security_protocol: SecurityProtocol,
    /// Present exactly when the protocol is `SASL_*`.
    pub sasl: Option<SaslConfig>,
    /// Present exactly when the protocol is `SSL` or `SASL_SSL`.
    pub tls: Option<TlsConfig>,
    pub client_id: Option<String>,
    /// `None`: left to the operating system (`-1` in Kafka's terms, and the
    /// default here because auto-tuning serves long links best).
    pub send_buffer_bytes: Option<u32>,
    pub receive_buffer_bytes: Option<u32>,
    /// `strait.tcp.congestion.control`; `None`: the kernel's default.
    pub tcp_congestion_control: Option<String>,
    /// `strait.tcp.keepalive.seconds`; `None`: keepalive off.
    pub tcp_keepalive: Option<Duration>,
    /// `exactly.once.source.support = enabled`: flows into this cluster
    /// write transactionally (MM2 reads this per target cluster).
    pub exactly_once_source_support: bool,
    /// `<alias>.consumer.*`, `<alias>.producer.*`, `<alias>.admin.*`.
    pub consumer: ClientOverrides,
    pub producer: ClientOverrides,
    pub admin: ClientOverrides,
}

/// The entries that configure one cluster.
pub(crate) struct ClusterEntries<'a> {
    pub alias: &'a str,
    /// `<alias>.<name>` entries.
    pub own: Vec<Entry<'a>>,
    /// Top-level connection and cluster entries, defaults for every cluster.
    pub defaults: &'a [Entry<'a>],
}

impl<'a> ClusterEntries<'a> {
    fn get(&self, name: &str) -> Option<Entry<'a>> {
        lookup(&[&self.own, self.defaults], name)
    }

    fn key_for(&self, name: &str) -> String {
        format!("{}.{name}", self.alias)
    }
}

pub(crate) fn build_cluster(
    entries: &ClusterEntries<'_>,
    diagnostics: &mut Diagnostics,
) -> ClusterConfig {
    let alias = entries.alias;
    let bootstrap_servers = match entries.get("bootstrap.servers") {
        Some(entry) => parse_bootstrap_servers(&entry.property.value).unwrap_or_else(|reason| {
            diagnostics.error(entry.line(), entry.key(), reason);
            Vec::new()
        }),
        None => {
            diagnostics.error(
                None,
                &entries.key_for("bootstrap.servers"),
                format!(
                    "missing — every cluster in clusters needs its brokers: add {alias}.bootstrap.servers = host1:9092,host2:9092"
                ),
            );
            Vec::new()
        }
    };

    let security_protocol = match entries.get("security.protocol") {
        Some(entry) => parse_security_protocol(entry.value()).unwrap_or_else(|| {
            diagnostics.error(
                entry.line(),
                entry.key(),
                format!(
                    "{:?} is not a security protocol — {}",
                    entry.value(),
                    fix_for(
                        &entry.property.value,
                        "write PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                    )
                ),
            );
            SecurityProtocol::Plaintext
        }),
        None => SecurityProtocol::Plaintext,
    };

    let sasl = if security_protocol.uses_sasl() {
        build_sasl(entries, diagnostics)
    } else {
        note_unused(
            entries,
            "sasl.",
            "security.protocol is not SASL_PLAINTEXT or SASL_SSL",
            diagnostics,
        );
        None
    };
    let tls = if security_protocol.uses_tls() {
        Some(build_tls(entries, diagnostics))
    } else {
        note_unused(
            entries,
            "ssl.",
            "security.protocol is not SSL or SASL_SSL",
            diagnostics,
        );
        None
    };
    for entry in &entries.own {
        if is_connection_key(entry.name) && !CONNECTION_KEYS_USED.contains(&entry.name) {
            diagnostics.warn(
                WarningKind::Ignored,
                entry.line(),
                entry.key(),
                "strait does not use this setting; ignored",
            );
        }
    }

    let client_id = entries
        .get("client.id")
        .map(|entry| entry.value().to_string());
    // MM2 files size buffers per client: strait's fetch connections are the consumer's
    // (receive side first), its produce connections the producer's (send side first).
    let send_buffer_bytes = socket_buffer(
        buffer_entry(entries, "send.buffer.bytes", ["producer.", "consumer."]),
        diagnostics,
    );
    let receive_buffer_bytes = socket_buffer(
        buffer_entry(entries, "receive.buffer.bytes", ["consumer.", "producer."]),
        diagnostics,
    );
    let tcp_congestion_control = entries.get(TCP_CONGESTION_CONTROL).and_then(|entry| {
        parse_congestion_control(entry.value())
            .map_err(|reason| diagnostics.error(entry.line(), entry.key(), reason))
            .ok()
    });
    let tcp_keepalive = match entries.get(TCP_KEEPALIVE_SECONDS) {
        Some(entry) => parse_keepalive_seconds(entry.value()).unwrap_or_else(|reason| {
            diagnostics.error(entry.line(), entry.key(), reason);
            Some(DEFAULT_TCP_KEEPALIVE)
        }),
        None => Some(DEFAULT_TCP_KEEPALIVE),
    };
    let exactly_once_source_support = match lookup(&[&entries.own], "exactly.once.source.support") {
        Some(entry) => match entry.value().to_ascii_lowercase().as_str() {
            "enabled" => true,
            "disabled" | "preparing" => false,
            _ => {
                diagnostics.error(
                    entry.line(),
                    entry.key(),
                    format!(
                        "{:?} is not a choice — {}",
                        entry.value(),
                        fix_for(
                            &entry.property.value,
                            "write enabled, preparing or disabled"
                        )
                    ),
                );
                false
            }
        },
        None => false,
    };

    let mut cluster = ClusterConfig {
        alias: alias.to_string(),
        bootstrap_servers,
        security_protocol,
        sasl,
        tls,
        client_id,
        send_buffer_bytes,
        receive_buffer_bytes,
        tcp_congestion_control,
        tcp_keepalive,
        exactly_once_source_support,
        consumer: ClientOverrides::default(),
        producer: ClientOverrides::default(),
        admin: ClientOverrides::default(),
    };
    for entry in &entries.own {
        let (overrides, setting) = if let Some(setting) = entry.name.strip_prefix("consumer.") {
            (&mut cluster.consumer, setting)
        } else if let Some(setting) = entry.name.strip_prefix("producer.") {
            (&mut cluster.producer, setting)
        } else if let Some(setting) = entry.name.strip_prefix("admin.") {
            (&mut cluster.admin, setting)
        } else {
            continue;
        };
        if check_override_is_not_a_connection_setting(entries, *entry, setting, diagnostics) {
            overrides.insert(setting, entry.value());
        }
    }
    cluster
}

/// A client override of a connection setting (`A.consumer.security.protocol`)
/// is accepted only when it repeats the cluster's own value: strait opens
/// every connection to a cluster the same way. Returns whether the entry is
/// an ordinary override to keep.
pub(crate) fn check_override_is_not_a_connection_setting(
    cluster: &ClusterEntries<'_>,
    entry: Entry<'_>,
    setting: &str,
    diagnostics: &mut Diagnostics,
) -> bool {
    if !is_connection_key(setting) {
        return true;
    }
    let cluster_value = cluster.get(setting).map(|e| e.value().to_string());
    let same = match (&cluster_value, setting) {
        (Some(value), "security.protocol" | "sasl.mechanism") => {
            value.eq_ignore_ascii_case(entry.value())
        }
        (Some(value), _) => value == entry.value(),
        (None, _) => false,
    };
    if !same {
        diagnostics.error(
            entry.line(),
            entry.key(),
            format!(
                "strait opens every connection to cluster {alias} with the same settings, so a per-client {setting} that differs from {alias}'s cannot apply — set {alias}.{setting} instead, or remove this line",
                alias = cluster.alias
            ),
        );
    }
    false
}

fn note_unused(
    entries: &ClusterEntries<'_>,
    prefix: &str,
    why: &str,
    diagnostics: &mut Diagnostics,
) {
    for entry in &entries.own {
        if entry.name.starts_with(prefix) {
            diagnostics.warn(
                WarningKind::Ignored,
                entry.line(),
                entry.key(),
                format!("{why} for cluster {}, so this is not used", entries.alias),
            );
        }
    }
}

/// The cluster's own `<alias>.<name>`, else its clients' (`<alias>.consumer.<name>`,
/// in `roles` order), else the top-level default.
fn buffer_entry<'a>(
    entries: &ClusterEntries<'a>,
    name: &str,
    roles: [&str; 2],
) -> Option<Entry<'a>> {
    lookup(&[&entries.own], name)
        .or_else(|| {
            roles
                .iter()
                .find_map(|role| lookup(&[&entries.own], &format!("{role}{name}")))
        })
        .or_else(|| lookup(&[entries.defaults], name))
}

fn socket_buffer(entry: Option<Entry<'_>>, diagnostics: &mut Diagnostics) -> Option<u32> {
    let entry = entry?;
    parse_socket_buffer(&entry.property.value).unwrap_or_else(|reason| {
        diagnostics.error(entry.line(), entry.key(), reason);
        None
    })
}

fn parse_security_protocol(value: &str) -> Option<SecurityProtocol> {
    match value.to_ascii_uppercase().as_str() {
        "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
        "SSL" => Some(SecurityProtocol::Ssl),
        "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
        "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
        _ => None,
    }
}

const SUPPORTED_MECHANISMS: &str = "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512";

fn build_sasl(entries: &ClusterEntries<'_>, diagnostics: &mut Diagnostics) -> Option<SaslConfig> {
    let mechanism = match entries.get("sasl.mechanism") {
        Some(entry) => match entry.value().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            _ => {
                diagnostics.error(
                    entry.line(),
                    entry.key(),
                    format!(
                        "{:?} is not a SASL mechanism strait supports — {}",
                        entry.value(),
                        fix_for(
                            &entry.property.value,
                            &format!("use {SUPPORTED_MECHANISMS}")
                        )
                    ),
                );
                None
            }
        },
        None => {
            diagnostics.error(
                None,
                &entries.key_for("sasl.mechanism"),
                format!(
                    "missing — Kafka's default is GSSAPI (Kerberos), which strait does not support: set {}.sasl.mechanism to {SUPPORTED_MECHANISMS}",
                    entries.alias
                ),
            );
            None
        }
    };
    let Some(jaas_entry) = entries.get("sasl.jaas.config") else {
        diagnostics.error(
            None,
            &entries.key_for("sasl.jaas.config"),
            format!(
                "missing — SASL needs credentials: add {}.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"...\" password=\"...\";",
                entries.alias
            ),
        );
        return None;
    };
    let module = match parse_login_module(jaas_entry.value()) {
        Ok(module) => module,
        Err(reason) => {
            diagnostics.error(jaas_entry.line(), jaas_entry.key(), reason);
            return None;
        }
    };
    let mechanism = mechanism?;
    if module.class != mechanism.login_module() {
        diagnostics.error(
            jaas_entry.line(),
            jaas_entry.key(),
            format!(
                "names {} but sasl.mechanism is {} — use {}",
                module.class,
                mechanism.name(),
                mechanism.login_module()
            ),
        );
        return None;
    }
    let (Some(username), Some(password)) = (
        module.options.get("username"),
        module.options.get("password"),
    ) else {
        diagnostics.error(
            jaas_entry.line(),
            jaas_entry.key(),
            "needs both a username=\"...\" and a password=\"...\" option — add the missing one",
        );
        return None;
    };
    Some(SaslConfig {
        mechanism,
        username: username.clone(),
        password: Secret::new(password.clone()),
        jaas_config: Secret::new(jaas_entry.value()),
    })
}

fn build_tls(entries: &ClusterEntries<'_>, diagnostics: &mut Diagnostics) -> TlsConfig {
    let trusted_certificates = if let Some(inline) = entries.get("ssl.truststore.certificates") {
        check_store_type(entries, "ssl.truststore.type", false, diagnostics);
        Some(PemSource::Inline(inline.value().to_string()))
    } else if let Some(location) = entries.get("ssl.truststore.location") {
        check_store_type(entries, "ssl.truststore.type", true, diagnostics);
        Some(PemSource::File(PathBuf::from(location.value())))
    } else {
        None
    };

    let key_password = entries
        .get("ssl.key.password")
        .map(|e| Secret::new(e.value()));
    let client_certificate = match (
        entries.get("ssl.keystore.key"),
        entries.get("ssl.keystore.certificate.chain"),
        entries.get("ssl.keystore.location"),
    ) {
        (Some(key), Some(chain), _) => {
            check_store_type(entries, "ssl.keystore.type", false, diagnostics);
            Some(ClientCertificate::Inline {
                certificate_chain: chain.value().to_string(),
                private_key: Secret::new(key.value()),
                key_password,
            })
        }
        (Some(half), None, _) | (None, Some(half), _) => {
            diagnostics.error(
                half.line(),
                half.key(),
                format!(
                    "an inline client certificate needs both ssl.keystore.key and ssl.keystore.certificate.chain — add the other one for {}",
                    entries.alias
                ),
            );
            None
        }
        (None, None, Some(location)) => {
            check_store_type(entries, "ssl.keystore.type", true, diagnostics);
            Some(ClientCertificate::File {
                path: PathBuf::from(location.value()),
                key_password,
            })
        }
        (None, None, None) => None,
    };

    let verify_hostname = match entries.get("ssl.endpoint.identification.algorithm") {
        None => true,
        Some(entry) if entry.value().is_empty() => false,
        Some(entry) if entry.value().eq_ignore_ascii_case("https") => true,
        Some(entry) => {
            diagnostics.error(
                entry.line(),
                entry.key(),
                format!(
                    "{:?} is not an endpoint identification algorithm — {}",
                    entry.value(),
                    fix_for(&entry.property.value, "write https to check broker host names, or leave the value empty to skip the check")
                ),
            );
            true
        }
    };

    TlsConfig {
        trusted_certificates,
        client_certificate,
        verify_hostname,
    }
}

/// strait reads PEM only. A store read from a file defaults to Kafka's JKS,
/// so its type must say PEM; inline certificates are PEM by definition.
fn check_store_type(
    entries: &ClusterEntries<'_>,
    type_key: &str,
    required: bool,
    diagnostics: &mut Diagnostics,
) {
    match entries.get(type_key) {
        Some(entry) if entry.value().eq_ignore_ascii_case("PEM") => {}
        Some(entry) => diagnostics.error(
            entry.line(),
            entry.key(),
            format!(
                "{:?} stores cannot be read by strait, which reads PEM only — convert the store to PEM (keytool -exportcert -rfc, or openssl pkcs12 -nodes) and set {}.{type_key} = PEM",
                entry.value(),
                entries.alias
            ),
        ),
        None if required => diagnostics.error(
            None,
            &entries.key_for(type_key),
            format!(
                "missing — Kafka's default store type is JKS, which strait cannot read: convert the store to PEM and set {}.{type_key} = PEM",
                entries.alias
            ),
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(text: &[(&str, &str)]) -> Vec<Property> {
        text.iter()
            .enumerate()
            .map(|(i, (key, value))| Property {
                key: key.to_string(),
                value: value.to_string(),
                line: i + 1,
            })
            .collect()
    }

    fn build(own: &[(&str, &str)], defaults: &[(&str, &str)]) -> (ClusterConfig, Vec<String>) {
        let own_props = properties(own);
        let default_props = properties(defaults);
        let own_entries: Vec<Entry> = own_props
            .iter()
            .map(|p| Entry {
                name: p.key.strip_prefix("A.").unwrap(),
                property: p,
            })
            .collect();
        let default_entries: Vec<Entry> = default_props
            .iter()
            .map(|p| Entry {
                name: &p.key,
                property: p,
            })
            .collect();
        let entries = ClusterEntries {
            alias: "A",
            own: own_entries,
            defaults: &default_entries,
        };
        let mut diagnostics = Diagnostics::new("f");
        let cluster = build_cluster(&entries, &mut diagnostics);
        let (errors, _) = diagnostics.finish();
        (cluster, errors.iter().map(ToString::to_string).collect())
    }

    const JAAS: &str = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="mirror" password="pw-123";"#;

    #[test]
    fn plaintext_cluster_with_overrides() {
        let (cluster, errors) = build(
            &[
                ("A.bootstrap.servers", "b1:9092, b2:9092"),
                ("A.client.id", "strait-a"),
                ("A.receive.buffer.bytes", "-1"),
                ("A.consumer.fetch.max.bytes", "1048576"),
                ("A.consumer.bootstrap.servers", "b1:9092, b2:9092"),
                ("A.producer.linger.ms", "5"),
            ],
            &[("send.buffer.bytes", "262144")],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cluster.bootstrap_servers, vec!["b1:9092", "b2:9092"]);
        assert_eq!(cluster.security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(cluster.client_id.as_deref(), Some("strait-a"));
        assert_eq!(cluster.send_buffer_bytes, Some(262_144));
        assert_eq!(cluster.receive_buffer_bytes, None);
        assert_eq!(cluster.consumer.get("fetch.max.bytes"), Some("1048576"));
        assert_eq!(cluster.consumer.get("bootstrap.servers"), None);
        assert_eq!(cluster.producer.get("linger.ms"), Some("5"));
        assert!(cluster.sasl.is_none() && cluster.tls.is_none());
    }

    #[test]
    fn socket_buffers_come_from_the_cluster_then_its_clients_then_the_top_level() {
        // MM2's form: sized per client of the cluster.
        let (cluster, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9092"),
                ("A.consumer.receive.buffer.bytes", "8388608"),
                ("A.producer.receive.buffer.bytes", "65536"),
                ("A.producer.send.buffer.bytes", "4194304"),
            ],
            &[
                ("send.buffer.bytes", "131072"),
                ("receive.buffer.bytes", "131072"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cluster.receive_buffer_bytes, Some(8_388_608));
        assert_eq!(cluster.send_buffer_bytes, Some(4_194_304));
        // The cluster's own key wins over its clients'.
        let (cluster, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9092"),
                ("A.receive.buffer.bytes", "-1"),
                ("A.consumer.receive.buffer.bytes", "8388608"),
            ],
            &[],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cluster.receive_buffer_bytes, None);
        // A bad client value is named by its own key.
        let (_, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9092"),
                ("A.consumer.receive.buffer.bytes", "lots"),
            ],
            &[],
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("A.consumer.receive.buffer.bytes"),
            "{errors:?}"
        );
    }

    #[test]
    fn congestion_control_and_keepalive_per_cluster_with_top_level_defaults() {
        let (cluster, errors) = build(&[("A.bootstrap.servers", "a:9092")], &[]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cluster.tcp_congestion_control, None);
        assert_eq!(cluster.tcp_keepalive, Some(DEFAULT_TCP_KEEPALIVE));
        let (cluster, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9092"),
                ("A.strait.tcp.congestion.control", "bbr"),
                ("A.strait.tcp.keepalive.seconds", "0"),
            ],
            &[("strait.tcp.congestion.control", "cubic")],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cluster.tcp_congestion_control.as_deref(), Some("bbr"));
        assert_eq!(cluster.tcp_keepalive, None);
        let (cluster, errors) = build(
            &[("A.bootstrap.servers", "a:9092")],
            &[
                ("strait.tcp.congestion.control", "cubic"),
                ("strait.tcp.keepalive.seconds", "15"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cluster.tcp_congestion_control.as_deref(), Some("cubic"));
        assert_eq!(cluster.tcp_keepalive, Some(Duration::from_secs(15)));
        // Both mistakes are reported at once.
        let (_, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9092"),
                ("A.strait.tcp.congestion.control", "bbr v2"),
                ("A.strait.tcp.keepalive.seconds", "-5"),
            ],
            &[],
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("A.strait.tcp.congestion.control"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("A.strait.tcp.keepalive.seconds"),
            "{errors:?}"
        );
    }

    #[test]
    fn cluster_settings_win_over_top_level_ones() {
        let (cluster, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9092"),
                ("A.security.protocol", "plaintext"),
            ],
            &[("security.protocol", "SSL")],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cluster.security_protocol, SecurityProtocol::Plaintext);
    }

    #[test]
    fn sasl_ssl_with_scram_and_pem_truststore() {
        let (cluster, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9093"),
                ("A.security.protocol", "SASL_SSL"),
                ("A.sasl.mechanism", "SCRAM-SHA-512"),
                ("A.sasl.jaas.config", JAAS),
                ("A.ssl.truststore.location", "/etc/strait/ca.pem"),
                ("A.ssl.truststore.type", "PEM"),
                ("A.ssl.endpoint.identification.algorithm", ""),
            ],
            &[],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let sasl = cluster.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.username, "mirror");
        assert_eq!(sasl.password.expose(), "pw-123");
        let tls = cluster.tls.as_ref().unwrap();
        assert_eq!(
            tls.trusted_certificates,
            Some(PemSource::File("/etc/strait/ca.pem".into()))
        );
        assert!(!tls.verify_hostname);
        let debug = format!("{cluster:?}");
        assert!(!debug.contains("pw-123"), "{debug}");
    }

    #[test]
    fn security_errors_name_the_fix() {
        let (_, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9093"),
                ("A.security.protocol", "SASL_SSL"),
                ("A.ssl.truststore.location", "/etc/ts.jks"),
                ("A.consumer.security.protocol", "PLAINTEXT"),
            ],
            &[],
        );
        assert_eq!(
            errors,
            vec![
                "f:4: A.consumer.security.protocol: strait opens every connection to cluster A with the same settings, so a per-client security.protocol that differs from A's cannot apply — set A.security.protocol instead, or remove this line",
                "f: A.sasl.jaas.config: missing — SASL needs credentials: add A.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"...\" password=\"...\";",
                "f: A.sasl.mechanism: missing — Kafka's default is GSSAPI (Kerberos), which strait does not support: set A.sasl.mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                "f: A.ssl.truststore.type: missing — Kafka's default store type is JKS, which strait cannot read: convert the store to PEM and set A.ssl.truststore.type = PEM",
            ]
        );
    }

    #[test]
    fn jaas_module_must_match_the_mechanism_and_errors_hide_the_password() {
        let (_, errors) = build(
            &[
                ("A.bootstrap.servers", "a:9093"),
                ("A.security.protocol", "SASL_PLAINTEXT"),
                ("A.sasl.mechanism", "PLAIN"),
                ("A.sasl.jaas.config", JAAS),
            ],
            &[],
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("but sasl.mechanism is PLAIN — use org.apache.kafka.common.security.plain.PlainLoginModule"), "{}", errors[0]);
        assert!(!errors[0].contains("pw-123"));
    }

    #[test]
    fn missing_bootstrap_and_bad_values() {
        let (_, errors) = build(
            &[
                ("A.security.protocol", "TLS"),
                ("A.send.buffer.bytes", "big"),
                ("A.exactly.once.source.support", "on"),
            ],
            &[],
        );
        assert_eq!(
            errors,
            vec![
                "f:1: A.security.protocol: \"TLS\" is not a security protocol — write PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                "f:2: A.send.buffer.bytes: \"big\" is not a whole number — write digits only, e.g. 600",
                "f:3: A.exactly.once.source.support: \"on\" is not a choice — write enabled, preparing or disabled",
                "f: A.bootstrap.servers: missing — every cluster in clusters needs its brokers: add A.bootstrap.servers = host1:9092,host2:9092",
            ]
        );
    }

    #[test]
    fn overrides_debug_redacts_secret_keys() {
        let mut overrides = ClientOverrides::default();
        overrides.insert("ssl.key.password", "hunter2");
        overrides.insert("linger.ms", "5");
        let debug = format!("{overrides:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("\"linger.ms\": \"5\""), "{debug}");
    }
}

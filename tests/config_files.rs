//! strait's configuration layer against whole files: MM2-style examples that
//! must load, and malformed files whose every error must be reported with
//! its file, line, key, reason and fix. No brokers involved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use strait::config::{
    ConfigWarning, IsolationLevel, MirrorConfig, OffsetSyncsTopicLocation, PemSource,
    ReplicationPolicy, SaslMechanism, SecurityProtocol, StartPosition, WarningKind,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn load_ok(name: &str) -> (MirrorConfig, Vec<ConfigWarning>) {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    match MirrorConfig::parse(&text, name) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("{name} should load, got:\n{errors}"),
    }
}

/// The error report of a fixture, one line per error, as a user sees it.
fn error_lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    match MirrorConfig::parse(&text, name) {
        Ok(_) => panic!("{name} should not load"),
        Err(errors) => {
            let lines: Vec<String> = errors.to_string().lines().map(str::to_string).collect();
            assert_eq!(lines.len(), errors.0.len(), "one line per error");
            lines
        }
    }
}

#[test]
fn active_standby_example_loads_with_its_settings() {
    let (config, warnings) = load_ok("active-standby.properties");
    let aliases: Vec<&str> = config.clusters.iter().map(|c| c.alias.as_str()).collect();
    assert_eq!(aliases, ["primary", "secondary"]);

    let primary = config.cluster("primary").unwrap();
    assert_eq!(
        primary.bootstrap_servers,
        ["broker1-primary:9092", "broker2-primary:9092"]
    );
    assert_eq!(primary.security_protocol, SecurityProtocol::Plaintext);
    assert_eq!(primary.consumer.get("fetch.max.bytes"), Some("16777216"));

    let secondary = config.cluster("secondary").unwrap();
    assert_eq!(secondary.security_protocol, SecurityProtocol::SaslSsl);
    let sasl = secondary.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
    assert_eq!(sasl.username, "mirror");
    assert_eq!(sasl.password.expose(), "s3cr3t-standby");
    let tls = secondary.tls.as_ref().unwrap();
    assert_eq!(
        tls.trusted_certificates,
        Some(PemSource::File("/etc/strait/secondary-ca.pem".into()))
    );
    assert!(tls.verify_hostname);
    assert_eq!(secondary.producer.get("compression.type"), Some("gzip"));

    assert_eq!(config.flows.len(), 1, "secondary->primary is disabled");
    let flow = &config.flows[0];
    assert_eq!(flow.name(), "primary->secondary");
    assert_eq!(flow.line, 28);
    assert!(flow.topics.should_replicate("foobar-topic"));
    assert!(flow.topics.should_replicate("quux-1"));
    assert!(!flow.topics.should_replicate("foobar-topic-2"));
    assert!(flow.groups.should_replicate("shipping-eu"));
    assert!(!flow.groups.should_replicate("marketing"));
    assert_eq!(flow.remote_topic("quux-1"), "primary.quux-1");
    assert_eq!(flow.replication_factor, 3);
    assert_eq!(flow.sync_group_offsets, Some(Duration::from_secs(60)));
    assert_eq!(flow.emit_checkpoints, Some(Duration::from_secs(5)));
    assert_eq!(flow.refresh_topics, Some(Duration::from_secs(10)));
    assert_eq!(flow.start_position, StartPosition::Earliest);
    assert_eq!(flow.memory_budget_bytes, None);
    assert_eq!(flow.fetch.max_bytes, 16_777_216);
    assert_eq!(flow.fetch.isolation_level, IsolationLevel::ReadCommitted);
    assert_eq!(
        flow.source_consumer.get("isolation.level"),
        Some("read_committed")
    );
    assert_eq!(flow.target_producer.get("compression.type"), Some("gzip"));
    assert_eq!(
        flow.offset_syncs_topic_location,
        OffsetSyncsTopicLocation::Source
    );
    assert_eq!(
        flow.offset_syncs_topic(),
        "mm2-offset-syncs.secondary.internal"
    );
    assert_eq!(flow.checkpoints_topic(), "primary.checkpoints.internal");
    assert_eq!(flow.mm2_offsets_topic, "mm2-offsets.primary.internal");
    assert!(!flow.exactly_once);
    assert_eq!(config.status_interval, Duration::from_secs(10));

    let noted: Vec<(Option<usize>, &str, WarningKind)> = warnings
        .iter()
        .map(|w| (w.line, w.key.as_str(), w.kind))
        .collect();
    assert_eq!(
        noted,
        [
            (
                Some(21),
                "secondary.producer.compression.type",
                WarningKind::Ignored
            ),
            (Some(24), "tasks.max", WarningKind::Ignored),
            (Some(25), "key.converter", WarningKind::Ignored),
        ]
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let (config, _) = load_ok("active-standby.properties");
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cr3t-standby"), "password leaked");
    assert!(!debug.contains("ScramLoginModule"), "JAAS config leaked");
    assert!(debug.contains("[redacted]"));
}

#[test]
fn active_active_layers_top_level_and_flow_settings() {
    let (config, warnings) = load_ok("active-active.properties");
    assert!(warnings.is_empty(), "{warnings:?}");
    let names: Vec<String> = config.flows.iter().map(|f| f.name()).collect();
    assert_eq!(names, ["us-west->us-east", "us-east->us-west"]);
    let (west_to_east, east_to_west) = (&config.flows[0], &config.flows[1]);

    // Top-level defaults apply to both flows.
    for flow in [west_to_east, east_to_west] {
        assert_eq!(flow.policy.separators().topic(), "_");
        assert_eq!(flow.emit_checkpoints, Some(Duration::from_secs(30)));
        assert!(flow.groups.should_replicate("consumer-group2"));
        assert!(!flow.groups.should_replicate("consumer-group3"));
        assert_eq!(flow.memory_budget_bytes, Some(134_217_728));
    }
    assert_eq!(west_to_east.remote_topic("orders"), "us-west_orders");
    assert_eq!(
        west_to_east.checkpoints_topic(),
        "us-west_checkpoints_internal"
    );
    assert!(west_to_east.topics.should_replicate("anything"));
    assert_eq!(west_to_east.emit_heartbeats, Some(Duration::from_secs(1)));
    assert_eq!(west_to_east.start_position, StartPosition::Earliest);

    // The flow's own keys win.
    assert!(east_to_west.topics.should_replicate("orders-eu"));
    assert!(!east_to_west.topics.should_replicate("inventory"));
    assert_eq!(east_to_west.emit_heartbeats, None);
    assert_eq!(
        east_to_west.start_position,
        StartPosition::Timestamp(1_714_521_600_000)
    );

    // The two flows never send a topic back where it came from.
    assert!(!east_to_west.should_replicate_topic("us-west_orders"));
    assert!(east_to_west.should_replicate_topic("orders"));
    assert!(!west_to_east.should_replicate_topic("us-east_payments"));
    assert_eq!(config.status_interval, Duration::from_secs(30));
}

#[test]
fn hub_and_spoke_uses_colon_separators_ipv6_and_cycle_prevention() {
    let (config, warnings) = load_ok("hub-and-spoke.properties");
    // The producer's batching does not apply: strait forwards the source's batches.
    let noted: Vec<(Option<usize>, &str)> =
        warnings.iter().map(|w| (w.line, w.key.as_str())).collect();
    assert_eq!(noted, [(Some(25), "hub.producer.linger.ms")]);
    assert_eq!(config.flows.len(), 6);
    assert_eq!(
        config.cluster("edge-3").unwrap().bootstrap_servers,
        ["[fd00::3:10]:9092"]
    );

    let hub_to_edge_1 = config
        .flows
        .iter()
        .find(|f| f.name() == "hub->edge-1")
        .unwrap();
    assert!(hub_to_edge_1.should_replicate_topic("commands"));
    assert!(!hub_to_edge_1.should_replicate_topic("orders"));
    // Heartbeats are replicated whatever the topics filter says (MM2's default).
    assert!(hub_to_edge_1.should_replicate_topic("heartbeats"));
    // Data that came from edge-1 never goes back to it.
    assert!(!hub_to_edge_1.should_replicate_topic("edge-1.commands"));
    assert!(!hub_to_edge_1.should_replicate_topic("edge-1.heartbeats"));
    assert!(hub_to_edge_1.should_replicate_topic("edge-2.heartbeats"));

    let edge_2_to_hub = config
        .flows
        .iter()
        .find(|f| f.name() == "edge-2->hub")
        .unwrap();
    assert_eq!(edge_2_to_hub.fetch.max_wait, Duration::from_millis(1000));
    assert_eq!(edge_2_to_hub.target_producer.get("linger.ms"), Some("5"));
    assert!(edge_2_to_hub.should_replicate_topic("orders"));
    assert!(!edge_2_to_hub.should_replicate_topic("__consumer_offsets"));
    assert!(!edge_2_to_hub.should_replicate_topic("mm2-offset-syncs.hub.internal"));
}

#[test]
fn clusters_option_selects_flows_by_target() {
    let (config, _) = load_ok("hub-and-spoke.properties");
    let names = |targets: &[&str]| -> Vec<String> {
        config
            .flows_for_targets(targets)
            .unwrap()
            .iter()
            .map(|f| f.name())
            .collect()
    };
    assert_eq!(
        names(&["hub"]),
        ["edge-1->hub", "edge-2->hub", "edge-3->hub"]
    );
    assert_eq!(names(&["edge-1", "edge-3"]), ["hub->edge-1", "hub->edge-3"]);
    assert_eq!(names(&[]).len(), 6);

    let unknown = config.flows_for_targets(&["edge-9"]).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "hub-and-spoke.properties: --clusters: \"edge-9\" is not in clusters (hub, edge-1, edge-2, edge-3) — name clusters from that list"
    );

    let (standby, _) = load_ok("active-standby.properties");
    let idle = standby.flows_for_targets(&["primary"]).unwrap_err();
    assert_eq!(
        idle.to_string(),
        "active-standby.properties: --clusters: no enabled flow writes to primary — list a target of an enabled flow (secondary)"
    );
}

#[test]
fn keys_that_do_nothing_are_listed_together_as_warnings() {
    let (config, warnings) = load_ok("warnings.properties");
    let flow = &config.flows[0];
    assert_eq!(flow.name(), "A->B", ".enable still enables the flow");
    assert!(
        flow.topics.should_replicate("orders"),
        "A->B.topic is not topics"
    );
    assert!(
        !flow.topics.should_replicate("test-1"),
        "topics.blacklist is read"
    );
    assert_eq!(flow.replication_factor, 1, "the later duplicate wins");
    assert!(flow.exactly_once);
    assert_eq!(flow.mm2_offsets_topic, "mm2-progress");

    let lines: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "warnings.properties:5: A->B.enable: MM2 reads only A->B.enabled and ignores .enable (its documentation shows both); strait accepts it — rename it to .enabled so that MM2 and strait agree",
            "warnings.properties:6: A->B.topic: unknown key, ignored — did you mean A->B.topics?",
            "warnings.properties:7: topics.blacklist: old name, removed in Kafka 4.0; strait still reads it — rename it to topics.exclude",
            "warnings.properties:8: consumer.fetch.max.bytes: MM2 ignores client settings at top level, and so does strait — write them per cluster, e.g. A.consumer.fetch.max.bytes",
            "warnings.properties:9: A.topics: MM2 ignores flow settings given per cluster, and so does strait — write A->B.topics for one flow, or topics for all flows",
            "warnings.properties:12: replication.factor: also set on line 11; this later line wins, as in MM2 — remove one of them",
        ]
    );
    let kinds: Vec<WarningKind> = warnings.iter().map(|w| w.kind).collect();
    assert_eq!(
        kinds,
        [
            WarningKind::Suspicious,
            WarningKind::UnknownKey,
            WarningKind::Deprecated,
            WarningKind::Ignored,
            WarningKind::Ignored,
            WarningKind::Duplicate,
        ]
    );
}

#[test]
fn load_reads_a_path_and_names_it_in_messages() {
    let path = fixture("bad-host-port.properties");
    let errors = MirrorConfig::load(&path).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].file, path.display().to_string());
    assert_eq!(errors.0[0].line, Some(12));

    let (config, _) = MirrorConfig::load(fixture("active-active.properties")).unwrap();
    assert_eq!(
        config.file,
        fixture("active-active.properties").display().to_string()
    );

    let missing = MirrorConfig::load(fixture("no-such-file.properties")).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no-such-file.properties: cannot be read:"),
        "{missing}"
    );
}

#[test]
fn load_reads_bytes_as_iso_8859_1_like_java() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin.properties");
    let mut bytes = b"clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\nA->B.enabled = true\nA.client.id = caf".to_vec();
    bytes.push(0xE9); // é in ISO-8859-1, invalid on its own in UTF-8
    bytes.push(b'\n');
    std::fs::write(&path, bytes).unwrap();
    let (config, warnings) = MirrorConfig::load(&path).unwrap();
    assert_eq!(
        config.cluster("A").unwrap().client_id.as_deref(),
        Some("café")
    );
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, Some(5));
    assert!(warnings[0].message.contains("\\uXXXX"), "{}", warnings[0]);
}

#[test]
fn bad_host_port_is_reported_at_its_line_with_the_fix() {
    let text = std::fs::read_to_string(fixture("bad-host-port.properties")).unwrap();
    let errors = MirrorConfig::parse(&text, "connect-mirror-maker.properties").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "connect-mirror-maker.properties:12: A.bootstrap.servers: \"localhost\" is not host:port — write it as host:port, e.g. localhost:9092"
    );
    let error = &errors.0[0];
    assert_eq!(error.key, "A.bootstrap.servers");
    assert_eq!(error.line, Some(12));
}

#[test]
fn missing_clusters_in_the_documentation_example() {
    assert_eq!(
        error_lines("missing-clusters.properties"),
        [
            "missing-clusters.properties:9: primary->secondary.topics: \"foo.*  # only replicate some topics\" holds a comment — .properties files have no end-of-line comments: put \"# only replicate some topics\" on a line of its own",
            "missing-clusters.properties: clusters: missing — MM2 and strait need the list of cluster aliases: add clusters = primary, secondary",
        ]
    );
}

#[test]
fn missing_bootstrap_servers() {
    assert_eq!(
        error_lines("missing-bootstrap.properties"),
        ["missing-bootstrap.properties: backup.bootstrap.servers: missing — every cluster in clusters needs its brokers: add backup.bootstrap.servers = host1:9092,host2:9092"]
    );
}

#[test]
fn flow_to_an_undeclared_cluster() {
    assert_eq!(
        error_lines("undeclared-cluster.properties"),
        [
            "undeclared-cluster.properties:5: us-west->us.east.topics: the flow's target is not in clusters (us-west, us-east) — did you mean us-west->us-east.topics?",
            "undeclared-cluster.properties:6: us-west->eu-central.enabled: eu-central is not in clusters (us-west, us-east) — add the cluster to clusters, or fix the flow's name",
        ]
    );
}

#[test]
fn flow_from_a_cluster_to_itself() {
    assert_eq!(
        error_lines("self-flow.properties"),
        ["self-flow.properties:4: A->A.enabled: A->A would mirror a cluster into itself, which is not a flow — remove this line, or name another target"]
    );
}

#[test]
fn bad_regular_expressions() {
    assert_eq!(
        error_lines("bad-regex.properties"),
        [
            "bad-regex.properties:5: A->B.topics: \"orders-[0-9+\" is not a regular expression strait can use: unclosed character class — fix the expression (entries are regular expressions matched against whole names)",
            "bad-regex.properties:6: A->B.groups.exclude: \"(?!keep).*\" is not a regular expression strait can use: look-around, including look-ahead and look-behind, is not supported — Java accepts it, strait's regex engine does not: rewrite it without look-around or backreferences",
        ]
    );
}

#[test]
fn bad_numbers() {
    assert_eq!(
        error_lines("bad-number.properties"),
        [
            "bad-number.properties:5: refresh.topics.interval.seconds: \"ten\" is not a whole number — write digits only, e.g. 600",
            "bad-number.properties:6: A->B.replication.factor: -3 is out of range — write a replication factor of at least 1, or -1 for the broker's default.replication.factor",
            "bad-number.properties:7: offset.lag.max: \"100  # records\" is not a whole number — .properties files have no end-of-line comments: put \"# records\" on a line of its own",
            "bad-number.properties:8: A.consumer.fetch.max.bytes: \"1.5MB\" is not a whole number — write digits only, e.g. 600",
        ]
    );
}

#[test]
fn unterminated_continuation() {
    assert_eq!(
        error_lines("unterminated-continuation.properties"),
        ["unterminated-continuation.properties:6: this line ends with a backslash, so the entry continues on the next line, but the file ends there — remove the trailing backslash or add the missing line"]
    );
}

#[test]
fn malformed_unicode_escape() {
    assert_eq!(
        error_lines("bad-unicode-escape.properties"),
        ["bad-unicode-escape.properties:5: \"\\u0t\" is not a \\uXXXX escape with four hex digits — write four hex digits (e.g. \\u00e9), or \\\\u for a backslash followed by u"]
    );
}

#[test]
fn no_flow_enabled() {
    assert_eq!(
        error_lines("no-flow-enabled.properties"),
        ["no-flow-enabled.properties: no replication flow is enabled — enable one with <source>-><target>.enabled = true, e.g. A->B.enabled = true"]
    );
}

#[test]
fn several_errors_are_reported_at_once() {
    let lines = error_lines("several-errors.properties");
    assert_eq!(
        lines,
        [
            "several-errors.properties:3: dc2.bootstrap.servers: \"dc2-broker\" is not host:port — write it as host:port, e.g. dc2-broker:9092",
            "several-errors.properties:4: dc1->dc2.enabled: \"yes\" is not a boolean — write true or false",
            "several-errors.properties:6: dc3->dc3.enabled: dc3->dc3 would mirror a cluster into itself, which is not a flow — remove this line, or name another target",
            "several-errors.properties:7: dc2->dc3.topics: \"[unclosed\" is not a regular expression strait can use: unclosed character class — fix the expression (entries are regular expressions matched against whole names)",
            "several-errors.properties:8: dc2->dc3.emit.heartbeats.interval.seconds: -1 is out of range — write a number of seconds of at least 1 (turn the task off with its .enabled key instead of 0)",
            "several-errors.properties:11: dc3.sasl.mechanism: \"GSSAPI\" is not a SASL mechanism strait supports — use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            "several-errors.properties:14: dc2->dc3.replication.policy.class: \"com.example.MyPolicy\" is not a replication policy strait knows — strait runs no Java classes; write org.apache.kafka.connect.mirror.DefaultReplicationPolicy or org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
            "several-errors.properties: dc3.bootstrap.servers: missing — every cluster in clusters needs its brokers: add dc3.bootstrap.servers = host1:9092,host2:9092 (line 9 has dc3.bootstrap.server: is that it, misspelt?)",
        ]
    );
    let everything = lines.join("\n");
    assert!(
        !everything.contains("kerberos-secret"),
        "a secret leaked into the report"
    );
}

#[test]
fn identity_policy_flows_keep_topic_names() {
    let text = "clusters = old, new\n\
                old.bootstrap.servers = old:9092\n\
                new.bootstrap.servers = new:9092\n\
                old->new.enabled = true\n\
                replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n";
    let (config, warnings) = MirrorConfig::parse(text, "migrate.properties").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let flow = &config.flows[0];
    assert!(matches!(flow.policy, ReplicationPolicy::Identity { .. }));
    assert_eq!(flow.remote_topic("orders"), "orders");
    assert_eq!(flow.remote_topic("heartbeats"), "old.heartbeats");
    assert_eq!(flow.policy.topic_source("orders").as_deref(), Some("old"));
}

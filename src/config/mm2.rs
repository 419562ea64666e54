//! MirrorMaker 2's `connect-mirror-maker.properties`, read whole and checked
//! before anything runs: every error of the file comes back at once.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;

use super::cluster::{build_cluster, lookup, ClusterConfig, ClusterEntries, Entry};
use super::diagnostics::{ConfigErrors, ConfigWarning, Diagnostics, WarningKind};
use super::filter::split_list;
use super::flow::{build_flow, check_integer, FlowConfig, FlowEntries, FlowSettings};
use super::keys::{
    ignored_reason, is_connection_key, is_fetch_setting, scope_of, suggest, unused_client_setting,
    ClientRole, Scope, ScopedKey, UndeclaredFlow, CLIENT_PREFIXES, CLUSTER_KEYS,
    CONNECTION_KEYS_USED, FLOW_KEYS, PROGRESS_COMMIT_INTERVAL_MS, STATUS_INTERVAL_SECONDS,
};
use super::policy::ReplicationPolicy;
use super::properties::{self, Property};
use super::values::{parse_bool, parse_millis, parse_seconds, trailing_comment};

/// strait prints a status line every 10 s unless told otherwise.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// Shorter than Connect's 60 s: a restart re-copies at most this much.
pub const DEFAULT_PROGRESS_COMMIT_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The file name used in messages.
    pub file: String,
    /// In the order of `clusters`.
    pub clusters: Vec<ClusterConfig>,
    /// The enabled flows, in the order of their `.enabled` lines.
    pub flows: Vec<FlowConfig>,
    /// `strait.status.interval.seconds`.
    pub status_interval: Duration,
    /// `offset.flush.interval.ms`: how often each flow commits its progress.
    pub progress_commit_interval: Duration,
}

type Loaded = (MirrorConfig, Vec<ConfigWarning>);

impl MirrorConfig {
    /// Reads the file as Java does (ISO-8859-1) and parses it.
    pub fn load(path: impl AsRef<Path>) -> Result<Loaded, ConfigErrors> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| {
            let mut diagnostics = Diagnostics::new(&file);
            diagnostics.error(
                None,
                "",
                format!("cannot be read: {error} — check the path and its permissions"),
            );
            ConfigErrors(diagnostics.finish().0)
        })?;
        let (config, mut warnings) = Self::parse(&properties::decode_iso_8859_1(&bytes), &file)?;
        for line in properties::lines_with_non_ascii(&bytes) {
            warnings.push(ConfigWarning {
                file: file.clone(),
                line: Some(line),
                key: String::new(),
                kind: WarningKind::Suspicious,
                message: "holds non-ASCII bytes, read one byte per character (ISO-8859-1) as MM2 reads them — write such characters as \\uXXXX escapes".to_string(),
            });
        }
        warnings.sort_by_key(|w| (w.line.is_none(), w.line));
        Ok((config, warnings))
    }

    /// Parses the text of a file; `file_name` is used in messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Loaded, ConfigErrors> {
        let mut diagnostics = Diagnostics::new(file_name);
        let config = read(text, file_name, &mut diagnostics);
        let (errors, warnings) = diagnostics.finish();
        if errors.is_empty() {
            Ok((config, warnings))
        } else {
            Err(ConfigErrors(errors))
        }
    }

    pub fn cluster(&self, alias: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|cluster| cluster.alias == alias)
    }

    /// MM2's `--clusters`: the flows whose target is listed (all flows when
    /// the list is empty).
    pub fn flows_for_targets<S: AsRef<str>>(
        &self,
        targets: &[S],
    ) -> Result<Vec<&FlowConfig>, ConfigErrors> {
        if targets.is_empty() {
            return Ok(self.flows.iter().collect());
        }
        let mut diagnostics = Diagnostics::new(&self.file);
        let declared: Vec<&str> = self.clusters.iter().map(|c| c.alias.as_str()).collect();
        for target in targets {
            if !declared.contains(&target.as_ref()) {
                diagnostics.error(
                    None,
                    "--clusters",
                    format!(
                        "{:?} is not in clusters ({}) — name clusters from that list",
                        target.as_ref(),
                        declared.join(", ")
                    ),
                );
            }
        }
        let flows: Vec<&FlowConfig> = self
            .flows
            .iter()
            .filter(|flow| targets.iter().any(|t| t.as_ref() == flow.target))
            .collect();
        if flows.is_empty() && !diagnostics.has_errors() {
            let listed: Vec<&str> = targets.iter().map(AsRef::as_ref).collect();
            let targets_in_use: Vec<&str> = self.flows.iter().map(|f| f.target.as_str()).collect();
            diagnostics.error(
                None,
                "--clusters",
                format!(
                    "no enabled flow writes to {} — list a target of an enabled flow ({})",
                    listed.join(", "),
                    dedup(targets_in_use).join(", ")
                ),
            );
        }
        let (errors, _) = diagnostics.finish();
        if errors.is_empty() {
            Ok(flows)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

fn dedup(mut names: Vec<&str>) -> Vec<&str> {
    let mut seen = Vec::new();
    names.retain(|name| {
        let fresh = !seen.contains(name);
        seen.push(*name);
        fresh
    });
    names
}

type Pair = (String, String);

/// The file's entries sorted by where they apply.
#[derive(Default)]
struct Sorted<'a> {
    top_flow: Vec<Entry<'a>>,
    top_cluster: Vec<Entry<'a>>,
    top_offset_storage_topic: Option<Entry<'a>>,
    status_interval: Option<Entry<'a>>,
    progress_commit_interval: Option<Entry<'a>>,
    cluster_own: HashMap<String, Vec<Entry<'a>>>,
    flow_settings: IndexMap<Pair, Vec<Entry<'a>>>,
    flow_clients: IndexMap<Pair, Vec<Entry<'a>>>,
    flow_enabled: IndexMap<Pair, Entry<'a>>,
    flow_enable: IndexMap<Pair, Entry<'a>>,
}

fn read(text: &str, file_name: &str, diagnostics: &mut Diagnostics) -> MirrorConfig {
    let (parsed, syntax_errors) = properties::parse(text);
    for error in &syntax_errors {
        diagnostics.error(Some(error.line()), "", error.to_string());
    }
    for duplicate in &parsed.duplicates {
        diagnostics.warn(
            WarningKind::Duplicate,
            Some(duplicate.winning_line),
            &duplicate.key,
            format!(
                "also set on line {}; this later line wins, as in MM2 — remove one of them",
                duplicate.overridden_line
            ),
        );
    }
    let entries = &parsed.entries;
    let aliases = read_aliases(entries, diagnostics);
    let sorted = sort_entries(entries, &aliases, diagnostics);

    let mut defaults = FlowSettings::default();
    for entry in &sorted.top_flow {
        defaults.apply(*entry, diagnostics);
    }

    let no_entries = Vec::new();
    let cluster_entries: Vec<ClusterEntries> = aliases
        .iter()
        .map(|alias| ClusterEntries {
            alias,
            own: sorted.cluster_own.get(alias).unwrap_or(&no_entries).clone(),
            defaults: &sorted.top_cluster,
        })
        .collect();
    let clusters: Vec<ClusterConfig> = cluster_entries
        .iter()
        .map(|entries| build_cluster(entries, diagnostics))
        .collect();

    let flows = build_flows(&sorted, &defaults, &cluster_entries, &clusters, diagnostics);
    if flows.is_empty() && sorted.flow_enabled.is_empty() && sorted.flow_enable.is_empty() {
        let example = match aliases.as_slice() {
            [first, second, ..] => format!("{first}->{second}.enabled = true"),
            _ => "A->B.enabled = true".to_string(),
        };
        diagnostics.error(
            None,
            "",
            format!("no replication flow is enabled — enable one with <source>-><target>.enabled = true, e.g. {example}"),
        );
    }
    warn_about_policies(&flows, diagnostics);
    if !flows.is_empty() {
        warn_about_fetch_settings_of_clusters_no_flow_reads(&sorted, &flows, diagnostics);
    }

    let status_interval = match sorted.status_interval {
        Some(entry) => parse_seconds(&entry.property.value).unwrap_or_else(|reason| {
            diagnostics.error(entry.line(), entry.key(), reason);
            DEFAULT_STATUS_INTERVAL
        }),
        None => DEFAULT_STATUS_INTERVAL,
    };

    let progress_commit_interval = match sorted.progress_commit_interval {
        Some(entry) => parse_millis(&entry.property.value).unwrap_or_else(|reason| {
            diagnostics.error(entry.line(), entry.key(), reason);
            DEFAULT_PROGRESS_COMMIT_INTERVAL
        }),
        None => DEFAULT_PROGRESS_COMMIT_INTERVAL,
    };

    MirrorConfig {
        file: file_name.to_string(),
        clusters,
        flows,
        status_interval,
        progress_commit_interval,
    }
}

/// The aliases of `clusters`. When the key is missing, aliases are guessed
/// from the other keys so that the rest of the file is still checked.
fn read_aliases(entries: &[Property], diagnostics: &mut Diagnostics) -> Vec<String> {
    let Some(property) = entries.iter().find(|p| p.key == "clusters") else {
        let guessed = guess_aliases(entries);
        let example = if guessed.is_empty() {
            "A, B".to_string()
        } else {
            guessed.join(", ")
        };
        diagnostics.error(
            None,
            "clusters",
            format!("missing — MM2 and strait need the list of cluster aliases: add clusters = {example}"),
        );
        return guessed;
    };
    let mut aliases = Vec::new();
    for alias in split_list(&property.value) {
        let line = Some(property.line);
        if let Some(comment) = trailing_comment(&alias) {
            diagnostics.error(
                line,
                "clusters",
                format!(
                    "{alias:?} is not a cluster alias — .properties files have no end-of-line comments: put {comment:?} on a line of its own"
                ),
            );
            // Keep checking the file with the alias the author meant.
            let meant = alias[..alias.len() - comment.len()].trim().to_string();
            if !meant.is_empty() && !aliases.contains(&meant) {
                aliases.push(meant);
            }
            continue;
        }
        let problem = if alias.is_empty() {
            Some("an empty alias — remove the extra comma".to_string())
        } else if alias.chars().any(char::is_whitespace) {
            Some(format!(
                "{alias:?} has whitespace inside — separate aliases with commas"
            ))
        } else if alias.contains("->") {
            Some(format!("{alias:?} contains \"->\", which separates the two aliases of a flow — rename the cluster"))
        } else {
            None
        };
        match problem {
            Some(reason) => diagnostics.error(line, "clusters", reason),
            None if aliases.contains(&alias) => diagnostics.warn(
                WarningKind::Duplicate,
                line,
                "clusters",
                format!("{alias} is listed twice — remove one"),
            ),
            None => aliases.push(alias),
        }
    }
    if split_list(&property.value).is_empty() {
        diagnostics.error(
            Some(property.line),
            "clusters",
            "is empty — list the cluster aliases, e.g. clusters = primary, backup",
        );
    }
    aliases
}

fn guess_aliases(entries: &[Property]) -> Vec<String> {
    let mut guessed: Vec<String> = Vec::new();
    let mut add = |alias: &str| {
        if !alias.is_empty() && !guessed.iter().any(|g| g == alias) {
            guessed.push(alias.to_string());
        }
    };
    for property in entries {
        if let Some((source, rest)) = property.key.split_once("->") {
            add(source);
            add(rest.split('.').next().unwrap_or_default());
        } else if let Some(alias) = property.key.strip_suffix(".bootstrap.servers") {
            add(alias);
        }
    }
    guessed
}

fn sort_entries<'a>(
    entries: &'a [Property],
    aliases: &[String],
    diagnostics: &mut Diagnostics,
) -> Sorted<'a> {
    let pairs: Vec<Pair> = aliases
        .iter()
        .flat_map(|s| {
            aliases
                .iter()
                .filter(move |t| *t != s)
                .map(move |t| (s.clone(), t.clone()))
        })
        .collect();
    let mut sorted = Sorted::default();
    for property in entries {
        if property.key == "clusters" {
            continue;
        }
        match scope_of(&property.key, aliases) {
            Err(undeclared) => {
                report_undeclared_flow(property, &undeclared, aliases, &pairs, diagnostics)
            }
            Ok(ScopedKey { scope, name }) => {
                // `name` is a suffix of the key; borrow it from the property.
                let name = &property.key[property.key.len() - name.len()..];
                let entry = Entry { name, property };
                match scope {
                    Scope::Top => sort_top(entry, &mut sorted, aliases, &pairs, diagnostics),
                    Scope::Cluster(alias) => {
                        sort_cluster(entry, &alias, &mut sorted, aliases, &pairs, diagnostics)
                    }
                    Scope::Flow { source, target } => sort_flow(
                        entry,
                        (source, target),
                        &mut sorted,
                        aliases,
                        &pairs,
                        diagnostics,
                    ),
                }
            }
        }
    }
    sorted
}

fn report_undeclared_flow(
    property: &Property,
    undeclared: &UndeclaredFlow,
    aliases: &[String],
    pairs: &[Pair],
    diagnostics: &mut Diagnostics,
) {
    let line = Some(property.line);
    let is_switch = property.key.ends_with(".enabled") || property.key.ends_with(".enable");
    if is_switch && parse_bool(&property.value) == Ok(false) {
        diagnostics.warn(
            WarningKind::Ignored,
            line,
            &property.key,
            "names a cluster that is not in clusters; the flow is off anyway — remove this line",
        );
        return;
    }
    let declared = aliases.join(", ");
    let after_target = property.key.split_once("->").and_then(|(_, rest)| {
        rest.strip_prefix(undeclared.target.as_str())?
            .strip_prefix('.')
    });
    // The target's end is known only when a setting name follows it.
    let target_is_certain = after_target.is_some_and(|name| {
        ["enabled", "enable"].contains(&name)
            || FLOW_KEYS.contains(&name)
            || ClientRole::split(name).is_some()
    });
    let what = if aliases.contains(&undeclared.source) {
        if target_is_certain {
            format!("{} is not in clusters ({declared})", undeclared.target)
        } else {
            format!("the flow's target is not in clusters ({declared})")
        }
    } else {
        format!("{} is not in clusters ({declared})", undeclared.source)
    };
    let fix = match suggest(&property.key, aliases, pairs) {
        Some(suggestion) => format!("did you mean {suggestion}?"),
        None => "add the cluster to clusters, or fix the flow's name".to_string(),
    };
    diagnostics.error(line, &property.key, format!("{what} — {fix}"));
}

fn unknown(entry: Entry<'_>, aliases: &[String], pairs: &[Pair], diagnostics: &mut Diagnostics) {
    let message = match suggest(entry.key(), aliases, pairs) {
        Some(suggestion) => {
            diagnostics.misspelling(entry.property.line, entry.key(), &suggestion);
            format!("unknown key, ignored — did you mean {suggestion}?")
        }
        None => "unknown key, ignored".to_string(),
    };
    diagnostics.warn(WarningKind::UnknownKey, entry.line(), entry.key(), message);
}

fn ignored(entry: Entry<'_>, message: impl Into<String>, diagnostics: &mut Diagnostics) {
    diagnostics.warn(WarningKind::Ignored, entry.line(), entry.key(), message);
}

fn is_flow_key(name: &str) -> bool {
    FLOW_KEYS.contains(&name)
}

fn sort_top<'a>(
    entry: Entry<'a>,
    sorted: &mut Sorted<'a>,
    aliases: &[String],
    pairs: &[Pair],
    diagnostics: &mut Diagnostics,
) {
    let name = entry.name;
    if is_flow_key(name) {
        sorted.top_flow.push(entry);
    } else if is_connection_key(name) {
        if !CONNECTION_KEYS_USED.contains(&name) {
            ignored(
                entry,
                "strait does not use this setting; ignored",
                diagnostics,
            );
        }
        sorted.top_cluster.push(entry);
    } else if name == "exactly.once.source.support" {
        let example = aliases.first().map_or("B", String::as_str);
        ignored(
            entry,
            format!("MM2 reads this per target cluster, not at top level — write it for each target cluster, e.g. {example}.exactly.once.source.support"),
            diagnostics,
        );
    } else if CLUSTER_KEYS.contains(&name) {
        sorted.top_cluster.push(entry);
    } else if name == STATUS_INTERVAL_SECONDS {
        sorted.status_interval = Some(entry);
    } else if name == PROGRESS_COMMIT_INTERVAL_MS {
        sorted.progress_commit_interval = Some(entry);
    } else if name == "offset.storage.topic" {
        sorted.top_offset_storage_topic = Some(entry);
    } else if name == "config.providers" {
        if !entry.value().is_empty() {
            diagnostics.error(
                entry.line(),
                entry.key(),
                "strait does not resolve ${provider:path:key} references — write the values themselves in this file, and remove config.providers",
            );
        }
    } else if name.starts_with("config.providers.") {
        ignored(
            entry,
            "strait does not resolve config providers; ignored",
            diagnostics,
        );
    } else if name == "enabled" {
        diagnostics.error(
            entry.line(),
            entry.key(),
            "flows are enabled one by one — write <source>-><target>.enabled = true for each flow, and remove this line",
        );
    } else if name == "tasks.max" {
        check_integer(entry, diagnostics);
        ignored(entry, ignored_reason(name).unwrap_or_default(), diagnostics);
    } else if let Some(reason) = ignored_reason(name) {
        ignored(entry, reason, diagnostics);
    } else if CLIENT_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        let example = aliases.first().map_or("A", String::as_str);
        ignored(
            entry,
            format!("MM2 ignores client settings at top level, and so does strait — write them per cluster, e.g. {example}.{name}"),
            diagnostics,
        );
    } else {
        unknown(entry, aliases, pairs, diagnostics);
    }
}

fn sort_cluster<'a>(
    entry: Entry<'a>,
    alias: &str,
    sorted: &mut Sorted<'a>,
    aliases: &[String],
    pairs: &[Pair],
    diagnostics: &mut Diagnostics,
) {
    let name = entry.name;
    let known_here = is_connection_key(name)
        || CLUSTER_KEYS.contains(&name)
        || name == "offset.storage.topic"
        || CLIENT_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix));
    if known_here {
        if let Some((role, setting)) = ClientRole::split(name) {
            if let Some(reason) = unused_client_setting(role, setting, true, alias) {
                ignored(entry, reason, diagnostics);
            }
        }
        sorted
            .cluster_own
            .entry(alias.to_string())
            .or_default()
            .push(entry);
    } else if is_flow_key(name) {
        let other = aliases
            .iter()
            .find(|a| *a != alias)
            .map_or("B", String::as_str);
        ignored(
            entry,
            format!("MM2 ignores flow settings given per cluster, and so does strait — write {alias}->{other}.{name} for one flow, or {name} for all flows"),
            diagnostics,
        );
    } else {
        sort_rest(entry, aliases, pairs, diagnostics);
    }
}

fn sort_flow<'a>(
    entry: Entry<'a>,
    pair: Pair,
    sorted: &mut Sorted<'a>,
    aliases: &[String],
    pairs: &[Pair],
    diagnostics: &mut Diagnostics,
) {
    let name = entry.name;
    let (source, target) = (&pair.0, &pair.1);
    if source == target {
        if name == "enabled" && parse_bool(&entry.property.value) == Ok(false) {
            return;
        }
        let reason = format!("{source}->{target} would mirror a cluster into itself, which is not a flow — remove this line, or name another target");
        if name == "enabled" || name == "enable" {
            diagnostics.error(entry.line(), entry.key(), reason);
        } else {
            ignored(entry, reason, diagnostics);
        }
        return;
    }
    if name == "enabled" {
        sorted.flow_enabled.insert(pair, entry);
    } else if name == "enable" {
        sorted.flow_enable.insert(pair, entry);
    } else if is_flow_key(name) {
        sorted.flow_settings.entry(pair).or_default().push(entry);
    } else if let Some((role, setting)) = ClientRole::split(name) {
        let alias = match role {
            ClientRole::Producer => target,
            ClientRole::Admin if name.starts_with("target.") => target,
            ClientRole::Consumer | ClientRole::Admin => source,
        };
        if let Some(reason) = unused_client_setting(role, setting, false, alias) {
            ignored(entry, reason, diagnostics);
        }
        sorted.flow_clients.entry(pair).or_default().push(entry);
    } else if name.starts_with("source.producer.") || name.starts_with("target.consumer.") {
        ignored(
            entry,
            "MM2's clients for offset syncs and checkpoints; strait uses the flow's source consumer and target producer settings — ignored",
            diagnostics,
        );
    } else if let Some(cluster_setting) = name
        .strip_prefix("source.cluster.")
        .map(|rest| (source, rest))
        .or_else(|| {
            name.strip_prefix("target.cluster.")
                .map(|rest| (target, rest))
        })
    {
        let (alias, rest) = cluster_setting;
        ignored(
            entry,
            format!("strait sets clusters up per cluster — write {alias}.{rest} instead"),
            diagnostics,
        );
    } else if is_connection_key(name) || CLUSTER_KEYS.contains(&name) {
        ignored(
            entry,
            format!("MM2 applies connection settings per cluster, not per flow — write {source}.{name} or {target}.{name}"),
            diagnostics,
        );
    } else {
        sort_rest(entry, aliases, pairs, diagnostics);
    }
}

fn build_flows(
    sorted: &Sorted<'_>,
    defaults: &FlowSettings,
    cluster_entries: &[ClusterEntries<'_>],
    clusters: &[ClusterConfig],
    diagnostics: &mut Diagnostics,
) -> Vec<FlowConfig> {
    let mut pairs: Vec<&Pair> = Vec::new();
    for pair in sorted
        .flow_enabled
        .keys()
        .chain(sorted.flow_enable.keys())
        .chain(sorted.flow_settings.keys())
        .chain(sorted.flow_clients.keys())
    {
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let mut flows = Vec::new();
    for pair in pairs {
        let (source, target) = pair;
        let enabled = flow_switch(pair, sorted, diagnostics);
        let mut settings = defaults.clone();
        for entry in sorted.flow_settings.get(pair).into_iter().flatten() {
            settings.apply(*entry, diagnostics);
        }
        let position = |alias: &str| aliases_position(cluster_entries, alias);
        let (Some(source_index), Some(target_index)) = (position(source), position(target)) else {
            continue;
        };
        let target_entries = &cluster_entries[target_index];
        let offset_storage_topic = sorted
            .top_offset_storage_topic
            .or_else(|| lookup(&[&target_entries.own], "offset.storage.topic"));
        let entries = FlowEntries {
            source: &cluster_entries[source_index],
            target: target_entries,
            line: enabled.map_or(0, |(_, line)| line),
            clients: sorted.flow_clients.get(pair).cloned().unwrap_or_default(),
            offset_storage_topic,
        };
        let exactly_once = clusters[target_index].exactly_once_source_support;
        let flow = build_flow(settings, &entries, exactly_once, diagnostics);
        if enabled.is_some_and(|(on, _)| on) {
            flows.push(flow);
        }
    }
    flows.sort_by_key(|flow| flow.line);
    flows
}

/// `<alias>.consumer.fetch.max.bytes` and the like shape only the fetches of flows from
/// that cluster: where no enabled flow reads from it they do nothing, which an operator
/// who wrote them would not expect.
fn warn_about_fetch_settings_of_clusters_no_flow_reads(
    sorted: &Sorted<'_>,
    flows: &[FlowConfig],
    diagnostics: &mut Diagnostics,
) {
    let mut unread: Vec<(&str, &Entry<'_>)> = sorted
        .cluster_own
        .iter()
        .filter(|(alias, _)| !flows.iter().any(|flow| &flow.source == *alias))
        .flat_map(|(alias, entries)| entries.iter().map(move |entry| (alias.as_str(), entry)))
        .filter(|(_, entry)| {
            matches!(ClientRole::split(entry.name), Some((ClientRole::Consumer, setting)) if is_fetch_setting(setting))
        })
        .collect();
    unread.sort_by_key(|(_, entry)| entry.property.line);
    for (alias, entry) in unread {
        let other = flows
            .iter()
            .flat_map(|flow| [flow.source.as_str(), flow.target.as_str()])
            .find(|other| *other != alias)
            .unwrap_or("B");
        ignored(
            *entry,
            format!(
                "no enabled flow reads from {alias}, so this shapes no fetch — enable one with {alias}->{other}.enabled = true, or remove this line"
            ),
            diagnostics,
        );
    }
}

fn aliases_position(cluster_entries: &[ClusterEntries<'_>], alias: &str) -> Option<usize> {
    cluster_entries
        .iter()
        .position(|entries| entries.alias == alias)
}

/// Whether a flow is on, and the line that says so. MM2 reads only
/// `.enabled`; `.enable` (which the MM2 documentation also shows) is
/// accepted with a warning.
fn flow_switch(
    pair: &Pair,
    sorted: &Sorted<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<(bool, usize)> {
    let (source, target) = pair;
    let read = |entry: &Entry<'_>, diagnostics: &mut Diagnostics| match parse_bool(
        &entry.property.value,
    ) {
        Ok(on) => Some(on),
        Err(reason) => {
            diagnostics.error(entry.line(), entry.key(), reason);
            None
        }
    };
    let enabled = sorted
        .flow_enabled
        .get(pair)
        .map(|e| (read(e, diagnostics), e));
    let enable = sorted
        .flow_enable
        .get(pair)
        .map(|e| (read(e, diagnostics), e));
    match (enabled, enable) {
        (Some((Some(on), entry)), Some((Some(alternative), alt_entry))) => {
            if on != alternative {
                diagnostics.error(
                    alt_entry.line(),
                    alt_entry.key(),
                    format!(
                        "says {alternative} but {source}->{target}.enabled on line {} says {on} — MM2 reads only .enabled: remove this line",
                        entry.property.line
                    ),
                );
            } else {
                ignored(
                    *alt_entry,
                    format!("repeats {source}->{target}.enabled — remove this line"),
                    diagnostics,
                );
            }
            Some((on, entry.property.line))
        }
        (Some((on, entry)), _) => on.map(|on| (on, entry.property.line)),
        (None, Some((on, entry))) => {
            diagnostics.warn(
                WarningKind::Suspicious,
                entry.line(),
                entry.key(),
                format!(
                    "MM2 reads only {source}->{target}.enabled and ignores .enable (its documentation shows both); strait accepts it — rename it to .enabled so that MM2 and strait agree"
                ),
            );
            on.map(|on| (on, entry.property.line))
        }
        (None, None) => None,
    }
}

fn warn_about_policies(flows: &[FlowConfig], diagnostics: &mut Diagnostics) {
    for flow in flows {
        if let ReplicationPolicy::Default { separators } = &flow.policy {
            let separator = separators.topic();
            for alias in [&flow.source, &flow.target] {
                if alias.contains(separator) {
                    diagnostics.warn(
                        WarningKind::Suspicious,
                        Some(flow.line),
                        &format!("{}.enabled", flow.name()),
                        format!(
                            "cluster alias {alias} contains the separator {separator:?}, so remote topic names cannot be traced back to it and replication loops through {alias} go undetected (as in MM2) — choose a separator that no alias contains"
                        ),
                    );
                }
            }
        }
        let reverse = flows
            .iter()
            .find(|other| other.source == flow.target && other.target == flow.source);
        if let (ReplicationPolicy::Identity { .. }, Some(_)) = (&flow.policy, reverse) {
            diagnostics.warn(
                WarningKind::Suspicious,
                Some(flow.line),
                &format!("{}.enabled", flow.name()),
                format!(
                    "with IdentityReplicationPolicy, {} and its reverse flow mirror each topic back and forth forever unless their topics lists are disjoint — make them disjoint, or use the default policy",
                    flow.name()
                ),
            );
        }
    }
}

/// Keys that are not settings of the scope they are written in.
fn sort_rest(entry: Entry<'_>, aliases: &[String], pairs: &[Pair], diagnostics: &mut Diagnostics) {
    let name = entry.name;
    if name == STATUS_INTERVAL_SECONDS {
        ignored(
            entry,
            format!("strait reads this at top level only — write {name} without a prefix"),
            diagnostics,
        );
    } else if name == "tasks.max" {
        check_integer(entry, diagnostics);
        ignored(entry, ignored_reason(name).unwrap_or_default(), diagnostics);
    } else if let Some(reason) = ignored_reason(name) {
        ignored(entry, reason, diagnostics);
    } else {
        unknown(entry, aliases, pairs, diagnostics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::StartPosition;

    const BASE: &str =
        "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n";

    fn parse(extra: &str) -> Result<Loaded, Vec<String>> {
        MirrorConfig::parse(&format!("{BASE}{extra}"), "f")
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
    }

    fn warnings(extra: &str) -> Vec<String> {
        let (_, warnings) = parse(extra).unwrap();
        warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn client_overrides_layer_as_in_mm2() {
        let (config, _) = parse(
            "A->B.enabled = true\n\
             A->B.consumer.fetch.min.bytes = 1\n\
             A->B.consumer.fetch.max.wait.ms = 100\n\
             A.consumer.fetch.max.wait.ms = 200\n\
             A.consumer.fetch.min.bytes = 2\n\
             A->B.source.consumer.fetch.min.bytes = 3\n\
             A.consumer.auto.offset.reset = latest\n\
             A->B.producer.linger.ms = 7\n",
        )
        .unwrap();
        let flow = &config.flows[0];
        // flow consumer.* < <source>.consumer.* < flow source.consumer.*
        assert_eq!(flow.fetch.max_wait, Duration::from_millis(200));
        assert_eq!(flow.fetch.min_bytes, 3);
        assert_eq!(flow.start_position, StartPosition::Latest);
        assert_eq!(flow.target_producer.get("linger.ms"), Some("7"));
        assert_eq!(flow.source_consumer.get("linger.ms"), None);
    }

    #[test]
    fn strait_start_position_wins_over_auto_offset_reset() {
        let (config, _) = parse(
            "A->B.enabled = true\nA.consumer.auto.offset.reset = latest\nstrait.start.position = earliest\n",
        )
        .unwrap();
        assert_eq!(config.flows[0].start_position, StartPosition::Earliest);
    }

    #[test]
    fn top_level_connection_settings_are_defaults_for_every_cluster() {
        let (config, _) = parse(
            "A->B.enabled = true\nsecurity.protocol = SSL\nB.security.protocol = PLAINTEXT\nssl.truststore.type = PEM\nssl.truststore.location = /ca.pem\n",
        )
        .unwrap();
        assert!(config.cluster("A").unwrap().tls.is_some());
        assert!(config.cluster("B").unwrap().tls.is_none());
    }

    #[test]
    fn enable_and_enabled_must_agree() {
        let errors = parse("A->B.enabled = true\nA->B.enable = false\n").unwrap_err();
        assert_eq!(
            errors,
            ["f:5: A->B.enable: says false but A->B.enabled on line 4 says true — MM2 reads only .enabled: remove this line"]
        );
        let repeated = warnings("A->B.enabled = true\nA->B.enable = true\n");
        assert_eq!(
            repeated,
            ["f:5: A->B.enable: repeats A->B.enabled — remove this line"]
        );
    }

    #[test]
    fn keys_that_cannot_work_are_errors() {
        let errors = parse(
            "A->B.enabled = true\nenabled = true\nconfig.providers = file\nB->A.enabled = maybe\n",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "f:5: enabled: flows are enabled one by one — write <source>-><target>.enabled = true for each flow, and remove this line",
                "f:6: config.providers: strait does not resolve ${provider:path:key} references — write the values themselves in this file, and remove config.providers",
                "f:7: B->A.enabled: \"maybe\" is not a boolean — write true or false",
            ]
        );
    }

    #[test]
    fn aliases_listed_with_an_end_of_line_comment_are_still_checked() {
        let text = "clusters = us-west, us-east   # defines cluster aliases\n\
                    us-west.bootstrap.servers = w:9092\n\
                    us-east.bootstrap.servers = e:9092\n\
                    us-west->us-east.enabled = true\n";
        let errors = MirrorConfig::parse(text, "f").unwrap_err();
        assert_eq!(
            errors.to_string(),
            "f:1: clusters: \"us-east   # defines cluster aliases\" is not a cluster alias — .properties files have no end-of-line comments: put \"# defines cluster aliases\" on a line of its own"
        );
    }

    #[test]
    fn bad_aliases() {
        let errors = MirrorConfig::parse("clusters = A,, B C, x->y\n", "f").unwrap_err();
        let lines: Vec<String> = errors.0.iter().map(|e| e.reason.clone()).collect();
        assert_eq!(
            lines[..3],
            [
                "an empty alias — remove the extra comma",
                "\"B C\" has whitespace inside — separate aliases with commas",
                "\"x->y\" contains \"->\", which separates the two aliases of a flow — rename the cluster",
            ]
        );
    }

    #[test]
    fn suspicious_topologies_are_warned_about() {
        let identity = warnings(
            "A->B.enabled = true\nB->A.enabled = true\nreplication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
        );
        assert_eq!(identity.len(), 2);
        assert!(
            identity[0].starts_with(
                "f:4: A->B.enabled: with IdentityReplicationPolicy, A->B and its reverse flow"
            ),
            "{}",
            identity[0]
        );

        let text = "clusters = dc1.prod, dc2\ndc1.prod.bootstrap.servers = a:1\ndc2.bootstrap.servers = b:1\ndc1.prod->dc2.enabled = true\n";
        let (config, dotted) = MirrorConfig::parse(text, "f").unwrap();
        assert_eq!(config.flows[0].name(), "dc1.prod->dc2");
        assert_eq!(dotted.len(), 1);
        assert!(
            dotted[0]
                .message
                .contains("cluster alias dc1.prod contains the separator \".\""),
            "{}",
            dotted[0]
        );
    }

    #[test]
    fn fetch_settings_of_a_cluster_no_flow_reads_from_are_named() {
        let noted = warnings(
            "A->B.enabled = true\n\
             B->A.enabled = false\n\
             B.consumer.fetch.max.bytes = 52428800\n\
             B.consumer.receive.buffer.bytes = 8388608\n\
             A.consumer.fetch.max.bytes = 1048576\n\
             B.consumer.isolation.level = read_committed\n",
        );
        let unread = "no enabled flow reads from B, so this shapes no fetch — enable one with B->A.enabled = true, or remove this line";
        assert_eq!(
            noted,
            [
                format!("f:6: B.consumer.fetch.max.bytes: {unread}"),
                format!("f:9: B.consumer.isolation.level: {unread}"),
            ]
        );
    }

    #[test]
    fn client_settings_strait_has_no_use_for_are_named() {
        let noted = warnings(
            "A->B.enabled = true\n\
             A.consumer.fetch.max.bytes = 1048576\n\
             A.consumer.receive.buffer.bytes = -1\n\
             B.producer.send.buffer.bytes = -1\n\
             A->B.source.consumer.isolation.level = read_uncommitted\n\
             A->B.consumer.fetch.min.bytes = 1\n\
             B.producer.batch.size = 1048576\n\
             A->B.target.producer.max.in.flight.requests.per.connection = 5\n\
             A->B.consumer.max.poll.records = 4096\n\
             A.admin.request.timeout.ms = 60000\n\
             A->B.consumer.receive.buffer.bytes = 8388608\n\
             A->B.target.admin.send.buffer.bytes = 8388608\n",
        );
        let producer = "strait forwards the source's record batches as they are, as an idempotent producer with acks=all and up to five batches per partition on their way; of the producer's settings it uses only the socket buffers — ignored";
        let consumer = "strait fetches record batches itself, without a consumer group or polls; of the consumer's settings it uses fetch.max.bytes, max.partition.fetch.bytes, fetch.min.bytes, fetch.max.wait.ms, isolation.level, auto.offset.reset and the socket buffers — ignored";
        assert_eq!(
            noted,
            [
                format!("f:10: B.producer.batch.size: {producer}"),
                format!("f:11: A->B.target.producer.max.in.flight.requests.per.connection: {producer}"),
                format!("f:12: A->B.consumer.max.poll.records: {consumer}"),
                "f:13: A.admin.request.timeout.ms: strait's admin requests take only the cluster's connection settings — ignored".to_string(),
                "f:14: A->B.consumer.receive.buffer.bytes: strait sizes the socket buffers of all its connections to a cluster alike — write A.receive.buffer.bytes instead; ignored".to_string(),
                "f:15: A->B.target.admin.send.buffer.bytes: strait sizes the socket buffers of all its connections to a cluster alike — write B.send.buffer.bytes instead; ignored".to_string(),
            ]
        );
    }

    #[test]
    fn ignored_settings_say_where_they_belong() {
        let noted = warnings(
            "A->B.enabled = true\nexactly.once.source.support = enabled\nA->B.security.protocol = SSL\nA->B.source.cluster.client.id = x\nA->B.strait.status.interval.seconds = 5\n",
        );
        assert_eq!(
            noted,
            [
                "f:5: exactly.once.source.support: MM2 reads this per target cluster, not at top level — write it for each target cluster, e.g. A.exactly.once.source.support",
                "f:6: A->B.security.protocol: MM2 applies connection settings per cluster, not per flow — write A.security.protocol or B.security.protocol",
                "f:7: A->B.source.cluster.client.id: strait sets clusters up per cluster — write A.client.id instead",
                "f:8: A->B.strait.status.interval.seconds: strait reads this at top level only — write strait.status.interval.seconds without a prefix",
            ]
        );
    }

    #[test]
    fn a_self_flow_that_is_off_is_harmless() {
        let (config, warnings) = parse("A->B.enabled = true\nA->A.enabled = false\n").unwrap();
        assert_eq!(config.flows.len(), 1);
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}

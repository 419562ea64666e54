//! Which source topics a flow mirrors, under which names, and why the others are left
//! out. Pure: the caller brings the source's topic list.

use std::fmt;

use crate::config::FlowConfig;

/// A topic as the source cluster's metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTopic {
    pub name: String,
    pub partitions: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Matched by none of the `topics` patterns.
    NotSelected,
    /// Matched by `topics.exclude`.
    Excluded,
    /// A Kafka or MirrorMaker internal topic.
    Internal,
    /// It came from the target cluster: mirroring it back would close a loop.
    Cycle,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NotSelected => "not matched by topics",
            SkipReason::Excluded => "excluded by topics.exclude",
            SkipReason::Internal => "internal topic",
            SkipReason::Cycle => "came from the target cluster (cycle)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlan {
    pub source: String,
    pub target: String,
    pub partitions: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPlan {
    pub flow: String,
    pub topics: Vec<TopicPlan>,
    pub skipped: Vec<(String, SkipReason)>,
}

pub fn plan_flow(flow: &FlowConfig, source_topics: &[SourceTopic]) -> FlowPlan {
    let mut topics = Vec::new();
    let mut skipped = Vec::new();
    let mut sorted: Vec<&SourceTopic> = source_topics.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in sorted {
        if flow.should_replicate_topic(&topic.name) {
            topics.push(TopicPlan {
                source: topic.name.clone(),
                target: flow.remote_topic(&topic.name),
                partitions: topic.partitions,
            });
        } else {
            skipped.push((topic.name.clone(), skip_reason(flow, &topic.name)));
        }
    }
    FlowPlan {
        flow: flow.name(),
        topics,
        skipped,
    }
}

fn skip_reason(flow: &FlowConfig, topic: &str) -> SkipReason {
    if flow.policy.is_internal_topic(topic) {
        SkipReason::Internal
    } else if flow.policy.would_cycle(topic, &flow.target) {
        SkipReason::Cycle
    } else if flow.topics.include.matches(topic) {
        SkipReason::Excluded
    } else {
        SkipReason::NotSelected
    }
}

impl fmt::Display for FlowPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "flow {}: {} topics to mirror",
            self.flow,
            self.topics.len()
        )?;
        for topic in &self.topics {
            writeln!(
                f,
                "  {} -> {} ({} partitions)",
                topic.source, topic.target, topic.partitions
            )?;
        }
        for (topic, reason) in &self.skipped {
            writeln!(f, "  skipped {topic}: {reason}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MirrorConfig;

    fn flow(text: &str) -> FlowConfig {
        let (config, _warnings) =
            MirrorConfig::parse(text, "test.properties").expect("valid config");
        config.flows[0].clone()
    }

    fn topic(name: &str) -> SourceTopic {
        SourceTopic {
            name: name.to_string(),
            partitions: 3,
        }
    }

    #[test]
    fn plans_remote_names_and_explains_every_skipped_topic() {
        let flow = flow(
            "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n\
             A->B.enabled = true\nA->B.topics = orders.*, B\\.payments\nA->B.topics.exclude = orders\\.secret\n",
        );
        let plan = plan_flow(
            &flow,
            &[
                topic("orders.eu"),
                topic("orders.secret"),
                topic("users"),
                topic("__consumer_offsets"),
                topic("B.payments"),
            ],
        );
        assert_eq!(
            plan.topics,
            vec![TopicPlan {
                source: "orders.eu".into(),
                target: "A.orders.eu".into(),
                partitions: 3
            }]
        );
        assert_eq!(
            plan.skipped,
            vec![
                ("B.payments".into(), SkipReason::Cycle),
                ("__consumer_offsets".into(), SkipReason::Internal),
                ("orders.secret".into(), SkipReason::Excluded),
                ("users".into(), SkipReason::NotSelected),
            ]
        );
        let shown = plan.to_string();
        assert!(
            shown.contains("orders.eu -> A.orders.eu (3 partitions)"),
            "{shown}"
        );
        assert!(
            shown.contains("skipped B.payments: came from the target cluster (cycle)"),
            "{shown}"
        );
    }
}

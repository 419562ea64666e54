//! A cluster's metadata as an immutable snapshot, built from Metadata responses without I/O.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::MetadataResponse;
use uuid::Uuid;

/// Where a broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerAddr {
    /// "host:port", with IPv6 literals bracketed.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    /// Leader broker id, -1 while there is none.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Partition error code, `None` for no error.
    pub error: Option<i16>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// Nil when the broker predates topic ids (before Metadata v10).
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionMeta>,
    /// Topic error code (UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist).
    pub error: Option<i16>,
    pub is_internal: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataSnapshot {
    pub brokers: HashMap<i32, BrokerAddr>,
    pub topics: HashMap<String, TopicMeta>,
    /// -1 when unknown.
    pub controller_id: i32,
    pub cluster_id: Option<String>,
}

fn error_of(code: i16) -> Option<i16> {
    (code != 0).then_some(code)
}

impl MetadataSnapshot {
    pub fn from_response(response: &MetadataResponse) -> Self {
        let brokers = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerAddr {
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        let topics = response
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        (
                            p.partition_index,
                            PartitionMeta {
                                leader: p.leader_id.0,
                                leader_epoch: p.leader_epoch,
                                error: error_of(p.error_code),
                                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                            },
                        )
                    })
                    .collect();
                Some((
                    name,
                    TopicMeta {
                        topic_id: t.topic_id,
                        partitions,
                        error: error_of(t.error_code),
                        is_internal: t.is_internal,
                    },
                ))
            })
            .collect();
        Self {
            brokers,
            topics,
            controller_id: response.controller_id.0,
            cluster_id: response.cluster_id.as_ref().map(|c| c.to_string()),
        }
    }

    /// This snapshot updated by `fresh`, the answer to a Metadata request for `requested`
    /// topics (`None`: all topics). Brokers always come from `fresh`; topics not requested
    /// are kept as they were.
    pub fn updated_with(&self, fresh: MetadataSnapshot, requested: Option<&[String]>) -> Self {
        let Some(requested) = requested else {
            return fresh;
        };
        let mut topics = self.topics.clone();
        for name in requested {
            topics.remove(name);
        }
        topics.extend(fresh.topics);
        Self { topics, ..fresh }
    }

    /// The leader of a partition, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let leader = self.topics.get(topic)?.partitions.get(&partition)?.leader;
        (leader >= 0).then_some(leader)
    }

    /// "host:port" of a broker.
    pub fn broker_address(&self, broker: i32) -> Option<String> {
        self.brokers.get(&broker).map(BrokerAddr::address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    /// (topic name, topic error code, [(partition, leader)])
    type TopicSpec<'a> = (&'a str, i16, &'a [(i32, i32)]);

    fn response(topics: &[TopicSpec<'_>]) -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("kafka-1"))
                    .with_port(9092),
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("::1"))
                    .with_port(9093)
                    .with_rack(Some(StrBytes::from_static_str("r2"))),
            ])
            .with_controller_id(BrokerId(2))
            .with_cluster_id(Some(StrBytes::from_static_str("abc")))
            .with_topics(
                topics
                    .iter()
                    .map(|(name, error, partitions)| {
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
                            .with_error_code(*error)
                            .with_topic_id(Uuid::from_bytes([name.len() as u8; 16]))
                            .with_partitions(
                                partitions
                                    .iter()
                                    .map(|(index, leader)| {
                                        MetadataResponsePartition::default()
                                            .with_partition_index(*index)
                                            .with_leader_id(BrokerId(*leader))
                                            .with_leader_epoch(4)
                                            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                                            .with_isr_nodes(vec![BrokerId(*leader)])
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }

    #[test]
    fn snapshot_holds_brokers_topics_and_leaders() {
        let snap = MetadataSnapshot::from_response(&response(&[
            ("orders", 0, &[(0, 1), (1, 2)]),
            ("gone", 3, &[]),
        ]));
        assert_eq!(snap.broker_address(1).as_deref(), Some("kafka-1:9092"));
        assert_eq!(snap.broker_address(2).as_deref(), Some("[::1]:9093"));
        assert_eq!(snap.brokers[&2].rack.as_deref(), Some("r2"));
        assert_eq!(snap.controller_id, 2);
        assert_eq!(snap.cluster_id.as_deref(), Some("abc"));
        assert_eq!(snap.leader("orders", 1), Some(2));
        assert_eq!(snap.leader("orders", 9), None);
        let orders = &snap.topics["orders"];
        assert_eq!(orders.topic_id, Uuid::from_bytes([6; 16]));
        assert_eq!(orders.partitions[&0].isr, vec![1]);
        assert_eq!(orders.partitions[&0].replicas, vec![1, 2]);
        assert_eq!(orders.partitions[&0].leader_epoch, 4);
        assert_eq!(orders.error, None);
        assert_eq!(snap.topics["gone"].error, Some(3));
    }

    #[test]
    fn leaderless_partition_has_no_leader() {
        let snap = MetadataSnapshot::from_response(&response(&[("t", 0, &[(0, -1)])]));
        assert_eq!(snap.leader("t", 0), None);
    }

    #[test]
    fn partial_refresh_replaces_only_requested_topics() {
        let old =
            MetadataSnapshot::from_response(&response(&[("a", 0, &[(0, 1)]), ("b", 0, &[(0, 1)])]));
        let fresh = MetadataSnapshot::from_response(&response(&[("a", 0, &[(0, 2)])]));
        let merged = old.updated_with(fresh.clone(), Some(&["a".to_string(), "c".to_string()]));
        assert_eq!(merged.leader("a", 0), Some(2));
        assert_eq!(merged.leader("b", 0), Some(1));
        assert!(!merged.topics.contains_key("c"));
        let full = old.updated_with(fresh, None);
        assert!(!full.topics.contains_key("b"));
    }
}

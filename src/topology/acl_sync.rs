//! Which topic ACLs of the source cluster a flow recreates on the target, as MM2's
//! `MirrorSourceConnector.syncTopicAcls` does: literal topic ACLs of the topics the flow
//! mirrors, renamed to the remote topic; ALLOW WRITE is dropped (only strait writes to
//! a remote topic) and ALLOW ALL becomes ALLOW READ. DENY entries are copied as they are.
//!
//! One difference: MM2 also renames the literal wildcard `*` (every topic) into a
//! literal topic named `<source>.*`, which matches nothing; strait leaves it out.

use std::fmt;

use crate::config::FlowConfig;

/// The literal resource name that stands for every topic.
pub const ANY_TOPIC: &str = "*";

/// Kafka's ACL operations (`AclOperation`, by protocol code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    /// A code this version of strait does not name; copied as it is.
    Other(i8),
}

impl AclOperation {
    pub fn from_code(code: i8) -> Self {
        match code {
            2 => AclOperation::All,
            3 => AclOperation::Read,
            4 => AclOperation::Write,
            5 => AclOperation::Create,
            6 => AclOperation::Delete,
            7 => AclOperation::Alter,
            8 => AclOperation::Describe,
            9 => AclOperation::ClusterAction,
            10 => AclOperation::DescribeConfigs,
            11 => AclOperation::AlterConfigs,
            12 => AclOperation::IdempotentWrite,
            other => AclOperation::Other(other),
        }
    }

    pub fn code(self) -> i8 {
        match self {
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
            AclOperation::Other(code) => code,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPermission {
    Deny,
    Allow,
    Other(i8),
}

impl AclPermission {
    pub fn from_code(code: i8) -> Self {
        match code {
            2 => AclPermission::Deny,
            3 => AclPermission::Allow,
            other => AclPermission::Other(other),
        }
    }

    pub fn code(self) -> i8 {
        match self {
            AclPermission::Deny => 2,
            AclPermission::Allow => 3,
            AclPermission::Other(code) => code,
        }
    }
}

/// An ACL on one topic named literally (resource type TOPIC, pattern LITERAL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicAcl {
    pub topic: String,
    /// `User:alice`, as Kafka writes principals.
    pub principal: String,
    /// `*` for any host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl fmt::Display for TopicAcl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} for {} from host {} on topic {}",
            self.permission, self.operation, self.principal, self.host, self.topic
        )
    }
}

/// MM2's `shouldReplicateAcl`: only strait may write to a remote topic.
fn should_replicate_acl(acl: &TopicAcl) -> bool {
    !(acl.permission == AclPermission::Allow && acl.operation == AclOperation::Write)
}

/// MM2's `targetAclBinding`: renamed, and ALLOW ALL narrowed to READ.
fn target_acl(flow: &FlowConfig, acl: &TopicAcl) -> TopicAcl {
    let operation = if acl.permission == AclPermission::Allow && acl.operation == AclOperation::All
    {
        AclOperation::Read
    } else {
        acl.operation
    };
    TopicAcl {
        topic: flow.remote_topic(&acl.topic),
        operation,
        ..acl.clone()
    }
}

/// The ACLs `flow` wants on its target cluster for the source's literal topic ACLs
/// `source_acls`, sorted and without duplicates.
pub fn target_acls(flow: &FlowConfig, source_acls: &[TopicAcl]) -> Vec<TopicAcl> {
    let mut acls: Vec<TopicAcl> = source_acls
        .iter()
        .filter(|acl| acl.topic != ANY_TOPIC)
        .filter(|acl| should_replicate_acl(acl))
        .filter(|acl| flow.should_replicate_topic(&acl.topic))
        .map(|acl| target_acl(flow, acl))
        .collect();
    acls.sort();
    acls.dedup();
    acls
}

/// The ACLs of `wanted` the target does not have yet.
pub fn missing_acls(wanted: &[TopicAcl], on_target: &[TopicAcl]) -> Vec<TopicAcl> {
    wanted
        .iter()
        .filter(|acl| !on_target.contains(acl))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::test_fixtures::flow;

    fn acl(topic: &str, operation: AclOperation, permission: AclPermission) -> TopicAcl {
        TopicAcl {
            topic: topic.to_string(),
            principal: "User:alice".to_string(),
            host: "*".to_string(),
            operation,
            permission,
        }
    }

    use AclOperation::*;
    use AclPermission::*;

    #[test]
    fn acls_are_renamed_to_the_remote_topic() {
        let wanted = target_acls(&flow(""), &[acl("orders", Read, Allow)]);
        assert_eq!(wanted, vec![acl("A.orders", Read, Allow)]);
    }

    #[test]
    fn allow_write_is_dropped_and_allow_all_becomes_read() {
        let source = [
            acl("orders", Write, Allow),
            acl("orders", All, Allow),
            acl("orders", Describe, Allow),
        ];
        assert_eq!(
            target_acls(&flow(""), &source),
            vec![
                acl("A.orders", Read, Allow),
                acl("A.orders", Describe, Allow)
            ]
        );
    }

    #[test]
    fn deny_entries_are_copied_as_they_are() {
        let source = [acl("orders", Write, Deny), acl("orders", All, Deny)];
        assert_eq!(
            target_acls(&flow(""), &source),
            vec![acl("A.orders", All, Deny), acl("A.orders", Write, Deny)]
        );
    }

    #[test]
    fn only_topics_the_flow_mirrors_are_considered() {
        let flow = flow("topics = orders.*\n");
        let source = [
            acl("orders-eu", Read, Allow),
            acl("payments", Read, Allow),
            acl("__consumer_offsets", Read, Allow),
            // Came from B: mirroring it back would close a loop.
            acl("B.orders", Read, Allow),
            acl(ANY_TOPIC, Read, Allow),
        ];
        assert_eq!(
            target_acls(&flow, &source),
            vec![acl("A.orders-eu", Read, Allow)]
        );
    }

    #[test]
    fn the_identity_policy_keeps_names() {
        let flow = flow(
            "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
        );
        assert_eq!(
            target_acls(&flow, &[acl("orders", All, Allow)]),
            vec![acl("orders", Read, Allow)]
        );
    }

    #[test]
    fn an_allow_all_that_duplicates_an_allow_read_is_created_once() {
        let source = [acl("orders", All, Allow), acl("orders", Read, Allow)];
        assert_eq!(
            target_acls(&flow(""), &source),
            vec![acl("A.orders", Read, Allow)]
        );
    }

    #[test]
    fn only_missing_acls_are_created() {
        let wanted = [acl("A.t", Read, Allow), acl("A.t", Describe, Allow)];
        let present = [acl("A.t", Read, Allow), acl("A.other", Read, Allow)];
        assert_eq!(
            missing_acls(&wanted, &present),
            vec![acl("A.t", Describe, Allow)]
        );
    }

    #[test]
    fn protocol_codes_round_trip() {
        for code in 0..20 {
            assert_eq!(AclOperation::from_code(code).code(), code);
            assert_eq!(AclPermission::from_code(code).code(), code);
        }
        assert_eq!(AclOperation::from_code(3), Read);
        assert_eq!(AclPermission::from_code(3), Allow);
        assert_eq!(AclPermission::from_code(2), Deny);
    }
}

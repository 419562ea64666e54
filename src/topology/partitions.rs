//! Source and target partition counts of a mirrored topic. Source partition `p` is
//! written to target partition `p`, always: a target with fewer partitions gets more
//! (MM2 does the same with CreatePartitions), and extra target partitions stay empty.
//! Partitions are never spread or folded onto others.

use std::fmt;

/// How a remote topic's partition count compares with its source topic's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionSync {
    InStep {
        partitions: i32,
    },
    /// The target needs CreatePartitions up to `to`; source partitions `from..to` cannot
    /// be mirrored until then.
    Grow {
        from: i32,
        to: i32,
    },
    /// The target has partitions the source does not: they receive nothing.
    TargetHasMore {
        source: i32,
        target: i32,
    },
}

impl PartitionSync {
    pub fn compare(source: i32, target: i32) -> Self {
        match source.cmp(&target) {
            std::cmp::Ordering::Equal => PartitionSync::InStep { partitions: source },
            std::cmp::Ordering::Greater => PartitionSync::Grow {
                from: target,
                to: source,
            },
            std::cmp::Ordering::Less => PartitionSync::TargetHasMore { source, target },
        }
    }

    /// The source partitions `0..n` that have a target partition of the same number now.
    pub fn mirrorable(&self) -> i32 {
        match *self {
            PartitionSync::InStep { partitions } => partitions,
            PartitionSync::Grow { from, .. } => from,
            PartitionSync::TargetHasMore { source, .. } => source,
        }
    }
}

/// A CreatePartitions to make: `topic` on the target goes from `from` to `to` partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionIncrease {
    pub topic: String,
    pub from: i32,
    pub to: i32,
}

/// The increases needed for `(remote topic, source count, target count)` triples, and
/// the topics whose target has more partitions than the source.
pub fn partition_increases(
    counts: &[(String, i32, i32)],
) -> (Vec<PartitionIncrease>, Vec<(String, PartitionSync)>) {
    let mut increases = Vec::new();
    let mut target_has_more = Vec::new();
    for (topic, source, target) in counts {
        match PartitionSync::compare(*source, *target) {
            PartitionSync::Grow { from, to } => increases.push(PartitionIncrease {
                topic: topic.clone(),
                from,
                to,
            }),
            more @ PartitionSync::TargetHasMore { .. } => {
                target_has_more.push((topic.clone(), more))
            }
            PartitionSync::InStep { .. } => {}
        }
    }
    (increases, target_has_more)
}

impl fmt::Display for PartitionSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PartitionSync::InStep { partitions } => write!(f, "{partitions} partitions on both"),
            PartitionSync::Grow { from, to } => write!(
                f,
                "the target has {from} partitions, the source {to}: adding partitions {from}..{} \
                 on the target",
                to - 1
            ),
            PartitionSync::TargetHasMore { source, target } => write!(
                f,
                "the target has {target} partitions, the source {source}: target partitions \
                 {source}..{} receive nothing (source partition p goes to target partition p)",
                target - 1
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_compare_into_three_cases() {
        assert_eq!(
            PartitionSync::compare(3, 3),
            PartitionSync::InStep { partitions: 3 }
        );
        assert_eq!(
            PartitionSync::compare(5, 2),
            PartitionSync::Grow { from: 2, to: 5 }
        );
        assert_eq!(
            PartitionSync::compare(2, 5),
            PartitionSync::TargetHasMore {
                source: 2,
                target: 5
            }
        );
    }

    #[test]
    fn only_partitions_with_a_same_numbered_target_are_mirrorable() {
        assert_eq!(PartitionSync::compare(5, 2).mirrorable(), 2);
        assert_eq!(PartitionSync::compare(2, 5).mirrorable(), 2);
        assert_eq!(PartitionSync::compare(4, 4).mirrorable(), 4);
    }

    #[test]
    fn increases_and_surplus_targets_are_listed_per_topic() {
        let counts = [
            ("A.grow".to_string(), 6, 3),
            ("A.same".to_string(), 2, 2),
            ("A.more".to_string(), 1, 4),
        ];
        let (increases, more) = partition_increases(&counts);
        assert_eq!(
            increases,
            vec![PartitionIncrease {
                topic: "A.grow".into(),
                from: 3,
                to: 6
            }]
        );
        assert_eq!(
            more,
            vec![(
                "A.more".to_string(),
                PartitionSync::TargetHasMore {
                    source: 1,
                    target: 4
                }
            )]
        );
    }

    #[test]
    fn reports_name_the_partitions_concerned() {
        let grow = PartitionSync::compare(5, 2).to_string();
        assert!(grow.contains("adding partitions 2..4"), "{grow}");
        let more = PartitionSync::compare(2, 5).to_string();
        assert!(
            more.contains("target partitions 2..4 receive nothing"),
            "{more}"
        );
    }
}

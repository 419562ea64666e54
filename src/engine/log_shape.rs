//! The bytes per offset of source partitions before any of their data is fetched: the
//! size of each partition's log on its leader (DescribeLogDirs) over the offsets it
//! holds (ListOffsets earliest and latest). Reading a partition ahead of itself needs that
//! figure to place fetches; learnt from a first answer instead, it costs that answer's
//! round trips in TCP slow start (seconds across 300 ms) before the other connections
//! get any work.

use std::collections::{BTreeMap, HashMap};

use futures::future::try_join_all;
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::wire::{ClusterClient, Purpose};

use super::error::EngineError;
use super::setup;

/// (topic, partition) on the source.
pub type PartitionKey = (String, i32);

/// Partitions smaller than this say little about their shape (a batch or two).
const MIN_SIZE_BYTES: i64 = 64 * 1024;

/// The size in bytes of each current (not future) replica log a DescribeLogDirs answer
/// lists, over all the broker's log directories; directories that answered with an
/// error are skipped.
pub fn partition_sizes(response: &DescribeLogDirsResponse) -> HashMap<PartitionKey, i64> {
    let mut sizes = HashMap::new();
    for dir in response
        .results
        .iter()
        .filter(|dir| dir.error_code.err().is_none())
    {
        for topic in &dir.topics {
            for partition in topic.partitions.iter().filter(|p| !p.is_future_key) {
                sizes.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.partition_size,
                );
            }
        }
    }
    sizes
}

/// Bytes per offset of each partition with a known size and offset range; a partition
/// too small, or empty, is left out (its first answer shows its shape soon enough).
pub fn bytes_per_offset(
    sizes: &HashMap<PartitionKey, i64>,
    earliest: &HashMap<PartitionKey, i64>,
    latest: &HashMap<PartitionKey, i64>,
) -> HashMap<PartitionKey, f64> {
    sizes
        .iter()
        .filter(|(_, &size)| size >= MIN_SIZE_BYTES)
        .filter_map(|(key, &size)| {
            let offsets = latest.get(key)? - earliest.get(key)?;
            (offsets > 0).then(|| (key.clone(), size as f64 / offsets as f64))
        })
        .collect()
}

/// Asks each leader for the sizes and offset ranges of the partitions it leads, all at
/// once: across a long link each request is a round trip.
pub async fn probe(
    source: &ClusterClient,
    by_leader: &HashMap<i32, Vec<PartitionKey>>,
) -> Result<HashMap<PartitionKey, f64>, EngineError> {
    let sizes = try_join_all(
        by_leader
            .iter()
            .map(|(&leader, partitions)| log_sizes(source, leader, partitions)),
    );
    let (sizes, earliest, latest) = tokio::try_join!(
        sizes,
        setup::list_offsets(source, by_leader, -2),
        setup::list_offsets(source, by_leader, -1),
    )?;
    let sizes: HashMap<PartitionKey, i64> = sizes.into_iter().flatten().collect();
    Ok(bytes_per_offset(&sizes, &earliest, &latest))
}

/// The log sizes of `partitions` on their leader `leader`.
async fn log_sizes(
    source: &ClusterClient,
    leader: i32,
    partitions: &[PartitionKey],
) -> Result<HashMap<PartitionKey, i64>, EngineError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let topics: Vec<DescribableLogDirTopic> = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    let request = DescribeLogDirsRequest::default().with_topics(Some(topics));
    let response = source.send(leader, Purpose::Admin, request).await?;
    if let Some(error) = response.error_code.err() {
        return Err(EngineError::LogDirs {
            cluster: source.name().to_string(),
            broker: leader,
            error,
        });
    }
    Ok(partition_sizes(&response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_log_dirs_response::{
        DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
    };

    fn partition(index: i32, size: i64, future: bool) -> DescribeLogDirsPartition {
        DescribeLogDirsPartition::default()
            .with_partition_index(index)
            .with_partition_size(size)
            .with_is_future_key(future)
    }

    fn dir(error_code: i16, partitions: Vec<DescribeLogDirsPartition>) -> DescribeLogDirsResult {
        DescribeLogDirsResult::default()
            .with_error_code(error_code)
            .with_topics(vec![DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(partitions)])
    }

    fn key(partition: i32) -> PartitionKey {
        ("orders".to_string(), partition)
    }

    #[test]
    fn sizes_come_from_current_replicas_in_directories_that_answered() {
        let response = DescribeLogDirsResponse::default().with_results(vec![
            dir(
                0,
                vec![partition(0, 10 << 20, false), partition(1, 1, true)],
            ),
            // A log directory that went offline (KAFKA_STORAGE_ERROR).
            dir(56, vec![partition(2, 99 << 20, false)]),
            dir(0, vec![partition(1, 20 << 20, false)]),
        ]);
        let sizes = partition_sizes(&response);
        assert_eq!(
            sizes,
            HashMap::from([(key(0), 10 << 20), (key(1), 20 << 20)])
        );
    }

    #[test]
    fn bytes_per_offset_needs_a_size_and_offsets_to_divide_it_by() {
        let sizes = HashMap::from([
            (key(0), 10 << 20),
            (key(1), 20 << 20),
            (key(2), 60_000),
            (key(3), 30 << 20),
        ]);
        let earliest = HashMap::from([(key(0), 100), (key(1), 5), (key(2), 0), (key(3), 7)]);
        let latest = HashMap::from([(key(0), 100 + 10 * 1024), (key(1), 5), (key(2), 10)]);
        let shapes = bytes_per_offset(&sizes, &earliest, &latest);
        assert_eq!(
            shapes,
            HashMap::from([(key(0), 1024.0)]),
            "partition 1 is empty, 2 too small, 3 has no log end"
        );
    }
}

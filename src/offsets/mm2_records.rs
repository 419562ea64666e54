//! The records of MM2's internal topics, byte for byte as MM2's `Heartbeat`,
//! `Checkpoint` and `OffsetSync` classes write them (Kafka protocol types,
//! big-endian; STRING = INT16 length + UTF-8, at most 32767 bytes). Pure.
//!
//! - heartbeats (`heartbeats`): key STRING sourceClusterAlias, STRING
//!   targetClusterAlias; value INT16 version 0, INT64 timestamp.
//! - checkpoints (`<source>.checkpoints.internal`): key STRING group, STRING topic
//!   (the target's name), INT32 partition; value INT16 version 0, INT64
//!   upstreamOffset, INT64 downstreamOffset, STRING metadata.
//! - offset syncs (`mm2-offset-syncs.<cluster>.internal`): key STRING topic (the
//!   source's name), INT32 partition; value INT64 upstreamOffset, INT64
//!   downstreamOffset, with no version.
//!
//! Decoding is strict where MM2's is lenient: a version other than 0 or bytes after
//! the last field are refused rather than read as version 0.

use super::error::Mm2RecordError;
use super::TopicPartition;

const VERSION: i16 = 0;

/// A liveness record of the flow `source_cluster_alias -> target_cluster_alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub source_cluster_alias: String,
    pub target_cluster_alias: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

/// A consumer group's position translated to the target: the group had committed
/// `upstream_offset` on the source partition mirrored to `topic_partition`, where
/// it resumes at `downstream_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub group: String,
    /// The partition on the target.
    pub topic_partition: TopicPartition,
    pub upstream_offset: i64,
    pub downstream_offset: i64,
    /// The metadata the group committed with its offset.
    pub metadata: String,
}

/// A point of the offset map of a source partition: its record at `upstream_offset`
/// is the target's record at `downstream_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSync {
    /// The partition on the source.
    pub topic_partition: TopicPartition,
    pub upstream_offset: i64,
    pub downstream_offset: i64,
}

impl Heartbeat {
    const RECORD: &'static str = "heartbeat";

    pub fn encode_key(&self) -> Result<Vec<u8>, Mm2RecordError> {
        let mut out = Writer::new(Self::RECORD);
        out.string("sourceClusterAlias", &self.source_cluster_alias)?;
        out.string("targetClusterAlias", &self.target_cluster_alias)?;
        Ok(out.bytes)
    }

    pub fn encode_value(&self) -> Vec<u8> {
        let mut out = Writer::new(Self::RECORD);
        out.i16(VERSION);
        out.i64(self.timestamp);
        out.bytes
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, Mm2RecordError> {
        let mut key = Reader::new(Self::RECORD, "key", key);
        let source_cluster_alias = key.string("sourceClusterAlias")?;
        let target_cluster_alias = key.string("targetClusterAlias")?;
        key.finish()?;
        let mut value = Reader::new(Self::RECORD, "value", value);
        value.version()?;
        let timestamp = value.i64("timestamp")?;
        value.finish()?;
        Ok(Heartbeat {
            source_cluster_alias,
            target_cluster_alias,
            timestamp,
        })
    }
}

impl Checkpoint {
    const RECORD: &'static str = "checkpoint";

    pub fn encode_key(&self) -> Result<Vec<u8>, Mm2RecordError> {
        let mut out = Writer::new(Self::RECORD);
        out.string("group", &self.group)?;
        out.string("topic", &self.topic_partition.topic)?;
        out.i32(self.topic_partition.partition);
        Ok(out.bytes)
    }

    pub fn encode_value(&self) -> Result<Vec<u8>, Mm2RecordError> {
        let mut out = Writer::new(Self::RECORD);
        out.i16(VERSION);
        out.i64(self.upstream_offset);
        out.i64(self.downstream_offset);
        out.string("metadata", &self.metadata)?;
        Ok(out.bytes)
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, Mm2RecordError> {
        let mut key = Reader::new(Self::RECORD, "key", key);
        let group = key.string("group")?;
        let topic = key.string("topic")?;
        let partition = key.i32("partition")?;
        key.finish()?;
        let mut value = Reader::new(Self::RECORD, "value", value);
        value.version()?;
        let upstream_offset = value.i64("upstreamOffset")?;
        let downstream_offset = value.i64("offset")?;
        let metadata = value.string("metadata")?;
        value.finish()?;
        Ok(Checkpoint {
            group,
            topic_partition: TopicPartition { topic, partition },
            upstream_offset,
            downstream_offset,
            metadata,
        })
    }
}

impl OffsetSync {
    const RECORD: &'static str = "offset sync";

    pub fn encode_key(&self) -> Result<Vec<u8>, Mm2RecordError> {
        let mut out = Writer::new(Self::RECORD);
        out.string("topic", &self.topic_partition.topic)?;
        out.i32(self.topic_partition.partition);
        Ok(out.bytes)
    }

    pub fn encode_value(&self) -> Vec<u8> {
        let mut out = Writer::new(Self::RECORD);
        out.i64(self.upstream_offset);
        out.i64(self.downstream_offset);
        out.bytes
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, Mm2RecordError> {
        let mut key = Reader::new(Self::RECORD, "key", key);
        let topic = key.string("topic")?;
        let partition = key.i32("partition")?;
        key.finish()?;
        let mut value = Reader::new(Self::RECORD, "value", value);
        let upstream_offset = value.i64("upstreamOffset")?;
        let downstream_offset = value.i64("offset")?;
        value.finish()?;
        Ok(OffsetSync {
            topic_partition: TopicPartition { topic, partition },
            upstream_offset,
            downstream_offset,
        })
    }
}

struct Writer {
    record: &'static str,
    bytes: Vec<u8>,
}

impl Writer {
    fn new(record: &'static str) -> Self {
        Writer {
            record,
            bytes: Vec::with_capacity(32),
        }
    }

    fn i16(&mut self, value: i16) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    fn i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    fn string(&mut self, field: &'static str, value: &str) -> Result<(), Mm2RecordError> {
        let length = i16::try_from(value.len()).map_err(|_| Mm2RecordError::StringTooLong {
            record: self.record,
            field,
            length: value.len(),
        })?;
        self.i16(length);
        self.bytes.extend_from_slice(value.as_bytes());
        Ok(())
    }
}

struct Reader<'a> {
    record: &'static str,
    part: &'static str,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(record: &'static str, part: &'static str, bytes: &'a [u8]) -> Self {
        Reader {
            record,
            part,
            bytes,
        }
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Mm2RecordError> {
        let (head, rest) =
            self.bytes
                .split_first_chunk::<N>()
                .ok_or(Mm2RecordError::Truncated {
                    record: self.record,
                    field,
                })?;
        self.bytes = rest;
        Ok(*head)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, Mm2RecordError> {
        self.take(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, Mm2RecordError> {
        self.take(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, Mm2RecordError> {
        self.take(field).map(i64::from_be_bytes)
    }

    fn version(&mut self) -> Result<(), Mm2RecordError> {
        match self.i16("version")? {
            VERSION => Ok(()),
            version => Err(Mm2RecordError::UnsupportedVersion {
                record: self.record,
                version,
            }),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, Mm2RecordError> {
        let length = self.i16(field)?;
        let length = usize::try_from(length).map_err(|_| Mm2RecordError::NegativeLength {
            record: self.record,
            field,
            length,
        })?;
        if self.bytes.len() < length {
            return Err(Mm2RecordError::Truncated {
                record: self.record,
                field,
            });
        }
        let (text, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        let text = std::str::from_utf8(text).map_err(|source| Mm2RecordError::InvalidUtf8 {
            record: self.record,
            field,
            source,
        })?;
        Ok(text.to_owned())
    }

    fn finish(self) -> Result<(), Mm2RecordError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Mm2RecordError::TrailingBytes {
                record: self.record,
                part: self.part,
                count: self.bytes.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::test_fixtures::mm2_fixture;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    #[test]
    fn heartbeats_match_mm2s_bytes() {
        let cases = [
            (
                "heartbeat",
                Heartbeat {
                    source_cluster_alias: "A".into(),
                    target_cluster_alias: "B".into(),
                    timestamp: 1_700_000_000_123,
                },
            ),
            (
                "heartbeat_long_aliases",
                Heartbeat {
                    source_cluster_alias: "us-west-1".into(),
                    target_cluster_alias: "eu-central-é".into(),
                    timestamp: 0,
                },
            ),
        ];
        for (name, heartbeat) in cases {
            let (key, value) = mm2_fixture(name);
            assert_eq!(heartbeat.encode_key().unwrap(), key, "{name} key");
            assert_eq!(heartbeat.encode_value(), value, "{name} value");
            assert_eq!(
                Heartbeat::decode(&key, &value).unwrap(),
                heartbeat,
                "{name}"
            );
        }
    }

    #[test]
    fn checkpoints_match_mm2s_bytes() {
        let cases = [
            (
                "checkpoint",
                Checkpoint {
                    group: "orders-app".into(),
                    topic_partition: tp("A.orders", 3),
                    upstream_offset: 1042,
                    downstream_offset: 977,
                    metadata: String::new(),
                },
            ),
            (
                "checkpoint_metadata",
                Checkpoint {
                    group: "g".into(),
                    topic_partition: tp("t", 0),
                    upstream_offset: 0,
                    downstream_offset: 0,
                    metadata: "commit by ünïcode".into(),
                },
            ),
            (
                "checkpoint_large",
                Checkpoint {
                    group: "group".into(),
                    topic_partition: tp("topic", i32::MAX),
                    upstream_offset: i64::MAX,
                    downstream_offset: 1 << 40,
                    metadata: "m".into(),
                },
            ),
        ];
        for (name, checkpoint) in cases {
            let (key, value) = mm2_fixture(name);
            assert_eq!(checkpoint.encode_key().unwrap(), key, "{name} key");
            assert_eq!(checkpoint.encode_value().unwrap(), value, "{name} value");
            assert_eq!(
                Checkpoint::decode(&key, &value).unwrap(),
                checkpoint,
                "{name}"
            );
        }
    }

    #[test]
    fn offset_syncs_match_mm2s_bytes() {
        let cases = [
            (
                "offset_sync",
                OffsetSync {
                    topic_partition: tp("orders", 3),
                    upstream_offset: 1042,
                    downstream_offset: 977,
                },
            ),
            (
                "offset_sync_zero",
                OffsetSync {
                    topic_partition: tp("t", 0),
                    upstream_offset: 0,
                    downstream_offset: 0,
                },
            ),
        ];
        for (name, sync) in cases {
            let (key, value) = mm2_fixture(name);
            assert_eq!(sync.encode_key().unwrap(), key, "{name} key");
            assert_eq!(sync.encode_value(), value, "{name} value");
            assert_eq!(OffsetSync::decode(&key, &value).unwrap(), sync, "{name}");
        }
    }

    #[test]
    fn damaged_records_are_refused() {
        let (key, value) = mm2_fixture("checkpoint");
        for cut in 0..key.len() {
            assert!(
                Checkpoint::decode(&key[..cut], &value).is_err(),
                "key cut at {cut}"
            );
        }
        for cut in 0..value.len() {
            assert!(
                Checkpoint::decode(&key, &value[..cut]).is_err(),
                "value cut at {cut}"
            );
        }
        let mut version_one = value.clone();
        version_one[1] = 1;
        assert!(matches!(
            Checkpoint::decode(&key, &version_one),
            Err(Mm2RecordError::UnsupportedVersion { version: 1, .. })
        ));
        let mut longer = value.clone();
        longer.push(0);
        assert!(matches!(
            Checkpoint::decode(&key, &longer),
            Err(Mm2RecordError::TrailingBytes {
                part: "value",
                count: 1,
                ..
            })
        ));
        assert!(matches!(
            OffsetSync::decode(&[0xff, 0xff, 0, 0, 0, 0], &[0; 16]),
            Err(Mm2RecordError::NegativeLength { length: -1, .. })
        ));
        assert!(matches!(
            Heartbeat::decode(&[0, 1, 0xc3, 0, 0], &[0; 10]),
            Err(Mm2RecordError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn strings_longer_than_mm2_allows_are_refused() {
        let sync = OffsetSync {
            topic_partition: tp(&"t".repeat(32_768), 0),
            upstream_offset: 0,
            downstream_offset: 0,
        };
        assert!(matches!(
            sync.encode_key(),
            Err(Mm2RecordError::StringTooLong { length: 32_768, .. })
        ));
        let longest = OffsetSync {
            topic_partition: tp(&"t".repeat(32_767), 0),
            ..sync
        };
        assert_eq!(longest.encode_key().unwrap()[..2], [0x7f, 0xff]);
    }
}

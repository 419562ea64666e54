//! MM2's own progress, as Kafka Connect keeps it in MM2's offsets topic
//! (`mm2-offsets.<source>.internal` on the target by default), so strait can take
//! over a flow where MM2 stopped. Pure.
//!
//! Connect's worker writes, with its internal JsonConverter (schemas disabled), the
//! key `[connector name, source partition]` and the value `source offset`. For
//! MirrorSourceConnector the source partition is `{cluster, partition, topic}` (a
//! Java HashMap, which iterates those three keys in that order) and the offset is
//! `{"offset": last replicated source offset}`. Connect finds a record again by the
//! exact key bytes and the topic is compacted on them, so the key is written the way
//! Jackson writes it: no spaces, `\b \t \n \f \r \" \\` escaped, other control
//! characters as `\u00XX` with upper-case hex, everything else as UTF-8.

use std::fmt::Write as _;

use serde_json::Value;

use super::error::ConnectOffsetError;
use super::TopicPartition;

/// The name MM2's dedicated mode gives its source connector (the class's simple
/// name); under a Connect cluster the user names it.
pub const MIRROR_SOURCE_CONNECTOR: &str = "MirrorSourceConnector";

/// MM2's progress on one source partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mm2SourceOffset {
    pub connector: String,
    /// The source cluster's alias.
    pub cluster: String,
    /// The partition on the source.
    pub topic_partition: TopicPartition,
    /// The last source offset MM2 replicated; None when the offset was cleared.
    pub last_replicated: Option<i64>,
}

impl Mm2SourceOffset {
    pub fn encode_key(&self) -> Vec<u8> {
        let mut key = String::from("[");
        push_json_string(&mut key, &self.connector);
        key.push_str(",{\"cluster\":");
        push_json_string(&mut key, &self.cluster);
        write!(
            key,
            ",\"partition\":{},\"topic\":",
            self.topic_partition.partition
        )
        .expect("writing to a String does not fail");
        push_json_string(&mut key, &self.topic_partition.topic);
        key.push_str("}]");
        key.into_bytes()
    }

    /// None is a tombstone: the record that clears the offset.
    pub fn encode_value(&self) -> Option<Vec<u8>> {
        self.last_replicated
            .map(|offset| format!("{{\"offset\":{offset}}}").into_bytes())
    }

    /// Reads a record of MM2's offsets topic (`value` None for a tombstone). Records
    /// of MM2's other connectors (checkpoints, heartbeats), whose source partitions
    /// have other keys, give `Ok(None)`.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Self>, ConnectOffsetError> {
        const KEY_SHAPE: &str = "a JSON array of a connector name and a source partition object";
        let key_shape = || ConnectOffsetError::Shape {
            part: "key",
            expected: KEY_SHAPE,
        };
        let key = parse("key", key)?;
        let [Value::String(connector), Value::Object(partition)] =
            key.as_array().map(Vec::as_slice).unwrap_or_default()
        else {
            return Err(key_shape());
        };
        let (Some(cluster), Some(topic), Some(number)) = (
            partition.get("cluster"),
            partition.get("topic"),
            partition.get("partition"),
        ) else {
            return Ok(None);
        };
        let (Value::String(cluster), Value::String(topic)) = (cluster, topic) else {
            return Err(key_shape());
        };
        let partition = number
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(key_shape)?;
        let last_replicated = match value {
            None => None,
            Some(value) => last_replicated(&parse("value", value)?)?,
        };
        Ok(Some(Mm2SourceOffset {
            connector: connector.clone(),
            cluster: cluster.clone(),
            topic_partition: TopicPartition {
                topic: topic.clone(),
                partition,
            },
            last_replicated,
        }))
    }

    /// Where MM2 would resume: after the last offset it replicated (MM2 treats a
    /// negative offset as none).
    pub fn resume_at(&self) -> Option<i64> {
        self.last_replicated
            .filter(|&offset| offset >= 0)
            .and_then(|offset| offset.checked_add(1))
    }
}

fn parse(part: &'static str, bytes: &[u8]) -> Result<Value, ConnectOffsetError> {
    serde_json::from_slice(bytes).map_err(|source| ConnectOffsetError::Json { part, source })
}

/// MM2 reads a missing or null `offset` as no offset.
fn last_replicated(value: &Value) -> Result<Option<i64>, ConnectOffsetError> {
    let shape = ConnectOffsetError::Shape {
        part: "value",
        expected: "null or an object with an integer \"offset\"",
    };
    match value {
        Value::Null => Ok(None),
        Value::Object(fields) => match fields.get("offset") {
            None | Some(Value::Null) => Ok(None),
            Some(offset) => offset.as_i64().map(Some).ok_or(shape),
        },
        _ => Err(shape),
    }
}

fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                write!(out, "\\u{:04X}", u32::from(c)).expect("writing to a String does not fail")
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::test_fixtures::mm2_fixture;

    fn progress(cluster: &str, topic: &str, partition: i32, last: i64) -> Mm2SourceOffset {
        Mm2SourceOffset {
            connector: MIRROR_SOURCE_CONNECTOR.into(),
            cluster: cluster.into(),
            topic_partition: TopicPartition {
                topic: topic.into(),
                partition,
            },
            last_replicated: Some(last),
        }
    }

    #[test]
    fn records_match_what_connect_writes_for_mm2() {
        let cases = [
            ("connect_offset", progress("A", "orders", 0, 41)),
            (
                "connect_offset_large",
                progress("source", "my.topic-name_1", 17, 9_000_000_000),
            ),
            (
                "connect_offset_escapes",
                progress("a\"b\\c\td\u{1}\u{1f}\u{7f}\n\u{8}\u{c}\ré", "t", 2, 0),
            ),
        ];
        for (name, record) in cases {
            let (key, value) = mm2_fixture(name);
            assert_eq!(record.encode_key(), key, "{name} key");
            assert_eq!(record.encode_value(), Some(value.clone()), "{name} value");
            assert_eq!(
                Mm2SourceOffset::decode(&key, Some(&value)).unwrap(),
                Some(record),
                "{name}"
            );
        }
    }

    #[test]
    fn mm2_resumes_after_the_last_replicated_offset() {
        let (key, value) = mm2_fixture("connect_offset");
        let record = Mm2SourceOffset::decode(&key, Some(&value))
            .unwrap()
            .unwrap();
        assert_eq!(record.resume_at(), Some(42));
        let cleared = Mm2SourceOffset::decode(&key, None).unwrap().unwrap();
        assert_eq!(cleared.last_replicated, None);
        assert_eq!(cleared.resume_at(), None);
        assert_eq!(cleared.encode_value(), None);
        assert_eq!(progress("A", "t", 0, -1).resume_at(), None);
    }

    #[test]
    fn key_order_and_spacing_do_not_matter_when_reading() {
        let key = br#"[ "mm2-source", { "topic": "t", "partition": 3, "cluster": "west" } ]"#;
        let record = Mm2SourceOffset::decode(key, Some(br#"{"offset": 7}"#))
            .unwrap()
            .unwrap();
        assert_eq!(record.connector, "mm2-source");
        assert_eq!(record.cluster, "west");
        assert_eq!(record.topic_partition.partition, 3);
        assert_eq!(record.last_replicated, Some(7));
        let no_offset = Mm2SourceOffset::decode(key, Some(b"{}")).unwrap().unwrap();
        assert_eq!(no_offset.last_replicated, None);
    }

    #[test]
    fn records_of_mm2s_other_connectors_are_not_progress() {
        let checkpoint_key =
            br#"["MirrorCheckpointConnector",{"partition":0,"topic":"t","group":"g"}]"#;
        assert_eq!(
            Mm2SourceOffset::decode(checkpoint_key, Some(br#"{"offset":0}"#)).unwrap(),
            None
        );
        let heartbeat_key =
            br#"["MirrorHeartbeatConnector",{"sourceClusterAlias":"A","targetClusterAlias":"B"}]"#;
        assert_eq!(Mm2SourceOffset::decode(heartbeat_key, None).unwrap(), None);
    }

    #[test]
    fn malformed_records_are_refused() {
        let key = br#"["MirrorSourceConnector",{"cluster":"A","partition":0,"topic":"t"}]"#;
        assert!(matches!(
            Mm2SourceOffset::decode(b"not json", None),
            Err(ConnectOffsetError::Json { part: "key", .. })
        ));
        for bad_key in [
            &br#"{"cluster":"A"}"#[..],
            br#"["MirrorSourceConnector"]"#,
            br#"["MirrorSourceConnector",{"cluster":1,"partition":0,"topic":"t"}]"#,
            br#"["MirrorSourceConnector",{"cluster":"A","partition":4294967296,"topic":"t"}]"#,
        ] {
            assert!(
                matches!(
                    Mm2SourceOffset::decode(bad_key, None),
                    Err(ConnectOffsetError::Shape { part: "key", .. })
                ),
                "{}",
                String::from_utf8_lossy(bad_key)
            );
        }
        assert!(matches!(
            Mm2SourceOffset::decode(key, Some(br#"{"offset":"7"}"#)),
            Err(ConnectOffsetError::Shape { part: "value", .. })
        ));
        assert!(matches!(
            Mm2SourceOffset::decode(key, Some(b"[7]")),
            Err(ConnectOffsetError::Shape { part: "value", .. })
        ));
    }
}

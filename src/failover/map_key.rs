//! The key of a partition's offset map in strait's offset-maps topic
//! (`strait.offset-maps.<source>.internal` on the target): `<source topic>:<partition>`
//! (topic names never hold a colon). Pure.

use crate::offsets::TopicPartition;

/// The compacted topic on the target holding the offset maps of the flows from
/// `source_alias`, one record per source partition, rewritten on each progress commit.
pub fn offset_maps_topic(source_alias: &str) -> String {
    format!("strait.offset-maps.{source_alias}.internal")
}

pub fn encode_map_key(partition: &TopicPartition) -> Vec<u8> {
    format!("{}:{}", partition.topic, partition.partition).into_bytes()
}

/// None for a key not written by [`encode_map_key`].
pub fn decode_map_key(key: &[u8]) -> Option<TopicPartition> {
    let text = std::str::from_utf8(key).ok()?;
    let (topic, partition) = text.rsplit_once(':')?;
    let partition = partition.parse().ok()?;
    (!topic.is_empty()).then(|| TopicPartition {
        topic: topic.to_string(),
        partition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let partition = TopicPartition {
            topic: "orders.v2_eu-1".into(),
            partition: 17,
        };
        let key = encode_map_key(&partition);
        assert_eq!(key, b"orders.v2_eu-1:17");
        assert_eq!(decode_map_key(&key), Some(partition));
    }

    #[test]
    fn foreign_keys_are_refused() {
        assert_eq!(decode_map_key(b"orders"), None);
        assert_eq!(decode_map_key(b":3"), None);
        assert_eq!(decode_map_key(b"orders:x"), None);
        assert_eq!(decode_map_key(&[0xff, b':', b'1']), None);
    }
}

//! Produce request encoding for the hot path, free of I/O.
//!
//! kafka-protocol's encoder copies every `records` field into one buffer. Here the small
//! fields go into one scratch buffer and each batch's header and payload `Bytes` are handed
//! on as separate chunks, so a vectored write sends the fetched payload without a copy.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use uuid::Uuid;

use super::frame::{put_request_header, SIZE_PREFIX_LEN};

/// Produce versions this encoder writes: v3 (first RecordBatch v2 version) to v13.
pub const PRODUCE_VERSIONS: Range<i16> = 3..14;

/// From this version on the request uses compact strings/arrays and tagged fields.
const FIRST_FLEXIBLE_VERSION: i16 = 9;
/// From this version on topics are addressed by id instead of name.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

/// The batches of one topic in a produce request.
#[derive(Debug, Clone)]
pub struct ProduceTopicBatches {
    /// Topic name, used up to v12.
    pub name: String,
    /// Topic id on the target cluster, used from v13.
    pub topic_id: Uuid,
    /// Partition index and the single batch for it, as (61-byte header, payload) chunks.
    pub partitions: Vec<(i32, [Bytes; 2])>,
}

/// Encodes a whole produce request frame (size prefix included) as a list of chunks to be
/// written in order. Batch chunks are the caller's `Bytes`, passed through untouched.
///
/// # Panics
/// When `version` is outside [`PRODUCE_VERSIONS`] (negotiation never yields such a version),
/// or when a length does not fit the wire format's i32.
pub fn encode_produce_request(
    version: i16,
    correlation_id: i32,
    client_id: &str,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    topics: &[ProduceTopicBatches],
) -> Vec<Bytes> {
    assert!(
        PRODUCE_VERSIONS.contains(&version),
        "Produce v{version} is not encodable"
    );
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    let mut out = ChunkList::default();
    let scratch = &mut out.scratch;

    scratch.put_i32(0); // frame size, filled in at the end
    put_request_header(scratch, ApiKey::Produce, version, correlation_id, client_id)
        .expect("a produce request header always encodes");
    put_nullable_string(scratch, transactional_id, flexible);
    scratch.put_i16(acks);
    scratch.put_i32(timeout_ms);
    put_array_len(scratch, topics.len(), flexible);
    for topic in topics {
        let scratch = &mut out.scratch;
        if version >= FIRST_TOPIC_ID_VERSION {
            scratch.put_slice(topic.topic_id.as_bytes());
        } else {
            put_nullable_string(scratch, Some(&topic.name), flexible);
        }
        put_array_len(scratch, topic.partitions.len(), flexible);
        for (index, batch) in &topic.partitions {
            let records_len: usize = batch.iter().map(Bytes::len).sum();
            let scratch = &mut out.scratch;
            scratch.put_i32(*index);
            if flexible {
                put_unsigned_varint(scratch, len_i32(records_len + 1) as u32);
            } else {
                scratch.put_i32(len_i32(records_len));
            }
            for chunk in batch {
                out.push_batch_chunk(chunk);
            }
            if flexible {
                out.scratch.put_u8(0); // no tagged fields in the partition
            }
        }
        if flexible {
            out.scratch.put_u8(0); // no tagged fields in the topic
        }
    }
    if flexible {
        out.scratch.put_u8(0); // no tagged fields in the request
    }
    out.finish()
}

/// Collects scratch ranges and batch chunks in wire order, then freezes the scratch once so
/// the small pieces share one allocation.
#[derive(Default)]
struct ChunkList {
    scratch: BytesMut,
    /// Where scratch bytes stop to let a batch chunk in: (scratch offset, batch chunk).
    batch_chunks: Vec<(usize, Bytes)>,
}

impl ChunkList {
    fn push_batch_chunk(&mut self, chunk: &Bytes) {
        if !chunk.is_empty() {
            self.batch_chunks.push((self.scratch.len(), chunk.clone()));
        }
    }

    fn finish(mut self) -> Vec<Bytes> {
        let batch_bytes: usize = self.batch_chunks.iter().map(|(_, c)| c.len()).sum();
        let size = len_i32(self.scratch.len() + batch_bytes - SIZE_PREFIX_LEN);
        self.scratch[..SIZE_PREFIX_LEN].copy_from_slice(&size.to_be_bytes());
        let scratch = self.scratch.freeze();

        let mut chunks = Vec::with_capacity(self.batch_chunks.len() * 2 + 1);
        let mut start = 0;
        for (at, chunk) in self.batch_chunks {
            if at > start {
                chunks.push(scratch.slice(start..at));
            }
            chunks.push(chunk);
            start = at;
        }
        if scratch.len() > start {
            chunks.push(scratch.slice(start..));
        }
        chunks
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("produce request over 2 GiB")
}

fn put_array_len(buf: &mut BytesMut, len: usize, flexible: bool) {
    if flexible {
        put_unsigned_varint(buf, len_i32(len + 1) as u32);
    } else {
        buf.put_i32(len_i32(len));
    }
}

fn put_nullable_string(buf: &mut BytesMut, value: Option<&str>, flexible: bool) {
    match (value, flexible) {
        (None, true) => buf.put_u8(0),
        (None, false) => buf.put_i16(-1),
        (Some(s), true) => {
            put_unsigned_varint(buf, len_i32(s.len() + 1) as u32);
            buf.put_slice(s.as_bytes());
        }
        (Some(s), false) => {
            buf.put_i16(i16::try_from(s.len()).expect("string over 32 KiB in a produce request"));
            buf.put_slice(s.as_bytes());
        }
    }
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use kafka_protocol::protocol::StrBytes;

    fn batch(tag: u8, payload_len: usize) -> [Bytes; 2] {
        let header: Vec<u8> = (0..61).map(|i| i as u8 ^ tag).collect();
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8 ^ tag).collect();
        [Bytes::from(header), Bytes::from(payload)]
    }

    fn sample_topics() -> Vec<ProduceTopicBatches> {
        vec![
            ProduceTopicBatches {
                name: "orders".into(),
                topic_id: Uuid::from_bytes([0x11; 16]),
                partitions: vec![(0, batch(1, 300)), (7, batch(2, 5))],
            },
            ProduceTopicBatches {
                // Long enough that compact lengths take two varint bytes.
                name: "t".repeat(200),
                topic_id: Uuid::from_bytes([0x22; 16]),
                partitions: vec![(2, batch(3, 1000))],
            },
        ]
    }

    /// The same request through kafka-protocol's own encoder, framed the same way.
    fn reference_frame(
        version: i16,
        correlation_id: i32,
        transactional_id: Option<&str>,
        topics: &[ProduceTopicBatches],
    ) -> Vec<u8> {
        let request = ProduceRequest::default()
            .with_transactional_id(
                transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string()))),
            )
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(
                topics
                    .iter()
                    .map(|t| {
                        let mut data = TopicProduceData::default().with_partition_data(
                            t.partitions
                                .iter()
                                .map(|(index, [h, p])| {
                                    let mut records = h.to_vec();
                                    records.extend_from_slice(p);
                                    PartitionProduceData::default()
                                        .with_index(*index)
                                        .with_records(Some(records.into()))
                                })
                                .collect(),
                        );
                        if version >= 13 {
                            data.topic_id = t.topic_id;
                        } else {
                            data.name = TopicName(StrBytes::from_string(t.name.clone()));
                        }
                        data
                    })
                    .collect(),
            );
        super::super::frame::encode_request(
            ApiKey::Produce,
            version,
            correlation_id,
            "strait-test",
            &request,
        )
        .unwrap()
        .to_vec()
    }

    #[test]
    fn matches_kafka_protocol_byte_for_byte() {
        let topics = sample_topics();
        for version in [3, 7, 8, 9, 11, 12, 13] {
            for transactional_id in [None, Some("txn-1")] {
                let ours = encode_produce_request(
                    version,
                    -12345,
                    "strait-test",
                    transactional_id,
                    -1,
                    30_000,
                    &topics,
                );
                let ours: Vec<u8> = ours.iter().flat_map(|c| c.iter().copied()).collect();
                assert_eq!(
                    ours,
                    reference_frame(version, -12345, transactional_id, &topics),
                    "v{version} transactional_id={transactional_id:?}"
                );
            }
        }
    }

    #[test]
    fn empty_request_matches_too() {
        for version in [3, 9, 13] {
            let ours = encode_produce_request(version, 1, "strait-test", None, -1, 30_000, &[]);
            let ours: Vec<u8> = ours.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(ours, reference_frame(version, 1, None, &[]), "v{version}");
        }
    }

    #[test]
    fn batch_chunks_are_passed_through_without_copy() {
        let topics = sample_topics();
        let chunks = encode_produce_request(13, 1, "c", None, -1, 1000, &topics);
        for topic in &topics {
            for (_, [header, payload]) in &topic.partitions {
                for original in [header, payload] {
                    assert!(
                        chunks
                            .iter()
                            .any(|c| c.as_ptr() == original.as_ptr() && c.len() == original.len()),
                        "a batch chunk was copied"
                    );
                }
            }
        }
    }
}

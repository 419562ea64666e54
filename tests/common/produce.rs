//! Writing records with librdkafka: plain or in transactions that commit or abort.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header as RdHeader, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::cluster::Cluster;
use super::records::{NewRecord, Record};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Codec of the record batches the producer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The name Kafka and librdkafka use in `compression.type`.
    pub fn config_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Producer settings that shape the batches on the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceOptions {
    pub compression: Compression,
    /// How long the producer waits to fill a batch.
    pub linger_ms: u32,
    /// Largest batch in bytes (librdkafka `batch.size`).
    pub batch_size: u32,
    /// Most records per batch (librdkafka `batch.num.messages`).
    pub batch_records: u32,
    /// Idempotent producer (producer id and sequence numbers in every batch), as Kafka's
    /// own clients do by default.
    pub idempotent: bool,
    /// Largest request (and so record) the producer sends: librdkafka's
    /// `message.max.bytes`, which must cover records near a topic's max.message.bytes.
    pub max_request_bytes: u32,
}

impl Default for ProduceOptions {
    fn default() -> Self {
        ProduceOptions {
            compression: Compression::None,
            linger_ms: 5,
            batch_size: 1_000_000,
            batch_records: 10_000,
            idempotent: true,
            max_request_bytes: 1_000_000,
        }
    }
}

/// Writes the records in order and returns them as stored (partition, offset and
/// timestamp from the broker's acknowledgements), in the same order. Panics if any
/// record is not acknowledged.
pub fn produce(
    cluster: Cluster,
    topic: &str,
    records: &[NewRecord],
    options: &ProduceOptions,
) -> Vec<Record> {
    let producer = create_producer(cluster, options, None);
    send_all(&producer, topic, records);
    collect_deliveries(&producer, cluster, topic, records)
}

/// One transaction of a scripted sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnStep {
    Commit(Vec<NewRecord>),
    Abort(Vec<NewRecord>),
}

/// Records of committed and of aborted transactions, as stored (aborted records occupy
/// offsets too; read_committed readers skip them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnOutcome {
    pub committed: Vec<Record>,
    pub aborted: Vec<Record>,
}

/// Runs the transactions in order with one transactional producer. Every record of an
/// aborted transaction is written before the abort, so the log holds it.
pub fn produce_transactions(
    cluster: Cluster,
    topic: &str,
    steps: &[TxnStep],
    options: &ProduceOptions,
) -> TxnOutcome {
    static TXN_COUNTER: AtomicU32 = AtomicU32::new(0);
    let transactional_id = format!(
        "{topic}-txn-{}",
        TXN_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let producer = create_producer(cluster, options, Some(&transactional_id));
    producer
        .init_transactions(DELIVERY_TIMEOUT)
        .unwrap_or_else(|e| panic!("init_transactions on {cluster:?}: {e}"));
    let mut outcome = TxnOutcome::default();
    for (index, step) in steps.iter().enumerate() {
        let (records, commit) = match step {
            TxnStep::Commit(records) => (records, true),
            TxnStep::Abort(records) => (records, false),
        };
        producer
            .begin_transaction()
            .unwrap_or_else(|e| panic!("begin transaction #{index}: {e}"));
        send_all(&producer, topic, records);
        let stored = collect_deliveries(&producer, cluster, topic, records);
        if commit {
            producer
                .commit_transaction(DELIVERY_TIMEOUT)
                .unwrap_or_else(|e| panic!("commit transaction #{index} on {cluster:?}: {e}"));
            outcome.committed.extend(stored);
        } else {
            producer
                .abort_transaction(DELIVERY_TIMEOUT)
                .unwrap_or_else(|e| panic!("abort transaction #{index} on {cluster:?}: {e}"));
            outcome.aborted.extend(stored);
        }
    }
    outcome
}

type Delivered = Result<(i32, i64, Timestamp), String>;

/// Collects delivery reports by the index of the record in the caller's slice.
#[derive(Default)]
struct Deliveries {
    by_index: Mutex<HashMap<usize, Delivered>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let delivered = match result {
            Ok(message) => Ok((message.partition(), message.offset(), message.timestamp())),
            Err((error, _)) => Err(error.to_string()),
        };
        self.by_index
            .lock()
            .expect("delivery map")
            .insert(index, delivered);
    }
}

fn create_producer(
    cluster: Cluster,
    options: &ProduceOptions,
    transactional_id: Option<&str>,
) -> BaseProducer<Deliveries> {
    let mut config = cluster.client_config();
    config
        .set("compression.type", options.compression.config_name())
        .set("linger.ms", options.linger_ms.to_string())
        .set("batch.size", options.batch_size.to_string())
        .set("batch.num.messages", options.batch_records.to_string())
        .set("enable.idempotence", options.idempotent.to_string())
        .set("message.max.bytes", options.max_request_bytes.to_string())
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        );
    if let Some(id) = transactional_id {
        config.set("transactional.id", id);
    }
    config
        .create_with_context(Deliveries::default())
        .unwrap_or_else(|e| panic!("producer for {cluster:?}: {e}"))
}

fn send_all(producer: &BaseProducer<Deliveries>, topic: &str, records: &[NewRecord]) {
    producer
        .context()
        .by_index
        .lock()
        .expect("delivery map")
        .clear();
    for (index, record) in records.iter().enumerate() {
        let mut message = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, index);
        message.partition = record.partition;
        message.key = record.key.as_deref();
        message.payload = record.value.as_deref();
        message.timestamp = record.timestamp;
        if !record.headers.is_empty() {
            let headers = record.headers.iter().fold(
                OwnedHeaders::new_with_capacity(record.headers.len()),
                |headers, (key, value)| {
                    headers.insert(RdHeader {
                        key,
                        value: value.as_deref(),
                    })
                },
            );
            message.headers = Some(headers);
        }
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), unsent)) => {
                    message = unsent;
                    producer.poll(Duration::from_millis(50));
                }
                Err((error, _)) => panic!("enqueueing record #{index} for {topic}: {error}"),
            }
        }
    }
    producer
        .flush(DELIVERY_TIMEOUT)
        .unwrap_or_else(|e| panic!("flushing records to {topic}: {e}"));
}

fn collect_deliveries(
    producer: &BaseProducer<Deliveries>,
    cluster: Cluster,
    topic: &str,
    records: &[NewRecord],
) -> Vec<Record> {
    let deliveries = producer.context().by_index.lock().expect("delivery map");
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let (partition, offset, timestamp) = match deliveries.get(&index) {
                Some(Ok(delivered)) => *delivered,
                Some(Err(error)) => {
                    panic!("record #{index} to {topic} on {cluster:?} failed: {error}")
                }
                None => panic!("record #{index} to {topic} on {cluster:?} has no delivery report"),
            };
            Record {
                partition,
                offset,
                key: record.key.clone(),
                value: record.value.clone(),
                headers: record.headers.clone(),
                timestamp,
            }
        })
        .collect()
}

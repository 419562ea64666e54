//! End-to-end latency at a fixed load: records written to the source at a steady rate,
//! each carrying its send time, read back from the target; latency is the arrival time
//! minus the send time (both from this machine's clock).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::kafka::{self, Cluster};
use crate::wan;

/// Records sent after the load stops have this long to arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long probe records may take to come through a mirror that is starting.
const READY_LIMIT: Duration = Duration::from_secs(180);
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Send times are written into the key as decimal microseconds.
const KEY_LEN: usize = 16;

pub struct LatencyLoad<'a> {
    pub source: &'a Cluster,
    pub source_topic: &'a str,
    /// The network namespace of the source's side, when it is not this one: the
    /// producer writes from there, so that its own trip to the source is not counted.
    pub source_namespace: Option<&'a str>,
    /// Where the records are read back: the mirror's copy on the target, or the source
    /// topic itself for the floor without a mirror.
    pub reader: &'a Cluster,
    pub reader_topic: &'a str,
    pub partitions: i32,
    pub records_per_second: u32,
    /// Records sent in this stretch after the first one came through are not measured.
    pub warmup: Duration,
    pub measured: Duration,
    pub compression: &'a str,
    pub payloads: &'a [Vec<u8>],
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub samples: u64,
}

impl LatencyLoad<'_> {
    pub fn run(&self) -> anyhow::Result<LatencySummary> {
        let consumer = self.subscribe()?;
        let producer = match self.source_namespace {
            None => self.producer()?,
            Some(namespace) => wan::create_in(namespace, || self.producer())?,
        };

        let shared = Arc::new(Shared {
            sending: AtomicBool::new(true),
            ..Shared::default()
        });
        let reader = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || read_latencies(consumer, &shared))
        };
        let sent = self.send(&producer, &shared);
        let flushed = producer.flush(Duration::from_secs(30));
        if let Ok(count) = sent {
            shared.sent_measured.store(count, Ordering::SeqCst);
        }
        shared.sending.store(false, Ordering::SeqCst);
        let histogram = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the latency reader panicked"))??;
        let sent = sent?;
        flushed.context("latency producer: records not delivered to the source within 30 s")?;
        let failures = producer.context().failures.load(Ordering::SeqCst);
        if failures > 0 {
            bail!("latency producer: {failures} records could not be written to the source");
        }
        if histogram.len() < sent {
            bail!(
                "{} of {sent} measured records arrived within {DRAIN_LIMIT:?} after the load stopped",
                histogram.len()
            );
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Ok(LatencySummary {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            samples: histogram.len(),
        })
    }

    fn producer(&self) -> anyhow::Result<ThreadedProducer<DeliveryCounter>> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.source.bootstrap)
            .set("client.id", "strait-benchkit-latency")
            .set("linger.ms", "1")
            .set("compression.type", self.compression)
            .set("acks", "all")
            .create_with_context(DeliveryCounter::default())
            .context("latency producer")
    }

    /// A reader assigned to every partition of the reader topic, from its current end.
    fn subscribe(&self) -> anyhow::Result<BaseConsumer> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.reader.bootstrap)
            .set("client.id", "strait-benchkit-latency")
            .set("group.id", "strait-benchkit-latency")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .context("latency reader")?;
        let ends = self
            .reader
            .end_offsets(self.reader_topic, self.partitions)?;
        let mut assignment = TopicPartitionList::new();
        for (partition, end) in ends.into_iter().enumerate() {
            assignment.add_partition_offset(
                self.reader_topic,
                partition as i32,
                Offset::Offset(end),
            )?;
        }
        consumer.assign(&assignment)?;
        Ok(consumer)
    }

    /// Probes with a few records per second until the first one comes through (the
    /// mirror is up), then sends at the configured rate through the warm-up and the
    /// measured window. Returns how many records were sent inside the window.
    fn send(
        &self,
        producer: &ThreadedProducer<DeliveryCounter>,
        shared: &Shared,
    ) -> anyhow::Result<u64> {
        let probing_since = Instant::now();
        while shared.first_arrival.load(Ordering::SeqCst) == 0 {
            if probing_since.elapsed() > READY_LIMIT {
                bail!(
                    "no record came through to {} within {READY_LIMIT:?}: the mirror does not copy",
                    self.reader_topic
                );
            }
            self.send_one(producer, 0)?;
            thread::sleep(PROBE_INTERVAL);
        }
        let start = now_micros();
        let measure_from = start + self.warmup.as_micros() as u64;
        let until = measure_from + self.measured.as_micros() as u64;
        shared.measure_until.store(until, Ordering::SeqCst);
        shared.measure_from.store(measure_from, Ordering::SeqCst);

        let interval_micros = 1_000_000.0 / f64::from(self.records_per_second);
        let mut sent: u64 = 0;
        let mut measured: u64 = 0;
        loop {
            let now = now_micros();
            if now >= until {
                return Ok(measured);
            }
            let due = ((now - start) as f64 / interval_micros) as u64 + 1;
            while sent < due {
                if self.send_one(producer, sent)? >= measure_from {
                    measured += 1;
                }
                sent += 1;
            }
            thread::sleep(Duration::from_micros(500));
        }
    }

    /// Sends one record stamped with the current time, which it returns.
    fn send_one(
        &self,
        producer: &ThreadedProducer<DeliveryCounter>,
        index: u64,
    ) -> anyhow::Result<u64> {
        let sent_at = now_micros();
        let key = format!("{sent_at:0KEY_LEN$}");
        let payload = &self.payloads[index as usize % self.payloads.len()];
        let mut record = BaseRecord::<str, [u8]>::to(self.source_topic)
            .key(&key)
            .payload(payload)
            .timestamp((sent_at / 1000) as i64);
        loop {
            match producer.send(record) {
                Ok(()) => return Ok(sent_at),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => bail!("latency producer: {error}"),
            }
        }
    }
}

/// What the sender and the reader share; times in microseconds since the epoch.
#[derive(Default)]
struct Shared {
    /// When the first record arrived; 0 before.
    first_arrival: AtomicU64,
    /// The measured window [from, until); 0 until the first arrival fixes it.
    measure_from: AtomicU64,
    measure_until: AtomicU64,
    /// Records sent inside the window, set once sending is over.
    sent_measured: AtomicU64,
    /// Cleared once sending is over.
    sending: AtomicBool,
}

/// Counts records the producer gave up on: `flush` does not report them.
#[derive(Default)]
struct DeliveryCounter {
    failures: AtomicU64,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn read_latencies(consumer: BaseConsumer, shared: &Shared) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if !shared.sending.load(Ordering::SeqCst) {
            let deadline = *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN_LIMIT);
            if histogram.len() >= shared.sent_measured.load(Ordering::SeqCst)
                || Instant::now() > deadline
            {
                return Ok(histogram);
            }
        }
        match consumer.poll(Duration::from_millis(50)) {
            None => {}
            Some(Ok(message)) => {
                let arrived = now_micros();
                let Some(sent_at) = message
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .and_then(|k| k.parse::<u64>().ok())
                else {
                    continue;
                };
                let _ = shared.first_arrival.compare_exchange(
                    0,
                    arrived,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                let from = shared.measure_from.load(Ordering::SeqCst);
                let until = shared.measure_until.load(Ordering::SeqCst);
                if from > 0 && (from..until).contains(&sent_at) {
                    histogram.saturating_record(arrived.saturating_sub(sent_at).max(1));
                }
            }
            Some(Err(error)) if kafka::is_transient(&error) => {}
            Some(Err(error)) => bail!("latency reader: {error}"),
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

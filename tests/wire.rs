//! The wire layer against real Kafka brokers (KRaft). The oracle for what landed in a topic
//! is librdkafka (rdkafka crate), never strait's own fetch path.
//!
//! Brokers: STRAIT_TEST_BOOTSTRAP (default 127.0.0.1:19092) and STRAIT_TEST_BOOTSTRAP_2
//! (default 127.0.0.1:29092).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, FetchRequest, FetchResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strait::wire::{
    check_error_code, decode_response_body, encode_produce_request, encode_request, Backoff,
    ClusterClient, Connection, ConnectionConfig, CoordinatorType, ProduceTopicBatches, Purpose,
    WireError,
};

const BATCH_HEADER_LEN: usize = 61;

fn bootstrap() -> String {
    std::env::var("STRAIT_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

fn bootstrap_2() -> String {
    std::env::var("STRAIT_TEST_BOOTSTRAP_2").unwrap_or_else(|_| "127.0.0.1:29092".into())
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn config() -> ConnectionConfig {
    ConnectionConfig {
        client_id: "strait-wire-test".into(),
        ..ConnectionConfig::default()
    }
}

fn client() -> ClusterClient {
    ClusterClient::new("test", vec![bootstrap()], config())
}

/// Creates a topic through CreateTopics and waits until metadata shows a leader for every
/// partition.
async fn create_topic(client: &ClusterClient, name: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let response = client.send_any(request).await.expect("CreateTopics");
    let result = &response.topics[0];
    check_error_code(
        ApiKey::CreateTopics,
        &bootstrap(),
        result.error_code,
        result.error_message.as_deref(),
    )
    .expect("topic created");

    client
        .retry(&Backoff::default(), Duration::from_secs(30), || async {
            let snapshot = client
                .refresh_metadata(Some(vec![name.to_string()]))
                .await?;
            let ready = (0..partitions).all(|p| snapshot.leader(name, p).is_some());
            if ready {
                Ok(())
            } else {
                Err(WireError::Broker {
                    api: ApiKey::Metadata,
                    broker: bootstrap(),
                    code: ResponseError::LeaderNotAvailable,
                    message: None,
                })
            }
        })
        .await
        .expect("topic has leaders");
}

/// One record as sent, for comparison with what librdkafka reads back.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: i64,
}

fn records_for(tag: &str, count: usize, base_timestamp: i64) -> (Vec<Record>, Vec<Sent>) {
    let mut records = Vec::new();
    let mut sent = Vec::new();
    for i in 0..count {
        let key = format!("{tag}-key-{i}").into_bytes();
        let value = format!("{tag}-value-{i}-{}", "x".repeat(i * 10)).into_bytes();
        let header_value = format!("h{i}").into_bytes();
        let timestamp = base_timestamp + i as i64;
        let mut headers = IndexMap::new();
        headers.insert(
            StrBytes::from_static_str("origin"),
            Some(Bytes::from(header_value.clone())),
        );
        records.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol's encoder starts a new batch unless offset - sequence stays
            // constant; this keeps one batch with baseSequence -1 (no producer id).
            sequence: i as i32 - 1,
            timestamp,
            key: Some(Bytes::from(key.clone())),
            value: Some(Bytes::from(value.clone())),
            headers,
        });
        sent.push(Sent {
            key,
            value,
            headers: vec![("origin".into(), header_value)],
            timestamp,
        });
    }
    (records, sent)
}

fn encode_batch(records: &[Record]) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Splits a fetched records field into whole v2 batches.
fn split_batches(mut records: Bytes) -> Vec<Bytes> {
    let mut batches = Vec::new();
    while records.len() >= 12 {
        let length = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
        if records.len() < 12 + length {
            break;
        }
        batches.push(records.split_to(12 + length));
    }
    batches
}

fn base_offset(batch: &[u8]) -> i64 {
    i64::from_be_bytes(batch[..8].try_into().unwrap())
}

/// Produces one batch through the vectored encoder at `version`; returns the base offset.
async fn produce_batch(
    client: &ClusterClient,
    topic: &str,
    version: i16,
    batch: &Bytes,
) -> Result<i64, WireError> {
    let snapshot = client.metadata();
    let leader = snapshot.leader(topic, 0).expect("leader known");
    let connection = client.connection(leader, Purpose::Produce).await?;
    let topics = [ProduceTopicBatches {
        name: topic.to_string(),
        topic_id: snapshot.topics[topic].topic_id,
        partitions: vec![(
            0,
            [
                batch.slice(..BATCH_HEADER_LEN),
                batch.slice(BATCH_HEADER_LEN..),
            ],
        )],
    }];
    let body = connection
        .send_frame(ApiKey::Produce, version, |correlation_id| {
            encode_produce_request(
                version,
                correlation_id,
                "strait-wire-test",
                None,
                -1,
                30_000,
                &topics,
            )
        })
        .await?;
    let response: ProduceResponse = decode_response_body(body, version).expect("ProduceResponse");
    connection.throttle(response.throttle_time_ms);
    let partition = &response.responses[0].partition_responses[0];
    check_error_code(
        ApiKey::Produce,
        connection.broker(),
        partition.error_code,
        partition.error_message.as_deref(),
    )?;
    assert_eq!(partition.index, 0);
    Ok(partition.base_offset)
}

/// Fetches partition 0 of `topic` from `offset` at `version` through `send_frame`, checks
/// the records are a slice of the response body, and returns the whole batches.
async fn fetch_batches(
    client: &ClusterClient,
    topic: &str,
    version: i16,
    offset: i64,
) -> Vec<Bytes> {
    let snapshot = client.metadata();
    let leader = snapshot.leader(topic, 0).expect("leader known");
    let connection = client.connection(leader, Purpose::Fetch).await.unwrap();
    let mut fetch_topic = FetchTopic::default().with_partitions(vec![FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)]);
    if version >= 13 {
        fetch_topic.topic_id = snapshot.topics[topic].topic_id;
    } else {
        fetch_topic.topic = TopicName(StrBytes::from_string(topic.to_string()));
    }
    let request = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(4 << 20)
        .with_isolation_level(1)
        .with_topics(vec![fetch_topic]);
    let body = connection
        .send_frame(ApiKey::Fetch, version, |correlation_id| {
            vec![encode_request(
                ApiKey::Fetch,
                version,
                correlation_id,
                "strait-wire-test",
                &request,
            )
            .unwrap()]
        })
        .await
        .unwrap();
    let body_range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    let response: FetchResponse = decode_response_body(body, version).unwrap();
    assert_eq!(response.error_code, 0);
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0, "fetch error");
    let records = partition.records.clone().unwrap_or_default();
    if !records.is_empty() {
        assert!(
            body_range.contains(&(records.as_ptr() as usize)),
            "fetched records were copied out of the response frame"
        );
    }
    split_batches(records)
}

/// Reads every record of partition 0 with librdkafka until `expected` records arrived.
fn read_with_librdkafka(topic: &str, expected: usize) -> Vec<(i64, Sent)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("wire-oracle"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("librdkafka consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("librdkafka read");
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        got.push((
            message.offset(),
            Sent {
                key: message.key().unwrap_or_default().to_vec(),
                value: message.payload().unwrap_or_default().to_vec(),
                headers,
                timestamp: message.timestamp().to_millis().unwrap_or(-1),
            },
        ));
    }
    got
}

#[tokio::test]
async fn api_versions_and_metadata_from_real_brokers() {
    for address in [bootstrap(), bootstrap_2()] {
        let connection = Connection::connect(&address, &config())
            .await
            .unwrap_or_else(|e| panic!("broker at {address} must be running: {e}"));
        let produce = connection.negotiated_version(ApiKey::Produce).unwrap();
        let fetch = connection.negotiated_version(ApiKey::Fetch).unwrap();
        assert!((3..=13).contains(&produce), "Produce v{produce}");
        assert!((4..=18).contains(&fetch), "Fetch v{fetch}");
        let broker_produce = connection.broker_versions(ApiKey::Produce).unwrap();
        assert_eq!(produce, broker_produce.max.min(13));

        let cluster = ClusterClient::new("test", vec![address.clone()], config());
        let snapshot = cluster.refresh_metadata(None).await.unwrap();
        assert!(!snapshot.brokers.is_empty());
        assert!(snapshot.cluster_id.is_some());
        for broker in snapshot.brokers.keys() {
            cluster.connection(*broker, Purpose::Admin).await.unwrap();
        }
    }
}

#[tokio::test]
async fn metadata_for_a_missing_topic_reports_its_error() {
    let cluster = client();
    let missing = unique("wire-missing");
    let snapshot = cluster
        .refresh_metadata(Some(vec![missing.clone()]))
        .await
        .unwrap();
    assert_eq!(
        snapshot.topics[&missing].error,
        Some(ResponseError::UnknownTopicOrPartition.code())
    );
}

#[tokio::test]
async fn vectored_produce_at_each_version_lands_and_fetches_back() {
    let cluster = client();
    let topic = unique("wire-produce");
    create_topic(&cluster, &topic, 1).await;
    let leader = cluster.metadata().leader(&topic, 0).unwrap();
    let highest = cluster
        .connection(leader, Purpose::Produce)
        .await
        .unwrap()
        .negotiated_version(ApiKey::Produce)
        .unwrap();

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut sent_batches = Vec::new();
    let mut sent_records = Vec::new();
    let mut next_offset = 0;
    for (round, version) in [highest, 3, 8].into_iter().enumerate() {
        let (records, sent) = records_for(&format!("v{version}"), 5, now_ms + round as i64 * 100);
        let batch = encode_batch(&records);
        assert_eq!(
            split_batches(batch.clone()).len(),
            1,
            "one batch per produce"
        );
        let base = produce_batch(&cluster, &topic, version, &batch)
            .await
            .unwrap_or_else(|e| panic!("produce v{version}: {e}"));
        assert_eq!(base, next_offset, "Produce v{version} base offset");
        next_offset += sent.len() as i64;
        sent_batches.push(batch);
        sent_records.extend(sent);
    }

    let fetch_connection = cluster.connection(leader, Purpose::Fetch).await.unwrap();
    let highest_fetch = fetch_connection.negotiated_version(ApiKey::Fetch).unwrap();
    for fetch_version in [highest_fetch, 12, 4] {
        let mut fetched = Vec::new();
        while fetched.len() < sent_batches.len() {
            let from = fetched
                .last()
                .map(|b: &Bytes| base_offset(b) + 5)
                .unwrap_or(0);
            let more = fetch_batches(&cluster, &topic, fetch_version, from).await;
            assert!(
                !more.is_empty(),
                "Fetch v{fetch_version} from {from} returned nothing"
            );
            fetched.extend(more);
        }
        let mut expected_base = 0;
        for (sent, got) in sent_batches.iter().zip(&fetched) {
            // The broker sets baseOffset (bytes 0..8) and partitionLeaderEpoch (12..16); the
            // rest, CRC included, is what was sent.
            assert_eq!(base_offset(got), expected_base, "Fetch v{fetch_version}");
            assert_eq!(got.len(), sent.len());
            assert_eq!(got[8..12], sent[8..12]);
            assert_eq!(got[16..], sent[16..]);
            expected_base += 5;
        }
    }

    let expected = sent_records.len();
    let topic_for_oracle = topic.clone();
    let read =
        tokio::task::spawn_blocking(move || read_with_librdkafka(&topic_for_oracle, expected))
            .await
            .unwrap();
    let offsets: Vec<i64> = read.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..expected as i64).collect::<Vec<_>>());
    let read: Vec<Sent> = read.into_iter().map(|(_, r)| r).collect();
    assert_eq!(read, sent_records);
}

#[tokio::test]
async fn open_connections_of_a_purpose_carry_the_kernels_measurements() {
    let cluster = client();
    let leader = cluster
        .refresh_metadata(None)
        .await
        .unwrap()
        .brokers
        .keys()
        .copied()
        .next()
        .expect("a broker");
    assert!(cluster.open_connections(Purpose::Produce).is_empty());
    let lanes = [0u16, 1, 2];
    for lane in lanes {
        cluster
            .connection_lane(leader, Purpose::Produce, lane)
            .await
            .unwrap();
    }
    cluster
        .connection_lane(leader, Purpose::Fetch, 0)
        .await
        .unwrap();
    let produce = cluster.open_connections(Purpose::Produce);
    assert_eq!(produce.len(), lanes.len());
    for connection in &produce {
        let stats = connection
            .tcp_stats()
            .expect("TCP_INFO of a live connection");
        // The version exchange crossed it: the kernel has a round trip and buffers.
        assert!(!stats.round_trip().is_zero(), "{stats:?}");
        assert!(stats.send_buffer > 0, "{stats:?}");
    }
    assert_eq!(cluster.open_connections(Purpose::Fetch).len(), 1);
    cluster.retire_lane(leader, Purpose::Produce, 1);
    assert_eq!(cluster.open_connections(Purpose::Produce).len(), 2);
}

#[tokio::test]
async fn a_retired_lane_gets_a_new_connection_while_the_old_one_finishes_its_request() {
    let cluster = client();
    let topic = unique("wire-retire");
    create_topic(&cluster, &topic, 1).await;
    let snapshot = cluster.metadata();
    let leader = snapshot.leader(&topic, 0).expect("leader known");
    let old = cluster
        .connection_lane(leader, Purpose::Fetch, 3)
        .await
        .unwrap();
    // An empty partition: the broker holds the fetch for its whole wait.
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(1_500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
            .with_topic_id(snapshot.topics[&topic].topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    // Right after its creation the leader may not lead the partition yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = old
            .request(request.clone().with_max_wait_ms(0))
            .await
            .unwrap();
        let code = answer.responses[0].partitions[0].error_code;
        if code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the partition stayed unavailable: {code}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = Instant::now();
    let on_its_way = tokio::spawn({
        let old = old.clone();
        async move { old.request(request).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    cluster.retire_lane(leader, Purpose::Fetch, 3);
    let new = cluster
        .connection_lane(leader, Purpose::Fetch, 3)
        .await
        .unwrap();
    assert!(
        !new.is_same(&old),
        "the retired lane opened a new connection"
    );
    let again = cluster
        .connection_lane(leader, Purpose::Fetch, 3)
        .await
        .unwrap();
    assert!(
        again.is_same(&new),
        "the new connection is the lane's from now on"
    );
    let other_lane = cluster
        .connection_lane(leader, Purpose::Fetch, 2)
        .await
        .unwrap();
    assert!(!other_lane.is_same(&new) && !other_lane.is_same(&old));

    let answer = on_its_way
        .await
        .unwrap()
        .expect("the old connection answers the fetch it carried");
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "the broker held the fetch across the retirement"
    );
    assert_eq!(answer.error_code, 0);
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert!(partition.records.as_ref().is_none_or(|r| r.is_empty()));
    assert!(old.is_alive(), "held by this test, it stays open");
}

#[tokio::test]
async fn produce_to_a_missing_topic_is_retriable_and_stales_metadata() {
    let cluster = client();
    let topic = unique("wire-unknown");
    cluster
        .refresh_metadata(Some(vec![topic.clone()]))
        .await
        .unwrap();
    // The topic does not exist: any broker answers UNKNOWN_TOPIC_OR_PARTITION.
    let broker = *cluster.metadata().brokers.keys().next().unwrap();
    let connection = cluster.connection(broker, Purpose::Produce).await.unwrap();
    let version = connection
        .negotiated_version(ApiKey::Produce)
        .unwrap()
        .min(12);
    let (records, _) = records_for("nowhere", 1, 0);
    let batch = encode_batch(&records);
    let topics = [ProduceTopicBatches {
        name: topic.clone(),
        topic_id: uuid::Uuid::nil(),
        partitions: vec![(
            0,
            [
                batch.slice(..BATCH_HEADER_LEN),
                batch.slice(BATCH_HEADER_LEN..),
            ],
        )],
    }];
    let body = connection
        .send_frame(ApiKey::Produce, version, |id| {
            encode_produce_request(version, id, "strait-wire-test", None, -1, 5_000, &topics)
        })
        .await
        .unwrap();
    let response: ProduceResponse = decode_response_body(body, version).unwrap();
    let partition = &response.responses[0].partition_responses[0];
    let error = check_error_code(
        ApiKey::Produce,
        connection.broker(),
        partition.error_code,
        None,
    )
    .unwrap_err();
    assert_eq!(
        error.broker_code(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    assert!(error.is_retriable());
    assert!(error.invalidates_metadata());
}

#[tokio::test]
async fn finds_group_and_transaction_coordinators() {
    let cluster = client();
    cluster.refresh_metadata(Some(vec![])).await.unwrap();
    for kind in [CoordinatorType::Group, CoordinatorType::Transaction] {
        let key = unique("wire-coordinator");
        let broker = cluster
            .retry(&Backoff::default(), Duration::from_secs(60), || {
                cluster.find_coordinator(&key, kind)
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?} coordinator: {e}"));
        assert!(
            cluster.metadata().brokers.contains_key(&broker),
            "{kind:?} coordinator {broker} is not a known broker"
        );
        let connection = cluster.connection(broker, Purpose::Admin).await.unwrap();
        assert!(connection.is_alive());
    }
}

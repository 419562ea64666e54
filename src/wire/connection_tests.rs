//! Connection behaviour against a tiny in-test broker built from kafka-protocol's
//! broker-side types: it decodes our requests and encodes its answers on 127.0.0.1.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{
    decode_response_body, encode_produce_request, ClusterClient, Connection, ConnectionConfig,
    ProduceTopicBatches, Purpose, WireError,
};

const RANGES: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
];

fn config(request_timeout: Duration) -> ConnectionConfig {
    ConnectionConfig {
        client_id: "strait-test".into(),
        request_timeout,
        ..ConnectionConfig::default()
    }
}

/// Starts a broker on an ephemeral port running `script` on the first accepted socket.
async fn fake_broker<F, Fut, T>(script: F) -> (String, JoinHandle<T>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        script(socket).await
    });
    (addr, task)
}

async fn read_request(socket: &mut TcpStream) -> (RequestHeader, Bytes) {
    let size = socket.read_i32().await.unwrap();
    let mut frame = vec![0u8; size as usize];
    socket.read_exact(&mut frame).await.unwrap();
    let mut frame = Bytes::from(frame);
    let header = decode_request_header_from_buffer(&mut frame).unwrap();
    (header, frame)
}

async fn respond<R: Encodable>(
    socket: &mut TcpStream,
    request: &RequestHeader,
    response_version: i16,
    response: &R,
) {
    let api = ApiKey::try_from(request.request_api_key).unwrap();
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(request.correlation_id)
        .encode(
            &mut buf,
            api.response_header_version(request.request_api_version),
        )
        .unwrap();
    response.encode(&mut buf, response_version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    socket.write_all(&buf).await.unwrap();
}

fn api_versions(ranges: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|(api, min, max)| {
                ApiVersion::default()
                    .with_api_key(*api as i16)
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect(),
    )
}

/// Answers the ApiVersions handshake with `ranges`.
async fn handshake(socket: &mut TcpStream, ranges: &[(ApiKey, i16, i16)]) {
    let (header, _) = read_request(socket).await;
    assert_eq!(header.request_api_key, ApiKey::ApiVersions as i16);
    let version = header.request_api_version;
    respond(socket, &header, version, &api_versions(ranges)).await;
}

fn metadata_request_for(topic: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]))
}

fn requested_topic(body: Bytes, version: i16) -> String {
    let request = MetadataRequest::decode(&mut body.clone(), version).unwrap();
    request.topics.unwrap()[0]
        .name
        .clone()
        .unwrap()
        .0
        .to_string()
}

#[tokio::test]
async fn pipelined_requests_get_their_own_responses_out_of_order() {
    let (addr, broker) = fake_broker(|mut socket| async move {
        handshake(&mut socket, RANGES).await;
        // All three requests arrive before any answer: only a pipelining client gets here.
        let mut requests = Vec::new();
        for _ in 0..3 {
            requests.push(read_request(&mut socket).await);
        }
        let ids: Vec<i32> = requests.iter().map(|(h, _)| h.correlation_id).collect();
        for (header, body) in requests.into_iter().rev() {
            let version = header.request_api_version;
            let topic = requested_topic(body, version);
            let echo = MetadataResponse::default()
                .with_cluster_id(Some(StrBytes::from_string(format!("echo-{topic}"))));
            respond(&mut socket, &header, version, &echo).await;
        }
        // Handing the socket back keeps it open for the liveness check.
        (ids, socket)
    })
    .await;

    let connection = Connection::connect(&addr, &config(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(connection.negotiated_version(ApiKey::Metadata), Some(12));
    let (a, b, c) = tokio::join!(
        connection.request(metadata_request_for("a")),
        connection.request(metadata_request_for("b")),
        connection.request(metadata_request_for("c")),
    );
    assert_eq!(a.unwrap().cluster_id.unwrap().as_str(), "echo-a");
    assert_eq!(b.unwrap().cluster_id.unwrap().as_str(), "echo-b");
    assert_eq!(c.unwrap().cluster_id.unwrap().as_str(), "echo-c");
    let (mut ids, _socket) = broker.await.unwrap();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "correlation ids must be distinct");
    assert!(connection.is_alive());
}

#[tokio::test]
async fn concurrent_callers_share_one_connect_and_the_pool_lists_it() {
    // The broker accepts one socket only: a second connect would never get its handshake.
    let (addr, _broker) = fake_broker(|mut socket| async move {
        handshake(&mut socket, RANGES).await;
        let _ = socket.read_u8().await;
    })
    .await;
    let cluster = ClusterClient::new("c", vec![addr.clone()], config(Duration::from_secs(5)));
    assert!(cluster.open_connections(Purpose::Admin).is_empty());
    let (first, second) = tokio::join!(
        cluster.connection_to(&addr, Purpose::Admin),
        cluster.connection_to(&addr, Purpose::Admin),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(first.is_same(&second));
    let open = cluster.open_connections(Purpose::Admin);
    assert_eq!(open.len(), 1);
    assert!(open[0].is_same(&first));
    assert!(cluster.open_connections(Purpose::Produce).is_empty());
}

#[tokio::test]
async fn dropped_connection_fails_every_request_in_flight() {
    let (addr, broker) = fake_broker(|mut socket| async move {
        handshake(&mut socket, RANGES).await;
        for _ in 0..3 {
            read_request(&mut socket).await;
        }
        // Closing the socket without answering.
    })
    .await;

    let connection = Connection::connect(&addr, &config(Duration::from_secs(30)))
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(
        connection.request(metadata_request_for("a")),
        connection.request(metadata_request_for("b")),
        connection.request(metadata_request_for("c")),
    );
    broker.await.unwrap();
    for result in [a, b, c] {
        let error = result.unwrap_err();
        assert!(
            matches!(
                error,
                WireError::ConnectionClosed { .. } | WireError::Io { .. }
            ),
            "{error:?}"
        );
        assert!(error.is_retriable());
        assert!(error.to_string().contains(&addr));
    }
    assert!(!connection.is_alive());
    let later = connection.request(metadata_request_for("d")).await;
    assert!(
        matches!(later, Err(WireError::ConnectionClosed { .. })),
        "{later:?}"
    );
}

#[tokio::test]
async fn unanswered_request_times_out_and_kills_the_connection() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (addr, broker) = fake_broker(|mut socket| async move {
        handshake(&mut socket, RANGES).await;
        read_request(&mut socket).await;
        // Keep the socket open and silent until the test is done.
        let _ = released.await;
    })
    .await;

    let connection = Connection::connect(&addr, &config(Duration::from_millis(300)))
        .await
        .unwrap();
    let result = connection.request(metadata_request_for("a")).await;
    assert!(
        matches!(
            result,
            Err(WireError::Timeout {
                api: ApiKey::Metadata,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(!connection.is_alive());
    release.send(()).unwrap();
    broker.await.unwrap();
}

#[tokio::test]
async fn api_versions_falls_back_to_v0_on_unsupported_version() {
    let (addr, broker) = fake_broker(|mut socket| async move {
        let (first, _) = read_request(&mut socket).await;
        // An old broker answers an unknown ApiVersions version in the v0 layout.
        let refusal = ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code());
        respond(&mut socket, &first, 0, &refusal).await;
        let (second, _) = read_request(&mut socket).await;
        respond(
            &mut socket,
            &second,
            0,
            &api_versions(&[(ApiKey::Produce, 3, 5), (ApiKey::ApiVersions, 0, 2)]),
        )
        .await;
        (first.request_api_version, second.request_api_version)
    })
    .await;

    let connection = Connection::connect(&addr, &config(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(broker.await.unwrap(), (3, 0));
    assert_eq!(connection.negotiated_version(ApiKey::Produce), Some(5));
    assert_eq!(connection.negotiated_version(ApiKey::Fetch), None);
}

#[tokio::test]
async fn versions_outside_the_broker_range_are_refused_before_sending() {
    let (addr, broker) = fake_broker(|mut socket| async move {
        handshake(&mut socket, &[(ApiKey::Produce, 0, 2)]).await;
        // Whatever the client sends next would show here.
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).await.unwrap();
        rest.len()
    })
    .await;

    let connection = Connection::connect(&addr, &config(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(connection.negotiated_version(ApiKey::Produce), None);
    let produce = connection
        .send_frame(ApiKey::Produce, 3, |_| Vec::new())
        .await;
    assert!(
        matches!(
            &produce,
            Err(WireError::UnsupportedVersion {
                broker_range: Some((0, 2)),
                ..
            })
        ),
        "{produce:?}"
    );
    let metadata = connection.request(metadata_request_for("a")).await;
    assert!(
        matches!(
            &metadata,
            Err(WireError::UnsupportedVersion {
                broker_range: None,
                ..
            })
        ),
        "{metadata:?}"
    );
    drop(connection);
    assert_eq!(broker.await.unwrap(), 0, "nothing may be sent");
}

#[tokio::test]
async fn vectored_produce_frame_reaches_the_broker_intact() {
    let header = Bytes::from((0..61u8).collect::<Vec<_>>());
    let payload = Bytes::from(vec![0xabu8; 100_000]);
    let expected_records: Bytes = [header.clone(), payload.clone()].concat().into();
    let (addr, broker) = fake_broker(move |mut socket| async move {
        handshake(&mut socket, &[(ApiKey::Produce, 3, 11)]).await;
        let (request_header, body) = read_request(&mut socket).await;
        let version = request_header.request_api_version;
        let request = ProduceRequest::decode(&mut body.clone(), version).unwrap();
        let answer =
            ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                .with_name(request.topic_data[0].name.clone())
                .with_partition_responses(vec![PartitionProduceResponse::default()
                    .with_index(request.topic_data[0].partition_data[0].index)
                    .with_base_offset(42)])]);
        respond(&mut socket, &request_header, version, &answer).await;
        request
    })
    .await;

    let connection = Connection::connect(&addr, &config(Duration::from_secs(30)))
        .await
        .unwrap();
    let version = connection.negotiated_version(ApiKey::Produce).unwrap();
    assert_eq!(version, 11);
    let topics = [ProduceTopicBatches {
        name: "orders".into(),
        topic_id: uuid::Uuid::nil(),
        partitions: vec![(4, [header, payload])],
    }];
    let body = connection
        .send_frame(ApiKey::Produce, version, |correlation_id| {
            encode_produce_request(
                version,
                correlation_id,
                "strait-test",
                None,
                -1,
                5000,
                &topics,
            )
        })
        .await
        .unwrap();
    let response: ProduceResponse = decode_response_body(body, version).unwrap();
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!((partition.index, partition.base_offset), (4, 42));

    let seen = broker.await.unwrap();
    assert_eq!(seen.acks, -1);
    assert_eq!(seen.topic_data[0].name.0.as_str(), "orders");
    let records = seen.topic_data[0].partition_data[0]
        .records
        .clone()
        .unwrap();
    assert_eq!(records.remaining(), expected_records.len());
    assert!(records == expected_records);
}

//! Sending one produce request (encoded by `produce_encode`) to a partition leader and
//! decoding its response: the engine's data path and the small internal topics share it.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ProduceResponse};

use super::cluster::{ClusterClient, Purpose};
use super::error::WireError;
use super::frame::decode_response_body;
use super::produce_encode::{encode_produce_request, ProduceTopicBatches, PRODUCE_VERSIONS};

/// Sends `topics` to broker `leader` on its `purpose` connection number `lane`, acks=all,
/// and returns the decoded response (partition errors are the caller's to read); the
/// response's throttle time holds back the connection's next requests.
pub async fn send_produce(
    client: &ClusterClient,
    leader: i32,
    purpose: Purpose,
    lane: u16,
    client_id: Arc<str>,
    topics: Vec<ProduceTopicBatches>,
    timeout_ms: i32,
) -> Result<ProduceResponse, WireError> {
    let connection = client.connection_lane(leader, purpose, lane).await?;
    let version = connection
        .negotiated_version(ApiKey::Produce)
        .ok_or_else(|| WireError::UnsupportedVersion {
            api: ApiKey::Produce,
            broker: connection.broker().to_string(),
            ours: (PRODUCE_VERSIONS.start, PRODUCE_VERSIONS.end - 1),
            broker_range: connection
                .broker_versions(ApiKey::Produce)
                .map(|r| (r.min, r.max)),
        })?;
    let body = connection
        .send_frame(ApiKey::Produce, version, move |correlation_id| {
            encode_produce_request(
                version,
                correlation_id,
                &client_id,
                None,
                -1,
                timeout_ms,
                &topics,
            )
        })
        .await?;
    let response: ProduceResponse =
        decode_response_body(body, version).map_err(|source| WireError::Decode {
            api: ApiKey::Produce,
            version,
            broker: connection.broker().to_string(),
            source,
        })?;
    connection.throttle(response.throttle_time_ms);
    Ok(response)
}

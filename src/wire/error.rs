//! Errors of the wire layer: network, framing, version negotiation and broker error codes.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// Everything that can go wrong between strait and a Kafka broker.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(
        "cannot connect to Kafka broker {addr}: {source}; check bootstrap.servers, the broker's \
         advertised.listeners and that the broker is running"
    )]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error("network error talking to Kafka broker {broker}: {source}; the request will be retried on a new connection")]
    Io {
        broker: String,
        #[source]
        source: std::io::Error,
    },

    #[error("connection to Kafka broker {broker} is closed; the request will be retried on a new connection")]
    ConnectionClosed { broker: String },

    #[error(
        "{api:?} request to Kafka broker {broker} got no response within {after:?}; the broker is \
         overloaded or unreachable, or request.timeout.ms is too small"
    )]
    Timeout {
        api: ApiKey,
        broker: String,
        after: Duration,
    },

    #[error("cannot encode {api:?} request v{version} for Kafka broker {broker}: {source}")]
    Encode {
        api: ApiKey,
        version: i16,
        broker: String,
        #[source]
        source: anyhow::Error,
    },

    #[error(
        "cannot decode {api:?} response v{version} from Kafka broker {broker}: {source}; the broker \
         sent bytes strait does not understand"
    )]
    Decode {
        api: ApiKey,
        version: i16,
        broker: String,
        #[source]
        source: anyhow::Error,
    },

    #[error(
        "Kafka broker {broker} supports {api:?} versions {}, strait speaks {}..{}; strait needs \
         Apache Kafka 0.11 or newer",
        broker_range.map_or_else(|| "none".to_string(), |r| format!("{}..{}", r.0, r.1)),
        ours.0,
        ours.1
    )]
    UnsupportedVersion {
        api: ApiKey,
        broker: String,
        ours: (i16, i16),
        broker_range: Option<(i16, i16)>,
    },

    #[error(
        "Kafka broker {broker} sent a {size}-byte response, over the {max}-byte limit; raise the \
         client's maximum response size or lower fetch.max.bytes"
    )]
    FrameTooLarge {
        broker: String,
        size: usize,
        max: usize,
    },

    #[error(
        "Kafka broker {broker} answered {api:?} with {code}{}",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Broker {
        api: ApiKey,
        broker: String,
        code: ResponseError,
        message: Option<String>,
    },

    #[error(
        "broker id {broker_id} of cluster {cluster} is not in its metadata; metadata will be refreshed"
    )]
    UnknownBroker { cluster: String, broker_id: i32 },

    #[error(
        "no broker of cluster {cluster} is reachable (tried {tried}); check bootstrap.servers{}",
        last.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
    )]
    NoBrokerAvailable {
        cluster: String,
        tried: String,
        last: Option<Box<WireError>>,
    },

    #[error(
        "security.protocol={protocol} is not supported yet; only PLAINTEXT is (TLS and SASL are \
         planned)"
    )]
    UnsupportedSecurityProtocol { protocol: String },

    /// A socket setting this machine cannot apply, found before any connection.
    #[error("{setting}: {reason}")]
    SocketSetting { setting: String, reason: String },
}

impl WireError {
    /// Whether trying again (on a fresh connection, after a metadata refresh) can succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            WireError::Connect { .. }
            | WireError::Io { .. }
            | WireError::ConnectionClosed { .. }
            | WireError::Timeout { .. }
            | WireError::UnknownBroker { .. }
            | WireError::NoBrokerAvailable { .. } => true,
            WireError::Broker { code, .. } => is_retriable_code(*code),
            WireError::Encode { .. }
            | WireError::Decode { .. }
            | WireError::UnsupportedVersion { .. }
            | WireError::FrameTooLarge { .. }
            | WireError::UnsupportedSecurityProtocol { .. }
            | WireError::SocketSetting { .. } => false,
        }
    }

    /// Whether the error means our view of leaders, coordinators or brokers is stale.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            WireError::Connect { .. }
            | WireError::Io { .. }
            | WireError::ConnectionClosed { .. }
            | WireError::Timeout { .. }
            | WireError::UnknownBroker { .. } => true,
            WireError::Broker { code, .. } => matches!(
                code,
                ResponseError::NotLeaderOrFollower
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::UnknownTopicId
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::ReplicaNotAvailable
                    | ResponseError::KafkaStorageError
                    | ResponseError::NotController
            ),
            _ => false,
        }
    }

    /// The broker error code, when the broker answered with one.
    pub fn broker_code(&self) -> Option<ResponseError> {
        match self {
            WireError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Turns a response error code into `Err(WireError::Broker)`, `Ok(())` for code 0.
pub fn check_error_code(
    api: ApiKey,
    broker: &str,
    code: i16,
    message: Option<&str>,
) -> Result<(), WireError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(WireError::Broker {
            api,
            broker: broker.to_string(),
            code,
            message: message.map(str::to_string),
        }),
    }
}

fn is_retriable_code(code: ResponseError) -> bool {
    match code {
        // The batches strait sends are deterministic: a corrupt one stays corrupt.
        ResponseError::CorruptMessage => false,
        // Another EndTxn/AddPartitions of ours is still completing on the coordinator.
        ResponseError::ConcurrentTransactions => true,
        other => other.is_retriable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker_error(code: i16) -> WireError {
        check_error_code(ApiKey::Produce, "b:9092", code, Some("why")).unwrap_err()
    }

    #[test]
    fn leadership_and_coordinator_errors_are_retriable_and_refresh_metadata() {
        for code in [6, 5, 16, 3] {
            let err = broker_error(code);
            assert!(err.is_retriable(), "{err}");
            assert!(err.invalidates_metadata(), "{err}");
        }
        for code in [14, 7] {
            assert!(broker_error(code).is_retriable());
            assert!(!broker_error(code).invalidates_metadata());
        }
    }

    #[test]
    fn corrupt_message_and_invalid_record_are_final() {
        assert!(!broker_error(2).is_retriable());
        assert!(!broker_error(87).is_retriable());
        assert!(!broker_error(10).is_retriable());
    }

    #[test]
    fn zero_code_is_ok() {
        assert!(check_error_code(ApiKey::Fetch, "b:9092", 0, None).is_ok());
    }

    #[test]
    fn messages_name_the_broker_and_the_error() {
        let text = broker_error(6).to_string();
        assert!(text.contains("b:9092"), "{text}");
        assert!(text.contains("NotLeaderOrFollower"), "{text}");
        assert!(text.contains("why"), "{text}");
        let unsupported = WireError::UnsupportedVersion {
            api: ApiKey::Produce,
            broker: "b:9092".into(),
            ours: (3, 13),
            broker_range: Some((0, 2)),
        };
        assert!(unsupported.to_string().contains("0..2"));
        assert!(!unsupported.is_retriable());
    }
}

//! A negotiated, pipelined connection to one broker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::{Request, StrBytes, VersionRange};

use super::error::{check_error_code, WireError};
use super::frame::{decode_response_body, encode_request};
use super::pipeline::{Outgoing, Pipeline};
use super::socket::{connect_tcp, tcp_stats, SocketOptions, TcpStats};
use super::versions::{decode_api_versions, ApiVersionsOutcome, BrokerVersions};

/// The ApiVersions version tried first (KIP-511 client software name and version).
const API_VERSIONS_FIRST_TRY: i16 = 3;

/// How bytes travel to the broker. TLS and SASL will be further variants; the stream type
/// behind the pipeline is the only thing they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    #[default]
    Plaintext,
}

impl Transport {
    /// Maps Kafka's `security.protocol` setting; only PLAINTEXT is available in this version.
    pub fn from_security_protocol(protocol: &str) -> Result<Self, WireError> {
        match protocol.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Transport::Plaintext),
            _ => Err(WireError::UnsupportedSecurityProtocol {
                protocol: protocol.to_string(),
            }),
        }
    }
}

/// Settings shared by every connection to one cluster.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client_id: String,
    pub socket: SocketOptions,
    /// Longest wait for any response; a Fetch's max_wait_ms must stay well below it.
    pub request_timeout: Duration,
    /// Largest response frame accepted, so a corrupt size cannot make us allocate gigabytes.
    pub max_response_size: usize,
    pub transport: Transport,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: "strait".to_string(),
            socket: SocketOptions::default(),
            request_timeout: Duration::from_secs(30),
            max_response_size: 256 * 1024 * 1024,
            transport: Transport::Plaintext,
        }
    }
}

/// A connection to one broker, cheap to clone. Requests sent concurrently are pipelined.
///
/// Every request expects a response: Produce with acks=0 (no response) is not supported and
/// would time out, which closes the connection.
///
/// Throttling: brokers answer throttled requests at once with `throttle_time_ms > 0` and then
/// stop reading from the connection for that long. Callers that see a non-zero
/// `throttle_time_ms` call [`Connection::throttle`], which holds back this connection's next
/// sends so they are not charged to the request timeout while the broker is not reading.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    pipeline: Pipeline,
    /// A second descriptor of the socket, for TCP_INFO; None when it could not be made.
    probe: Option<socket2::Socket>,
    versions: BrokerVersions,
    client_id: String,
    request_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.broker())
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` ("host:port") and learns which API versions the broker speaks.
    pub async fn connect(addr: &str, config: &ConnectionConfig) -> Result<Connection, WireError> {
        let stream = match config.transport {
            Transport::Plaintext => connect_tcp(addr, &config.socket).await?,
        };
        let probe = socket2::SockRef::from(&stream).try_clone().ok();
        let pipeline = Pipeline::start(addr, stream, config.max_response_size);
        let versions = exchange_api_versions(&pipeline, config).await?;
        tracing::debug!(broker = addr, "connected");
        Ok(Connection {
            inner: Arc::new(Inner {
                pipeline,
                probe,
                versions,
                client_id: config.client_id.clone(),
                request_timeout: config.request_timeout,
            }),
        })
    }

    /// The address this connection was opened to.
    pub fn broker(&self) -> &str {
        self.inner.pipeline.broker()
    }

    /// The kernel's view of this connection (round-trip time, buffers, bytes received).
    pub fn tcp_stats(&self) -> Option<TcpStats> {
        tcp_stats(self.inner.probe.as_ref()?).ok()
    }

    /// Whether both handles are the same connection (pools hand out clones).
    pub fn is_same(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// False once the socket failed, closed or a request timed out; open a new connection.
    pub fn is_alive(&self) -> bool {
        self.inner.pipeline.is_alive()
    }

    /// The version range the broker announced for `api`.
    pub fn broker_versions(&self, api: ApiKey) -> Option<VersionRange> {
        self.inner.versions.range(api)
    }

    /// The version requests of `api` go out at: the highest that both kafka-protocol (and so
    /// strait) and the broker speak. `None` when there is no common version.
    pub fn negotiated_version(&self, api: ApiKey) -> Option<i16> {
        self.inner.versions.negotiate(api, api.valid_versions())
    }

    /// The version a typed request goes out at. Prefer this to `negotiated_version` for
    /// kafka-protocol's message types: its `ApiKey::valid_versions` can name a version a
    /// message type cannot encode (OffsetFetch v10 in 0.18).
    pub fn version_for<R: Request>(&self) -> Option<i16> {
        self.inner
            .versions
            .negotiate(api_key_of::<R>(), R::VERSIONS)
    }

    /// Holds back this connection's next sends for `throttle_time_ms` (from a response).
    pub fn throttle(&self, throttle_time_ms: i32) {
        if let Ok(ms) = u64::try_from(throttle_time_ms) {
            if ms > 0 {
                self.inner.pipeline.throttle(Duration::from_millis(ms));
            }
        }
    }

    /// Sends `request` at the negotiated version and decodes the response.
    ///
    /// Fields the request sets must exist in that version (kafka-protocol refuses to encode
    /// a non-default field the version lacks): check [`Connection::negotiated_version`]
    /// first when building a request whose shape depends on the version.
    pub async fn request<R: Request>(&self, request: R) -> Result<R::Response, WireError> {
        let api = api_key_of::<R>();
        let version = self.checked_version(api, R::VERSIONS, None)?;
        self.send_request(api, version, &request).await
    }

    /// Sends `request` at exactly `version`, which both sides must speak.
    pub async fn request_at_version<R: Request>(
        &self,
        request: R,
        version: i16,
    ) -> Result<R::Response, WireError> {
        let api = api_key_of::<R>();
        let version = self.checked_version(api, R::VERSIONS, Some(version))?;
        self.send_request(api, version, &request).await
    }

    /// Sends a frame built by `build` (given the correlation id; it returns the whole frame,
    /// size prefix included, as chunks) and returns the response body after the response
    /// header. This is the vectored path for produce requests: see
    /// [`super::encode_produce_request`].
    pub async fn send_frame(
        &self,
        api: ApiKey,
        version: i16,
        build: impl FnOnce(i32) -> Vec<Bytes>,
    ) -> Result<Bytes, WireError> {
        let version = self.checked_version(api, api.valid_versions(), Some(version))?;
        self.inner
            .pipeline
            .send(
                |id| {
                    Ok(Outgoing {
                        api,
                        version,
                        chunks: build(id),
                    })
                },
                self.inner.request_timeout,
            )
            .await
    }

    async fn send_request<R: Request>(
        &self,
        api: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<R::Response, WireError> {
        let body = send_encoded(
            &self.inner.pipeline,
            &self.inner.client_id,
            api,
            version,
            request,
            self.inner.request_timeout,
        )
        .await?;
        decode_response_body(body, version).map_err(|source| WireError::Decode {
            api,
            version,
            broker: self.broker().to_string(),
            source,
        })
    }

    /// The version to use: `wanted` (or the highest common one) if both sides speak it.
    fn checked_version(
        &self,
        api: ApiKey,
        ours: VersionRange,
        wanted: Option<i16>,
    ) -> Result<i16, WireError> {
        let broker_range = self.inner.versions.range(api);
        let common = broker_range.map(|b| ours.intersect(&b));
        let chosen = match (common, wanted) {
            (Some(common), None) if !common.is_empty() => Some(common.max),
            (Some(common), Some(v)) if common.min <= v && v <= common.max => Some(v),
            _ => None,
        };
        chosen.ok_or_else(|| WireError::UnsupportedVersion {
            api,
            broker: self.broker().to_string(),
            ours: match wanted {
                Some(v) => (v, v),
                None => (ours.min, ours.max),
            },
            broker_range: broker_range.map(|r| (r.min, r.max)),
        })
    }
}

fn api_key_of<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("every kafka-protocol request type has a known API key")
}

async fn send_encoded<R: Request>(
    pipeline: &Pipeline,
    client_id: &str,
    api: ApiKey,
    version: i16,
    request: &R,
    timeout: Duration,
) -> Result<Bytes, WireError> {
    pipeline
        .send(
            |id| {
                let frame =
                    encode_request(api, version, id, client_id, request).map_err(|source| {
                        WireError::Encode {
                            api,
                            version,
                            broker: pipeline.broker().to_string(),
                            source,
                        }
                    })?;
                Ok(Outgoing {
                    api,
                    version,
                    chunks: vec![frame],
                })
            },
            timeout,
        )
        .await
}

async fn exchange_api_versions(
    pipeline: &Pipeline,
    config: &ConnectionConfig,
) -> Result<BrokerVersions, WireError> {
    let mut version = API_VERSIONS_FIRST_TRY;
    loop {
        let mut request = ApiVersionsRequest::default();
        if version >= 3 {
            request = request
                .with_client_software_name(StrBytes::from_static_str("strait"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        }
        let body = send_encoded(
            pipeline,
            &config.client_id,
            ApiKey::ApiVersions,
            version,
            &request,
            config.request_timeout,
        )
        .await?;
        let decode_error = |source| WireError::Decode {
            api: ApiKey::ApiVersions,
            version,
            broker: pipeline.broker().to_string(),
            source,
        };
        match decode_api_versions(body, version).map_err(decode_error)? {
            ApiVersionsOutcome::Supported(response) => {
                check_error_code(
                    ApiKey::ApiVersions,
                    pipeline.broker(),
                    response.error_code,
                    None,
                )?;
                return Ok(BrokerVersions::from_response(&response));
            }
            ApiVersionsOutcome::RetryWith(lower) if lower < version => {
                tracing::debug!(
                    broker = pipeline.broker(),
                    from = version,
                    to = lower,
                    "broker wants an older ApiVersions"
                );
                version = lower;
            }
            ApiVersionsOutcome::RetryWith(_) => {
                return Err(WireError::UnsupportedVersion {
                    api: ApiKey::ApiVersions,
                    broker: pipeline.broker().to_string(),
                    ours: (0, API_VERSIONS_FIRST_TRY),
                    broker_range: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plaintext_is_accepted_for_now() {
        assert_eq!(
            Transport::from_security_protocol("plaintext").unwrap(),
            Transport::Plaintext
        );
        for other in ["SSL", "SASL_SSL", "SASL_PLAINTEXT"] {
            let err = Transport::from_security_protocol(other).unwrap_err();
            assert!(err.to_string().contains(other), "{err}");
            assert!(!err.is_retriable());
        }
    }
}

//! One Kafka cluster: bootstrap, metadata, a connection pool and coordinator lookup.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use super::backoff::Backoff;
use super::connection::{Connection, ConnectionConfig};
use super::error::{check_error_code, WireError};
use super::metadata::{BrokerAddr, MetadataSnapshot};
use super::retry::retry_with;

/// What a connection is used for. Each broker gets one connection per purpose, because a
/// broker answers a connection's requests in order: a Fetch long-polling for `max_wait_ms`
/// must not hold up produce or admin requests queued behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Fetch,
    Produce,
    Admin,
}

/// The kind of coordinator to look up (FindCoordinator key_type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorType {
    Group,
    Transaction,
}

impl CoordinatorType {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }
}

/// A client for one cluster, cheap to clone. Connections are opened on first use and
/// replaced when they die.
#[derive(Clone)]
pub struct ClusterClient {
    inner: Arc<ClusterInner>,
}

/// One pooled connection. Its current connection is read without waiting, so that a
/// look at the open connections (`open_connections`) sees every one, also while a request
/// is taking it; the async lock makes concurrent callers share one connect.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Connection>>,
    opening: tokio::sync::Mutex<()>,
}

impl Slot {
    fn alive(&self) -> Option<Connection> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|c| c.is_alive())
            .cloned()
    }
}

struct ClusterInner {
    name: String,
    bootstrap: Vec<String>,
    config: ConnectionConfig,
    metadata: RwLock<Arc<MetadataSnapshot>>,
    /// Keyed by address rather than broker id so bootstrap servers share the pool.
    /// The lane tells apart several connections of one purpose to one broker.
    pool: Mutex<HashMap<(String, Purpose, u16), Arc<Slot>>>,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("name", &self.inner.name)
            .field("bootstrap", &self.inner.bootstrap)
            .finish()
    }
}

impl ClusterClient {
    /// `name` is the cluster alias used in messages; `bootstrap` holds "host:port" entries.
    pub fn new(name: &str, bootstrap: Vec<String>, config: ConnectionConfig) -> Self {
        Self {
            inner: Arc::new(ClusterInner {
                name: name.to_string(),
                bootstrap,
                config,
                metadata: RwLock::new(Arc::new(MetadataSnapshot {
                    controller_id: -1,
                    ..MetadataSnapshot::default()
                })),
                pool: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The latest metadata snapshot (empty until the first refresh).
    pub fn metadata(&self) -> Arc<MetadataSnapshot> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn replace_metadata(
        &self,
        update: impl FnOnce(&MetadataSnapshot) -> MetadataSnapshot,
    ) -> Arc<MetadataSnapshot> {
        let mut current = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let next = Arc::new(update(&current));
        *current = next.clone();
        next
    }

    /// Asks any reachable broker for metadata of `topics` (`None`: every topic) and merges
    /// the answer into the snapshot. Topics that do not exist come back with their error set.
    pub async fn refresh_metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<Arc<MetadataSnapshot>, WireError> {
        let connection = self.any_connection().await?;
        let version = connection
            .negotiated_version(ApiKey::Metadata)
            .ok_or_else(|| unsupported(&connection, ApiKey::Metadata))?;
        let mut request = MetadataRequest::default().with_topics(topics.as_ref().map(|names| {
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect()
        }));
        // Before v4 the field does not exist and brokers behave as if it were true.
        if version >= 4 {
            request.allow_auto_topic_creation = false;
        }
        let response = connection.request_at_version(request, version).await?;
        connection.throttle(response.throttle_time_ms);
        let fresh = MetadataSnapshot::from_response(&response);
        Ok(self.replace_metadata(|current| current.updated_with(fresh, topics.as_deref())))
    }

    /// Refreshes the brokers and the topics the snapshot already knows.
    async fn refresh_known_metadata(&self) -> Result<Arc<MetadataSnapshot>, WireError> {
        let known: Vec<String> = self.metadata().topics.keys().cloned().collect();
        self.refresh_metadata(Some(known)).await
    }

    /// The pooled connection to `broker` for `purpose`, opened if needed.
    pub async fn connection(&self, broker: i32, purpose: Purpose) -> Result<Connection, WireError> {
        self.connection_lane(broker, purpose, 0).await
    }

    /// Connection number `lane` to `broker` for `purpose`: several fetch connections to
    /// one broker keep more bytes in flight on a long link than one socket's buffers allow.
    pub async fn connection_lane(
        &self,
        broker: i32,
        purpose: Purpose,
        lane: u16,
    ) -> Result<Connection, WireError> {
        let address =
            self.metadata()
                .broker_address(broker)
                .ok_or_else(|| WireError::UnknownBroker {
                    cluster: self.inner.name.clone(),
                    broker_id: broker,
                })?;
        self.pooled(&address, purpose, lane).await
    }

    /// Forgets connection number `lane` to `broker` for `purpose`: the next request on the
    /// lane opens a new one, while requests on their way finish on the old one, which
    /// closes once they have.
    pub fn retire_lane(&self, broker: i32, purpose: Purpose, lane: u16) {
        if let Some(address) = self.metadata().broker_address(broker) {
            self.inner
                .pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(address, purpose, lane));
        }
    }

    /// The open connections for `purpose`, not those still being opened (never waits):
    /// the kernel's measurements on them describe the path to this cluster.
    pub fn open_connections(&self, purpose: Purpose) -> Vec<Connection> {
        self.inner
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((_, slot_purpose, _), _)| *slot_purpose == purpose)
            .filter_map(|(_, slot)| slot.alive())
            .collect()
    }

    /// The open connection to `broker` for `purpose` (its first lane), if there is one;
    /// never waits or connects.
    pub fn open_connection(&self, broker: i32, purpose: Purpose) -> Option<Connection> {
        let address = self.metadata().broker_address(broker)?;
        self.inner
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(address, purpose, 0))
            .and_then(|slot| slot.alive())
    }

    /// The pooled connection to `address` ("host:port") for `purpose`, opened if needed.
    pub async fn connection_to(
        &self,
        address: &str,
        purpose: Purpose,
    ) -> Result<Connection, WireError> {
        self.pooled(address, purpose, 0).await
    }

    async fn pooled(
        &self,
        address: &str,
        purpose: Purpose,
        lane: u16,
    ) -> Result<Connection, WireError> {
        let slot = self
            .inner
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((address.to_string(), purpose, lane))
            .or_default()
            .clone();
        if let Some(connection) = slot.alive() {
            return Ok(connection);
        }
        let _opening = slot.opening.lock().await;
        // Another caller may have opened it while this one waited.
        if let Some(connection) = slot.alive() {
            return Ok(connection);
        }
        let connection = Connection::connect(address, &self.inner.config).await?;
        *slot.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    /// An admin connection to any reachable broker: known brokers first, then bootstrap.
    pub async fn any_connection(&self) -> Result<Connection, WireError> {
        let mut candidates: Vec<(i32, String)> = self
            .metadata()
            .brokers
            .iter()
            .map(|(id, addr)| (*id, addr.address()))
            .collect();
        candidates.sort();
        let mut addresses: Vec<String> = candidates.into_iter().map(|(_, a)| a).collect();
        addresses.extend(self.inner.bootstrap.iter().cloned());
        addresses.dedup();

        if let Some(alive) = self.alive_admin_connection(&addresses) {
            return Ok(alive);
        }
        let mut last = None;
        for address in &addresses {
            match self.connection_to(address, Purpose::Admin).await {
                Ok(connection) => return Ok(connection),
                Err(e) => {
                    tracing::debug!(cluster = %self.inner.name, broker = %address, error = %e, "broker unreachable");
                    last = Some(Box::new(e));
                }
            }
        }
        Err(WireError::NoBrokerAvailable {
            cluster: self.inner.name.clone(),
            tried: addresses.join(", "),
            last,
        })
    }

    fn alive_admin_connection(&self, addresses: &[String]) -> Option<Connection> {
        let pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        addresses
            .iter()
            .find_map(|address| pool.get(&(address.clone(), Purpose::Admin, 0))?.alive())
    }

    /// Sends `request` to `broker` on its `purpose` connection at the negotiated version.
    pub async fn send<R: Request>(
        &self,
        broker: i32,
        purpose: Purpose,
        request: R,
    ) -> Result<R::Response, WireError> {
        self.connection(broker, purpose)
            .await?
            .request(request)
            .await
    }

    /// Sends `request` to any reachable broker on an admin connection.
    pub async fn send_any<R: Request>(&self, request: R) -> Result<R::Response, WireError> {
        self.any_connection().await?.request(request).await
    }

    /// The broker id coordinating `key` (a group id or a transactional id).
    pub async fn find_coordinator(
        &self,
        key: &str,
        coordinator_type: CoordinatorType,
    ) -> Result<i32, WireError> {
        let connection = self.any_connection().await?;
        let version = connection
            .negotiated_version(ApiKey::FindCoordinator)
            .ok_or_else(|| unsupported(&connection, ApiKey::FindCoordinator))?;
        let key = StrBytes::from_string(key.to_string());
        let mut request = FindCoordinatorRequest::default();
        if version >= 4 {
            request.coordinator_keys = vec![key];
        } else {
            request.key = key;
        }
        if coordinator_type != CoordinatorType::Group {
            if version == 0 {
                return Err(unsupported(&connection, ApiKey::FindCoordinator));
            }
            request.key_type = coordinator_type.key_type();
        }
        let response = connection.request_at_version(request, version).await?;
        connection.throttle(response.throttle_time_ms);
        let (error_code, message, node_id, host, port) = if version >= 4 {
            let found =
                response
                    .coordinators
                    .into_iter()
                    .next()
                    .ok_or_else(|| WireError::Decode {
                        api: ApiKey::FindCoordinator,
                        version,
                        broker: connection.broker().to_string(),
                        source: anyhow::anyhow!("FindCoordinator response without coordinators"),
                    })?;
            (
                found.error_code,
                found.error_message,
                found.node_id,
                found.host,
                found.port,
            )
        } else {
            (
                response.error_code,
                response.error_message,
                response.node_id,
                response.host,
                response.port,
            )
        };
        check_error_code(
            ApiKey::FindCoordinator,
            connection.broker(),
            error_code,
            message.as_deref(),
        )?;
        let broker_id = node_id.0;
        if !self.metadata().brokers.contains_key(&broker_id) {
            self.replace_metadata(|current| {
                let mut next = current.clone();
                next.brokers.insert(
                    broker_id,
                    BrokerAddr {
                        host: host.to_string(),
                        port,
                        rack: None,
                    },
                );
                next
            });
        }
        Ok(broker_id)
    }

    /// Runs `op` until it succeeds, fails for good, or `max_elapsed` would be exceeded,
    /// refreshing metadata after errors that say it is stale.
    pub async fn retry<T, Op, OpFut>(
        &self,
        backoff: &Backoff,
        max_elapsed: Duration,
        op: Op,
    ) -> Result<T, WireError>
    where
        Op: FnMut() -> OpFut,
        OpFut: Future<Output = Result<T, WireError>>,
    {
        retry_with(backoff, max_elapsed, op, |error| async move {
            if error.invalidates_metadata() {
                if let Err(e) = self.refresh_known_metadata().await {
                    tracing::debug!(cluster = %self.inner.name, error = %e, "metadata refresh failed");
                }
            }
        })
        .await
    }
}

fn unsupported(connection: &Connection, api: ApiKey) -> WireError {
    let ours = api.valid_versions();
    WireError::UnsupportedVersion {
        api,
        broker: connection.broker().to_string(),
        ours: (ours.min, ours.max),
        broker_range: connection.broker_versions(api).map(|r| (r.min, r.max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_bootstrap_is_reported_with_the_addresses_tried() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dead = format!("127.0.0.1:{port}");
        let cluster =
            ClusterClient::new("nowhere", vec![dead.clone()], ConnectionConfig::default());
        let error = cluster.refresh_metadata(None).await.unwrap_err();
        assert!(
            matches!(error, WireError::NoBrokerAvailable { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(&dead));
        assert!(error.is_retriable());
    }

    #[tokio::test]
    async fn unknown_broker_id_asks_for_a_metadata_refresh() {
        let cluster = ClusterClient::new("c", vec![], ConnectionConfig::default());
        let error = cluster.connection(7, Purpose::Produce).await.unwrap_err();
        assert!(
            matches!(error, WireError::UnknownBroker { broker_id: 7, .. }),
            "{error:?}"
        );
        assert!(error.invalidates_metadata());
    }
}

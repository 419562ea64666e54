//! The Kafka wire layer: framing, version negotiation, pipelined connections, a cluster
//! client with a per-purpose connection pool, and the zero-copy produce encoder.
//!
//! Pure (no I/O): `frame`, `produce_encode`, `versions`, `metadata`, `backoff`.
//! Drivers: `socket`, `pipeline`, `connection`, `cluster`, `retry`, `produce_send`.

mod backoff;
mod cluster;
mod connection;
mod error;
mod frame;
mod metadata;
mod pipeline;
mod produce_encode;
mod produce_send;
mod retry;
mod socket;
mod versions;

pub use backoff::{Backoff, Jitter};
pub use cluster::{ClusterClient, CoordinatorType, Purpose};
pub use connection::{Connection, ConnectionConfig, Transport};
pub use error::{check_error_code, WireError};
pub use frame::{
    correlation_id, decode_response_body, encode_request, split_response_header, FrameDecoder,
    FrameTooLarge,
};
pub use metadata::{BrokerAddr, MetadataSnapshot, PartitionMeta, TopicMeta};
pub use produce_encode::{encode_produce_request, ProduceTopicBatches, PRODUCE_VERSIONS};
pub use produce_send::send_produce;
pub use retry::retry_with;
pub use socket::{check_congestion_control, connect_tcp, tcp_stats, SocketOptions, TcpStats};
pub use versions::BrokerVersions;

#[cfg(test)]
mod connection_tests;

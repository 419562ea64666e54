//! The replication engine: per-partition state and ingest logic (pure) and the flow
//! driver that runs them against two clusters.

mod error;
mod flow;
mod ingest;
mod outcome;
mod partition;
mod setup;
mod spec;
mod stats;

pub use error::EngineError;
pub use flow::{FlowReport, FlowRunner};
pub use ingest::{ingest, IngestError, Ingested};
pub use partition::{Fetched, PartitionState, MAX_UNSETTLED_BATCHES};
pub use spec::{ClusterEndpoint, FlowSpec, StartPosition, TopicRoute};
pub use stats::{human_bytes, FlowCounters};

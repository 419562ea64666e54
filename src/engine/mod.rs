//! The replication engine: per-partition state and ingest logic (pure) and the flow
//! driver that runs them against two clusters.

mod diagnosis;
mod error;
mod events;
mod fetch_lanes;
mod fetch_session;
mod flow;
mod ingest;
mod lanes;
mod log_shape;
mod outcome;
mod partition;
mod read_ahead;
mod routes;
mod setup;
mod source_links;
mod spec;
mod stats;
mod target_path;

pub use error::EngineError;
pub use events::{FlowEvent, RouteInfo};
pub use flow::{FlowReport, FlowRunner};
pub use ingest::{ingest, IngestError, Ingested};
pub use lanes::memory_budget;
pub use partition::{Fetched, MappedBatch, PartitionState, MAX_UNSETTLED_BATCHES};
pub use spec::{ClusterEndpoint, Discovery, FlowSpec, StartPosition, TopicRoute, TopicSelector};
pub use stats::{human_bytes, FlowCounters};

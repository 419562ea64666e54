//! strait: a Kafka cross-cluster mirror that forwards fetched record batches into
//! produce requests without decoding them.

pub mod batch;
pub mod config;
pub mod engine;
pub mod failover;
pub mod offsets;
pub mod plan;
pub mod run;
pub mod topology;
pub mod tune;
pub mod wire;

//! Record batches: splitting a fetched `records` blob into whole batches, filtering
//! control and aborted batches, patching the header for the target (fast path, the
//! records payload is never copied) and rebuilding what the fast path cannot carry
//! (slow path). Pure: no I/O.

mod aborted;
mod compression;
mod control;
mod crc_combine;
mod error;
pub mod header;
mod legacy;
mod lz4_frame;
mod patch;
mod records;
mod slow;
mod snappy_xerial;
mod split;

#[cfg(test)]
mod kafka_fixtures;
#[cfg(test)]
pub(crate) mod test_support;

pub use aborted::AbortedTransactions;
pub use control::{control_marker, ControlMarker};
pub use error::BatchError;
pub use header::{Compression, RecordBatch};
pub use patch::{patch, PatchedBatch, ProducerStamp, VerifiedBatch};
pub use records::{decode_records, encode_batch, Header, Record};
pub use slow::{
    coalesce, convert_legacy, rebuild, slow_reason, RebuiltBatch, SlowPathCounts, SlowReason,
};
pub use split::{split_records, LegacyEntry, RawEntry, SplitRecords};

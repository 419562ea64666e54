//! Consumer failover across a flow: the exact offset maps kept from the flow's
//! events and persisted on the target, MM2's offset syncs, checkpoints and
//! heartbeats, group offset sync, taking over from MM2, and the `strait offsets`
//! commands. Thin tokio drivers over the pure `offsets` module.

mod commands;
mod error;
mod groups;
mod internal_topic;
mod map_key;
mod maps;
mod takeover;
mod task;

pub use commands::{GroupPosition, OffsetsView};
pub use error::FailoverError;
pub use map_key::offset_maps_topic;
pub use takeover::{mm2_progress, take_over_from_mm2};
pub use task::{load_maps, FailoverSettings, FailoverTask};

//! Errors of `strait tune`'s inputs.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TuneError {
    #[error("--rtt {value:?}: {reason} — write a round-trip time such as 100ms or 0.3s")]
    Rtt { value: String, reason: String },

    #[error("--bandwidth {value:?}: {reason} — write bits per second such as 1gbit or 500mbit")]
    Bandwidth { value: String, reason: String },
}

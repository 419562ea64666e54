//! `strait tune`: given a link's round-trip time and rate, the bandwidth-delay product,
//! what in the kernel (and in a mirror's settings) keeps one TCP connection from filling
//! the link, and the settings that fix it. Pure computation over values read through
//! [`SysctlSource`]; `tuning/README.md` explains each knob with measured figures.

mod advice;
mod error;
mod format;
mod kernel;
mod link;
mod measure;
mod report;

pub use advice::{
    advise, Advice, Check, ConnectionCap, FlowSettings, StraitSettings, SysctlChange, Verdict,
    BUFFER_FACTOR,
};
pub use error::TuneError;
pub use kernel::{KernelLimits, ProcSys, SysctlSource};
pub use link::{parse_bandwidth, parse_rtt, LinkSpec};
pub use measure::{measure_rtt, path_rtt, HANDSHAKES};

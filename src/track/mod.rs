//! The tracker. A [`Session`] takes frames one at a time and runs, per frame, the same steps:
//! backbone features → per-object decision ([`decide`], with the [`gate`] policy) → the path
//! each object takes ([`paths`]: given, computed by the [`tracker`], reused, copied) → the
//! [`merge`] across objects → the tracker models' update. Each object's state is one
//! [`object::ObjectState`]. [`video`] drives a session over a whole video.

pub mod config;
pub mod decide;
pub mod flops;
pub mod flow;
pub mod gate;
pub mod keys;
pub mod merge;
pub mod object;
pub mod paths;
pub mod safety;
pub mod session;
pub mod timing;
pub mod tracker;
pub mod video;

pub use config::{DEFAULT_MAX_SIDE, TrackerConfig, TrackingSize};
pub use object::ObjectFrame;
pub use session::{FrameOutput, Session};
pub use timing::StageTimes;
pub use tracker::TrackerKind;

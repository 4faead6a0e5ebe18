//! reuse-vos: semi-supervised video object segmentation on the CPU with a learned reuse gate
//! (Park et al., "Learning Dynamic Network Using a Reuse Gate Function in Semi-supervised VOS").
//!
//! Data flows through the modules in this order: [`io`] (frames and masks in) → backbone
//! features → per-object state → gate → full or reuse path → mask → merge → outputs, and
//! [`metrics`] scores the outputs against ground truth exactly as the DAVIS toolkit does.

pub mod engine;
pub mod error;
pub mod io;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod output;
pub mod track;

pub use error::{Error, Result};

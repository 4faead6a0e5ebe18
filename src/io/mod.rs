//! Frames and masks in and out, and the dataset layouts (DAVIS 2016/2017, YouTube-VOS).

pub mod atomic;
pub mod cache;
pub mod dataset;
pub mod ffmpeg;
pub mod frame;
pub mod mask;
pub mod palette;
pub mod prefetch;
pub mod source;

pub use dataset::{Dataset, DatasetKind, SequenceInfo};
pub use frame::{Frame, list_images};
pub use mask::{Mask, MaskEncoding};

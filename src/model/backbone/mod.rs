//! The frozen MobileNetV2 backbone (torchvision, ImageNet weights) as a feature pyramid.
//!
//! Taps: stride 4 = `features.3` (24 ch), stride 8 = `features.6` (32 ch), stride 16 =
//! `features.13` (96 ch), stride 32 = `features.17` (320 ch). The network is split at stride 8
//! into a *low* part (blocks 0–6, always run) and a *high* part (blocks 7–17, skipped on
//! reused frames).
//!
//! Sizes: any H×W. Every stride-2 convolution has padding 1 as in torchvision, so each level is
//! ceil(previous / 2): 480×854 gives 120×214 at stride 4, 60×107 at 8, 30×54 at 16, 15×27 at 32.
//! Nothing is padded or resized; later stages upsample to the exact size of the level they meet.

pub mod net;
pub mod spec;

pub use net::{MobileNetV2, MobileNetV2Config};
pub use spec::{BackboneSpec, Block, ConvLayer};

use crate::io::Frame;
use crate::model::FeatureMap;

/// The four taps of one frame.
#[derive(Clone, Debug)]
pub struct Pyramid {
    pub s4: FeatureMap,
    pub s8: FeatureMap,
    pub s16: FeatureMap,
    pub s32: FeatureMap,
}

/// The low part of the pyramid (all a reused frame needs).
#[derive(Clone, Debug)]
pub struct LowFeatures {
    pub s4: FeatureMap,
    pub s8: FeatureMap,
}

/// The high part, computed from stride 8.
#[derive(Clone, Debug)]
pub struct HighFeatures {
    pub s16: FeatureMap,
    pub s32: FeatureMap,
}

/// The feature index of each tap, and how many blocks the low part holds.
pub const TAP_S4: usize = 3;
pub const TAP_S8: usize = 6;
pub const TAP_S16: usize = 13;
pub const TAP_S32: usize = 17;
/// Blocks `0..LOW_BLOCKS` make the low part; `LOW_BLOCKS..=TAP_S32` the high part.
pub const LOW_BLOCKS: usize = TAP_S8 + 1;

/// ImageNet normalisation, as torchvision's weights expect.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The network input for a frame: RGB/255, normalised with the ImageNet mean and std, NCHW.
pub fn normalize(frame: &Frame) -> FeatureMap {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut data = vec![0f32; 3 * w * h];
    let (r, rest) = data.split_at_mut(w * h);
    let (g, b) = rest.split_at_mut(w * h);
    let planes = [r, g, b];
    for (i, px) in frame.rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            planes[c][i] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    FeatureMap::new(3, h, w, data)
}

impl Pyramid {
    pub fn from_parts(low: LowFeatures, high: HighFeatures) -> Pyramid {
        Pyramid {
            s4: low.s4,
            s8: low.s8,
            s16: high.s16,
            s32: high.s32,
        }
    }

    /// The taps with their names, in stride order.
    pub fn named(&self) -> [(&'static str, &FeatureMap); 4] {
        [
            ("s4", &self.s4),
            ("s8", &self.s8),
            ("s16", &self.s16),
            ("s32", &self.s32),
        ]
    }
}

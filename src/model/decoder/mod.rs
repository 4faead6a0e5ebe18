//! The refinement decoder (FRTM's structure, made lighter for the CPU): from the deepest level
//! (stride 32) to stride 4, each level enhances its backbone features with the target model's
//! score (TSE), merges the coarser level through channel attention (CAB), refines with a
//! residual block (RRB); a small head predicts the mask logits at stride 4, which are upsampled
//! to the image (bilinear) outside the network.
//!
//! The decoder is split after the stride-16 level: the *deep* part (s32, s16) is what a reused
//! frame skips, the *shallow* part (s8, s4 and the head) always runs on the decoder state.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// Levels in processing order: strides 32, 16, 8, 4.
pub const STRIDES: [usize; 4] = [32, 16, 8, 4];
/// Levels 0..DEEP_LEVELS are the deep part.
pub const DEEP_LEVELS: usize = 2;

#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Backbone channels at strides 32, 16, 8, 4 (MobileNetV2 taps).
    #[config(default = "[320, 96, 32, 24]")]
    pub feature_channels: [usize; 4],
    /// Decoder channels at strides 32, 16, 8, 4.
    #[config(default = "[32, 32, 32, 16]")]
    pub channels: [usize; 4],
    /// Channels of the tracker's score it reads (FRTM or memory: 1; fusion: 2).
    #[config(default = 1)]
    pub score_channels: usize,
    /// The tracker whose scores it was trained on (`frtm`, `memory`, `fusion`).
    #[config(default = "String::from(\"frtm\")")]
    pub trained_on: String,
    /// What the memory matched when it was trained (`dinov2s`; None: MobileNetV2's features —
    /// configs written before the field existed have none, and their decoders read those).
    #[config(default = "None")]
    pub matching: Option<String>,
}

fn conv(cin: usize, cout: usize, k: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device)
}

/// Bilinear resize to `[h, w]`, half-pixel centres (PyTorch's align_corners=False).
pub fn resize(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [_, _, xh, xw] = x.dims();
    if (xh, xw) == (h, w) {
        return x;
    }
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([h, w]),
    )
}

/// Global average pool to `[B, C, 1, 1]`.
fn gap(x: Tensor<4>) -> Tensor<4> {
    x.mean_dim(3).mean_dim(2)
}

/// Target-score enhancement: reduce the features, append the score, fuse.
#[derive(Module, Debug)]
pub struct Tse {
    pub reduce1: Conv2d,
    pub reduce2: Conv2d,
    pub fuse1: Conv2d,
    pub fuse2: Conv2d,
}

impl Tse {
    fn new(cin: usize, d: usize, score: usize, device: &Device) -> Tse {
        Tse {
            reduce1: conv(cin, d, 1, device),
            reduce2: conv(d, d, 1, device),
            fuse1: conv(d + score, d, 3, device),
            fuse2: conv(d, d, 3, device),
        }
    }
    fn forward(&self, f: Tensor<4>, score: Tensor<4>) -> Tensor<4> {
        let h = self.reduce2.forward(relu(self.reduce1.forward(f)));
        let h = Tensor::cat(vec![h, score], 1);
        relu(self.fuse2.forward(relu(self.fuse1.forward(h))))
    }
}

/// Channel attention between this level and the (upsampled) coarser one.
#[derive(Module, Debug)]
pub struct Cab {
    pub att1: Conv2d,
    pub att2: Conv2d,
}

impl Cab {
    fn forward(&self, shallow: Tensor<4>, deep_up: Tensor<4>) -> Tensor<4> {
        let pooled = Tensor::cat(vec![gap(shallow.clone()), gap(deep_up.clone())], 1);
        let att = sigmoid(self.att2.forward(relu(self.att1.forward(pooled))));
        shallow * att + deep_up
    }
}

/// Residual refinement block: 1×1, then x + conv3×3(ReLU(conv3×3(x))), ReLU.
#[derive(Module, Debug)]
pub struct Rrb {
    pub inner: Conv2d,
    pub conv_a: Conv2d,
    pub conv_b: Conv2d,
}

impl Rrb {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.inner.forward(x);
        relu(y.clone() + self.conv_b.forward(relu(self.conv_a.forward(y))))
    }
}

/// One level of the decoder.
#[derive(Module, Debug)]
pub struct Level {
    pub tse: Tse,
    /// Matches the coarser level's channels to this one's (absent when equal or deepest).
    pub adapt: Option<Conv2d>,
    pub cab: Option<Cab>,
    pub rrb: Rrb,
}

impl Level {
    fn forward(&self, f: Tensor<4>, score: Tensor<4>, prev: Option<Tensor<4>>) -> Tensor<4> {
        let [_, _, h, w] = f.dims();
        let x = self.tse.forward(f, resize(score, h, w));
        let x = match (prev, &self.cab) {
            (Some(p), Some(cab)) => {
                let p = match &self.adapt {
                    Some(a) => a.forward(p),
                    None => p,
                };
                cab.forward(x, resize(p, h, w))
            }
            _ => x,
        };
        self.rrb.forward(x)
    }
}

/// The decoder.
#[derive(Module, Debug)]
pub struct Decoder {
    pub levels: Vec<Level>,
    pub head1: Conv2d,
    pub head2: Conv2d,
}

/// Backbone taps in the order the decoder consumes them (strides 32, 16, 8, 4).
pub struct DecoderInput<T> {
    pub s32: T,
    pub s16: T,
    pub s8: T,
    pub s4: T,
}

impl DecoderConfig {
    pub fn init(&self, device: &Device) -> Decoder {
        let d = self.channels;
        let levels = (0..4)
            .map(|i| Level {
                tse: Tse::new(self.feature_channels[i], d[i], self.score_channels, device),
                adapt: (i > 0 && d[i - 1] != d[i]).then(|| conv(d[i - 1], d[i], 1, device)),
                cab: (i > 0).then(|| Cab {
                    att1: conv(2 * d[i], d[i], 1, device),
                    att2: conv(d[i], d[i], 1, device),
                }),
                rrb: Rrb {
                    inner: conv(d[i], d[i], 1, device),
                    conv_a: conv(d[i], d[i], 3, device),
                    conv_b: conv(d[i], d[i], 3, device),
                },
            })
            .collect();
        let last = d[3];
        Decoder {
            levels,
            head1: conv(last, (last / 2).max(1), 3, device),
            head2: conv((last / 2).max(1), 1, 3, device),
        }
    }
}

impl Decoder {
    /// The deep part: levels s32 and s16 → the decoder state at stride 16.
    pub fn forward_deep(&self, s32: Tensor<4>, s16: Tensor<4>, score: Tensor<4>) -> Tensor<4> {
        let x = self.levels[0].forward(s32, score.clone(), None);
        self.levels[1].forward(s16, score, Some(x))
    }

    /// The shallow part: the stride-16 state with the s8 and s4 features → logits at stride 4.
    pub fn forward_shallow(
        &self,
        state: Tensor<4>,
        s8: Tensor<4>,
        s4: Tensor<4>,
        score: Tensor<4>,
    ) -> Tensor<4> {
        let x = self.levels[2].forward(s8, score.clone(), Some(state));
        let x = self.levels[3].forward(s4, score, Some(x));
        self.head2.forward(relu(self.head1.forward(x)))
    }

    /// Mask logits at stride 4 from the four taps and the target score (stride 16, 1 channel).
    pub fn forward(&self, f: DecoderInput<Tensor<4>>, score: Tensor<4>) -> Tensor<4> {
        let state = self.forward_deep(f.s32, f.s16, score.clone());
        self.forward_shallow(state, f.s8, f.s4, score)
    }
}

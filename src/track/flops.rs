//! Analytic operation counts of each stage at a frame size, so "computation saved" is the
//! count of the path actually taken (multiply-accumulates; 1 MAC = 2 FLOPs). Bilinear
//! resizes, pooling and element-wise operations are left out; the target model's filter
//! refinement (every 8 computed frames) is left out too.

use crate::model::backbone::{BackboneSpec, LOW_BLOCKS, TAP_S32};
use crate::model::decoder::{Decoder, Level};
use crate::model::reuse::ReuseNet;
use burn::nn::conv::Conv2d;

/// MACs of one convolution producing `oh`×`ow`.
fn conv(c: &Conv2d, (oh, ow): (usize, usize)) -> u64 {
    let [cout, cin_g, kh, kw] = c.weight.val().dims();
    (cout * cin_g * kh * kw * oh * ow) as u64
}

fn level(l: &Level, at: (usize, usize), coarser: (usize, usize)) -> u64 {
    let mut m = conv(&l.tse.reduce1, at)
        + conv(&l.tse.reduce2, at)
        + conv(&l.tse.fuse1, at)
        + conv(&l.tse.fuse2, at)
        + conv(&l.rrb.inner, at)
        + conv(&l.rrb.conv_a, at)
        + conv(&l.rrb.conv_b, at);
    if let Some(a) = &l.adapt {
        m += conv(a, coarser);
    }
    if let Some(c) = &l.cab {
        m += conv(&c.att1, (1, 1)) + conv(&c.att2, (1, 1));
    }
    m
}

/// MACs per stage for one frame size.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct StageMacs {
    pub backbone_low: u64,
    pub backbone_high: u64,
    /// The matching backbone (DINOv2), on frames that compute keys.
    pub keys: u64,
    /// Per object: the tracker's score (FRTM: projection and filter of the target model).
    pub target: u64,
    pub decoder_deep: u64,
    pub decoder_shallow: u64,
    /// Per object: template matching, gate and Δ.
    pub gate: u64,
    /// Per object: the refine-translator.
    pub translate: u64,
}

/// Sizes of the four taps: strides 4, 8, 16, 32.
pub type TapSizes = [(usize, usize); 4];

impl StageMacs {
    pub fn new(
        backbone: &BackboneSpec,
        decoder: &Decoder,
        reuse: Option<&ReuseNet>,
        target: u64,
        image: (usize, usize),
        taps: TapSizes,
    ) -> StageMacs {
        let [s4, s8, s16, s32] = taps;
        let (low, _, _) = backbone.macs(0..LOW_BLOCKS, image.0, image.1);
        let (high, _, _) = backbone.macs(LOW_BLOCKS..TAP_S32 + 1, s8.0, s8.1);
        let l = &decoder.levels;
        let mut m = StageMacs {
            backbone_low: low,
            backbone_high: high,
            target,
            decoder_deep: level(&l[0], s32, s32) + level(&l[1], s16, s32),
            decoder_shallow: level(&l[2], s8, s16)
                + level(&l[3], s4, s8)
                + conv(&decoder.head1, s4)
                + conv(&decoder.head2, s4),
            ..Default::default()
        };
        if let Some(r) = reuse {
            let branch =
                |b: &crate::model::reuse::Branch| conv(&b.reduce, s8) + conv(&b.spread, s8);
            let k = r.key_channels();
            let pooled = (s8.0 / 4, s8.1 / 4);
            let gate_out = (pooled.0.div_ceil(2), pooled.1.div_ceil(2));
            m.gate = branch(&r.match_key)
                + branch(&r.match_feat)
                + (k * k * s8.0 * s8.1) as u64
                + conv(&r.blend_spread, s8)
                + conv(&r.blend_reduce, s8)
                + conv(&r.delta, s16)
                + conv(&r.gate_conv, gate_out)
                + conv(&r.gate_out, (1, 1));
            m.translate = conv(&r.translate_d1, s16)
                + conv(&r.translate_d2, s16)
                + conv(&r.translate_d3, s16)
                + conv(&r.translate_fuse, s16)
                + conv(&r.translate_rrb.inner, s16)
                + conv(&r.translate_rrb.conv_a, s16)
                + conv(&r.translate_rrb.conv_b, s16);
        }
        m
    }
}

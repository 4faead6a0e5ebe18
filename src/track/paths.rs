//! Step 3 of a frame: the path each object's mask comes from. Each returns the object's
//! probability at the image size and the multiply-accumulates it cost.

use super::decide::Followed;
use super::flops::StageMacs;
use super::gate::ReuseMode;
use super::object::{ObjectState, ReuseMemory};
use super::timing::{Stage, StageTimes};
use super::tracker::{DeepFeatures, FrameFeatures, Prior};
use crate::engine::{DecoderEngine, ReuseEngine};
use crate::error::Result;
use crate::io::Mask;
use crate::model::FeatureMap;
use crate::model::tensor::resize_bilinear;

/// What one object's path produced.
pub struct PathResult {
    /// Full-resolution probability (given masks: 0/1).
    pub probability: Vec<f32>,
    pub macs: u64,
}

/// The engines and figures every path of one frame shares.
pub struct PathContext<'a> {
    /// None: the tracker's score is the probability (no decoder).
    pub decoder: Option<&'a mut dyn DecoderEngine>,
    pub features: &'a FrameFeatures,
    pub stage: &'a StageMacs,
    /// The image size `(w, h)`.
    pub size: (usize, usize),
    pub times: &'a mut StageTimes,
}

/// The user's mask, as a 0/1 probability.
pub fn given(mask: &Mask, id: u8) -> PathResult {
    PathResult {
        probability: mask.ids.iter().map(|&v| f32::from(v == id)).collect(),
        macs: 0,
    }
}

/// The previous frame's probability, as it was (the paper's "copy"); with `follow`, the last
/// computed frame's probability moved by the object's shift or warped by its blocks' motion (a
/// copy that follows the object).
pub fn copied(
    object: &mut ObjectState,
    follow: Option<&Followed>,
    size: (usize, usize),
) -> PathResult {
    let kept = object.anchor.as_ref().and_then(|a| a.probability.as_ref());
    let probability = match (follow, kept) {
        (Some(follow), Some(p)) => follow.apply(p, size),
        _ => std::mem::take(&mut object.previous),
    };
    PathResult {
        probability,
        macs: 0,
    }
}

/// The full path: the tracker's score, the decoder's deep and shallow stages. The object's
/// stored reuse state becomes this frame's. `stale`: on a stale-keys frame, how the object
/// moved since its last computed one (see [`Prior`]).
pub fn computed(
    ctx: &mut PathContext,
    deep: &DeepFeatures,
    object: &mut ObjectState,
    truth: Option<&Mask>,
    stale: Option<&Followed>,
) -> Result<PathResult> {
    let low = &ctx.features.low;
    let size = ctx.size;
    let prior = stale.map(|follow| Prior { follow, size });
    let score = ctx
        .times
        .time(Stage::Target, || object.model.score(low, deep, prior));
    let Some(decoder) = ctx.decoder.as_deref_mut() else {
        let (w, h) = size;
        let up = resize_bilinear(&score.data, score.height, score.width, h, w);
        return Ok(PathResult {
            probability: up.into_iter().map(|p| p.clamp(0.0, 1.0)).collect(),
            macs: ctx.stage.target,
        });
    };
    let (state, probability) = ctx.times.time(Stage::Decoder, || -> Result<_> {
        let state = decoder.deep(&deep.high.s32, &deep.high.s16, &score)?;
        let logits = decoder.shallow(&state, &low.s8, &low.s4, &score)?;
        Ok((state, to_probability(&logits, size)))
    })?;
    if let Some(mem) = &mut object.reuse {
        mem.score = score;
        mem.state = state;
        mem.s8 = low.s8.clone();
        if let Some(gt) = truth {
            mem.truth = Some(gt.ids.iter().map(|&v| v == object.id).collect());
        }
    }
    let s = ctx.stage;
    Ok(PathResult {
        probability,
        macs: s.target + s.decoder_deep + s.decoder_shallow,
    })
}

/// The reuse path: the stored score and decoder state (moved by Δ and the refine-translator in
/// the modes that ask for it) through the shallow decoder stages on this frame's features.
pub fn reused(
    ctx: &mut PathContext,
    reuse: &mut dyn ReuseEngine,
    mem: &ReuseMemory,
    delta: &FeatureMap,
    mode: ReuseMode,
) -> Result<PathResult> {
    let translated = match mode.translates() {
        true => Some(
            ctx.times
                .time(Stage::Gate, || reuse.translate(&mem.state, delta))?,
        ),
        false => None,
    };
    // Δ moves the first score channel (trackers other than FRTM score at stride 8: Δ, at
    // stride 16, is resized to it).
    let moved = mode.adds_delta().then(|| {
        let s = &mem.score;
        let d = resize_bilinear(&delta.data, delta.height, delta.width, s.height, s.width);
        let mut data = s.data.clone();
        data.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
        FeatureMap::new(s.channels, s.height, s.width, data)
    });
    let state = translated.as_ref().unwrap_or(&mem.state);
    let score = moved.as_ref().unwrap_or(&mem.score);
    let low = &ctx.features.low;
    let size = ctx.size;
    let decoder = ctx
        .decoder
        .as_deref_mut()
        .ok_or_else(|| crate::error::Error::Invalid("the reuse path needs the decoder".into()))?;
    let probability = ctx.times.time(Stage::Decoder, || -> Result<_> {
        let logits = decoder.shallow(state, &low.s8, &low.s4, score)?;
        Ok(to_probability(&logits, size))
    })?;
    let translate = if mode.translates() {
        ctx.stage.translate
    } else {
        0
    };
    Ok(PathResult {
        probability,
        macs: translate + ctx.stage.decoder_shallow,
    })
}

/// Stride-4 logits → probabilities at the image size.
fn to_probability(logits: &FeatureMap, (w, h): (usize, usize)) -> Vec<f32> {
    let up = resize_bilinear(&logits.data, logits.height, logits.width, h, w);
    up.into_iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect()
}

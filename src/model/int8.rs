//! Static int8 for the backbone: the value ranges measured on DAVIS frames (calibration) and
//! the quantisation of weights and activations the QDQ graphs use.

use crate::model::backbone::ConvLayer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Weights use 7 bits (±63): on AVX2 without VNNI, ONNX Runtime multiplies u8 activations by
/// s8 weights in pairs summed in 16 bits, which full-range weights can saturate.
const WEIGHT_LEVELS: f32 = 127.0;

/// The fraction of values at each end calibration lets saturate.
const CLIP: f64 = 1e-4;

/// How the backbone runs in int8: the calibrated ranges, and the first block quantised (the
/// blocks before it stay f32).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Int8Plan {
    pub ranges: Ranges,
    pub from: usize,
}

/// Every quantised value's range as calibration saw it, by name: `image` (the normalised
/// input), `<block>.<conv>` (a convolution's output, after ReLU6 when it has one) and
/// `<block>.add` (a residual block's sum).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ranges {
    pub values: BTreeMap<String, (f32, f32)>,
}

impl Ranges {
    /// Widens `name`'s range to cover `data` but its rarest extremes (a fraction
    /// [`CLIP`] at each end: a few outliers would otherwise coarsen every other value's step).
    pub fn observe(&mut self, name: &str, data: &[f32]) {
        if data.is_empty() {
            return;
        }
        let mut v = data.to_vec();
        let last = (v.len() - 1) as f64;
        let mut at = |f: f64| {
            *v.select_nth_unstable_by((last * f).round() as usize, f32::total_cmp)
                .1
        };
        let (lo, hi) = (at(CLIP), at(1.0 - CLIP));
        let e = self.values.entry(name.to_string()).or_insert((lo, hi));
        *e = (e.0.min(lo), e.1.max(hi));
    }

    /// The u8 quantisation of `name` (an error naming it when calibration never saw it).
    pub fn q(&self, name: &str) -> crate::error::Result<(f32, u8)> {
        let &(lo, hi) = self
            .values
            .get(name)
            .ok_or_else(|| crate::Error::Invalid(format!("int8 ranges: no range for {name}")))?;
        Ok(activation_q(lo, hi))
    }
}

/// Scale and zero point mapping `[lo, hi]` (widened to hold 0, so zero padding is exact) onto
/// 0..=255.
pub fn activation_q(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

/// A convolution's weights as int8 per output channel (symmetric) and the channels' scales.
pub fn weights_q(layer: &ConvLayer) -> (Vec<i8>, Vec<f32>) {
    let per = layer.weight.len() / layer.cout.max(1);
    let mut q = Vec::with_capacity(layer.weight.len());
    let mut scales = Vec::with_capacity(layer.cout);
    for w in layer.weight.chunks(per.max(1)) {
        let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = (max / WEIGHT_LEVELS).max(1e-12);
        scales.push(s);
        q.extend(
            w.iter()
                .map(|v| (v / s).round().clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS) as i8),
        );
    }
    (q, scales)
}

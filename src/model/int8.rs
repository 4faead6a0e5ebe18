//! Static int8 for the backbone: the value ranges measured on DAVIS frames (calibration) and
//! the quantisation of weights and activations the QDQ graphs use.

use crate::error::{Error, Result};
use crate::model::backbone::ConvLayer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Weights use the full ±127. (On AVX2 without VNNI, ONNX Runtime sums u8 × s8 products in
/// pairs in 16 bits, which can saturate; 7-bit weights, its advice against that, measured the
/// same feature error here.)
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

/// The embedded backbone's plan (`null` until calibrated).
static EMBEDDED: &str = include_str!("../../weights/backbone-int8.json");

impl Int8Plan {
    /// The plan of the embedded backbone, if it has one.
    pub fn embedded() -> Result<Option<Int8Plan>> {
        serde_json::from_str(EMBEDDED).map_err(|e| Error::Format {
            path: "embedded backbone-int8.json".into(),
            reason: format!("not an int8 plan: {e}"),
        })
    }

    /// A plan `reuse-vos weights calibrate` wrote.
    pub fn load(path: &Path) -> Result<Int8Plan> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not an int8 plan: {e}")))
    }
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
    pub fn q(&self, name: &str) -> Result<(f32, u8)> {
        let &(lo, hi) = self
            .values
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("int8 ranges: no range for {name}")))?;
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

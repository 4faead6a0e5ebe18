//! The position embeddings at any patch grid: the trained 37 × 37 table resized bicubically, as
//! the source network does it (Keys' cubic with a = −0.75, half-pixel centres, taps clamped to
//! the border — ONNX `Resize` mode `cubic`, PyTorch's `bicubic`). Computed once per grid size,
//! in Rust, and handed to both engines as a constant.

use super::VitWeights;
use crate::model::FeatureMap;

const A: f32 = -0.75;

/// The four taps' weights for fractional offset `t`.
fn cubic(t: f32) -> [f32; 4] {
    let far = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let near = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// For each output index, its four source indices (clamped) and weights.
fn taps(input: usize, output: usize) -> Vec<([usize; 4], [f32; 4])> {
    let scale = output as f32 / input as f32;
    (0..output)
        .map(|o| {
            let x = (o as f32 + 0.5) / scale - 0.5;
            let f = x.floor();
            let w = cubic(x - f);
            let idx = [-1, 0, 1, 2].map(|d| (f as i64 + d).clamp(0, input as i64 - 1) as usize);
            (idx, w)
        })
        .collect()
}

/// Resizes a `[channels, ih, iw]` map to `[channels, oh, ow]` bicubically.
pub fn resize_bicubic(src: &FeatureMap, oh: usize, ow: usize) -> FeatureMap {
    let (c, ih, iw) = (src.channels, src.height, src.width);
    let (tx, ty) = (taps(iw, ow), taps(ih, oh));
    let mut out = vec![0.0; c * oh * ow];
    let mut rows = vec![0.0; ih * ow];
    for ch in 0..c {
        let plane = &src.data[ch * ih * iw..(ch + 1) * ih * iw];
        for y in 0..ih {
            for (x, (idx, w)) in tx.iter().enumerate() {
                let line = &plane[y * iw..];
                rows[y * ow + x] = (0..4).map(|k| w[k] * line[idx[k]]).sum();
            }
        }
        let dst = &mut out[ch * oh * ow..(ch + 1) * oh * ow];
        for (y, (idx, w)) in ty.iter().enumerate() {
            for x in 0..ow {
                dst[y * ow + x] = (0..4).map(|k| w[k] * rows[idx[k] * ow + x]).sum();
            }
        }
    }
    FeatureMap::new(c, oh, ow, out)
}

/// The patches' position embeddings on a `(rows, cols)` grid, as a `[dim, rows, cols]` map.
pub fn patch_positions(w: &VitWeights, (gh, gw): (usize, usize)) -> FeatureMap {
    let (d, g) = (w.config.dim, w.config.grid);
    let n = g * g;
    // Token-major `[n, d]` → channel-first `[d, g, g]`.
    let mut planar = vec![0.0; d * n];
    for (i, tok) in w.pos.chunks_exact(d).enumerate() {
        for (ch, &v) in tok.iter().enumerate() {
            planar[ch * n + i] = v;
        }
    }
    let table = FeatureMap::new(d, g, g, planar);
    if (gh, gw) == (g, g) {
        return table;
    }
    resize_bicubic(&table, gh, gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_sum_to_one_and_the_same_size_is_the_identity() {
        for t in [0.0, 0.25, 0.5, 0.9] {
            let s: f32 = cubic(t).iter().sum();
            assert!((s - 1.0).abs() < 1e-6, "{t}: {s}");
        }
        let m = FeatureMap::new(2, 3, 4, (0..24).map(|v| v as f32).collect());
        let same = resize_bicubic(&m, 3, 4);
        assert!(same.max_abs_diff(&m) < 1e-5);
        // Upsampled 2×, a constant stays constant, and a ramp's samples at ¼ and ¾ between
        // two inputs sit symmetrically about their midpoint (Keys' a = −0.75 does not
        // reproduce the ramp itself; the source network's resize is checked in tests/vit.rs).
        let flat = resize_bicubic(&FeatureMap::new(1, 1, 5, vec![2.0; 5]), 1, 10);
        assert!(
            flat.data.iter().all(|v| (v - 2.0).abs() < 1e-6),
            "{:?}",
            flat.data
        );
        let ramp = FeatureMap::new(1, 1, 8, (0..8).map(|v| v as f32).collect());
        let up = resize_bicubic(&ramp, 1, 16);
        for i in 2..6 {
            let mid = up.data[2 * i + 1] + up.data[2 * i + 2];
            assert!(
                (mid - (2 * i + 1) as f32).abs() < 1e-4,
                "{i}: {:?}",
                up.data
            );
        }
    }
}

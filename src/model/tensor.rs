//! A plain NCHW f32 feature map (batch 1): the currency between engines and stages.

/// One feature map, batch 1, channel-major (C, H, W).
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMap {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl FeatureMap {
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> FeatureMap {
        assert_eq!(
            data.len(),
            channels * height * width,
            "feature map data does not match its shape"
        );
        FeatureMap {
            channels,
            height,
            width,
            data,
        }
    }

    /// NCHW shape with batch 1.
    pub fn shape(&self) -> [usize; 4] {
        [1, self.channels, self.height, self.width]
    }

    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// The largest absolute difference to another map of the same shape.
    pub fn max_abs_diff(&self, other: &FeatureMap) -> f32 {
        assert_eq!(self.shape(), other.shape(), "shapes differ");
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    pub fn max_abs(&self) -> f32 {
        self.data.iter().map(|v| v.abs()).fold(0.0, f32::max)
    }
}

/// Bilinear resize of one channel (`src` is `sh`×`sw`) to `dh`×`dw`, half-pixel centres
/// (PyTorch's align_corners=False; coordinates below 0 clamp to the first pixel).
pub fn resize_bilinear(src: &[f32], sh: usize, sw: usize, dh: usize, dw: usize) -> Vec<f32> {
    let mut out = vec![0f32; dh * dw];
    bilinear_rows(src, (sh, sw), (dh, dw), |oy, top, bottom, fy| {
        let row = &mut out[oy * dw..(oy + 1) * dw];
        for ((o, &t), &b) in row.iter_mut().zip(top).zip(bottom) {
            *o = t + (b - t) * fy;
        }
    });
    out
}

/// `id` where [`resize_bilinear`] of `src` is above 1/2, else 0 — the same arithmetic, without
/// the float image (a one-object mask back at the frames' size, on every frame).
pub fn threshold_bilinear(
    src: &[f32],
    (sh, sw): (usize, usize),
    (dh, dw): (usize, usize),
    id: u8,
) -> Vec<u8> {
    let mut out = vec![0u8; dh * dw];
    bilinear_rows(src, (sh, sw), (dh, dw), |oy, top, bottom, fy| {
        let row = &mut out[oy * dw..(oy + 1) * dw];
        for ((o, &t), &b) in row.iter_mut().zip(top).zip(bottom) {
            *o = if t + (b - t) * fy > 0.5 { id } else { 0 };
        }
    });
    out
}

/// Hands `row` each output row of a bilinear resize: its index, the two source rows it blends
/// (each already interpolated across to `dw`) and the lower one's weight.
fn bilinear_rows(
    src: &[f32],
    (sh, sw): (usize, usize),
    (dh, dw): (usize, usize),
    mut row: impl FnMut(usize, &[f32], &[f32], f32),
) {
    let axis = |d: usize, s: usize| -> Vec<(usize, usize, f32)> {
        let scale = s as f32 / d as f32;
        (0..d)
            .map(|o| {
                let x = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (x.floor() as usize).min(s - 1);
                let i1 = (i0 + 1).min(s - 1);
                (i0, i1, x - i0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (axis(dh, sh), axis(dw, sw));
    // Separable: each source row is interpolated across once (the rows the output reads), then
    // output rows blend two of them — the same arithmetic as per pixel, in fewer operations.
    let mut across: Vec<Option<Vec<f32>>> = vec![None; sh];
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for y in [y0, y1] {
            if across[y].is_none() {
                let r = &src[y * sw..(y + 1) * sw];
                across[y] = Some(
                    xs.iter()
                        .map(|&(x0, x1, fx)| r[x0] + (r[x1] - r[x0]) * fx)
                        .collect(),
                );
            }
        }
        if let (Some(top), Some(bottom)) = (&across[y0], &across[y1]) {
            row(oy, top, bottom, fy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thresholded_resize_is_the_resize_thresholded() {
        // Values crowd 1/2, where a different rounding would flip a pixel.
        let (sh, sw) = (45, 80);
        let src: Vec<f32> = (0..sh * sw)
            .map(|i| 0.5 + ((i * 7919 % 1001) as f32 - 500.0) * 1e-6 * (i % 3) as f32)
            .collect();
        for (dh, dw) in [(480, 854), (360, 640), (45, 80), (20, 33)] {
            let want: Vec<u8> = resize_bilinear(&src, sh, sw, dh, dw)
                .iter()
                .map(|&v| if v > 0.5 { 7 } else { 0 })
                .collect();
            let got = threshold_bilinear(&src, (sh, sw), (dh, dw), 7);
            assert_eq!(got, want, "{dh}x{dw}");
            assert!(got.contains(&7) && got.contains(&0));
        }
    }
}

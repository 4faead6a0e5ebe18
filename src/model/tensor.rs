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
    let mut out = vec![0f32; dh * dw];
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (r0, r1) = (&src[y0 * sw..(y0 + 1) * sw], &src[y1 * sw..(y1 + 1) * sw]);
        let row = &mut out[oy * dw..(oy + 1) * dw];
        for (o, &(x0, x1, fx)) in row.iter_mut().zip(&xs) {
            let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
            let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
            *o = top + (bottom - top) * fy;
        }
    }
    out
}

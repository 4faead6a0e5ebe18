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

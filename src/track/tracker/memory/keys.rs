//! A frame's matching keys: the L2-normalised backbone feature vector of every cell, laid out
//! so the readout can score one memory cell against many query cells with one vector
//! instruction per channel.

use crate::model::FeatureMap;

/// Zero cells before every channel run: the readout loads a run shifted up to this far left
/// of cell 0.
pub const LEFT: usize = 16;
/// Zero cells after every channel run: a vector can be loaded from any cell of the run (plus
/// a shift of up to [`LEFT`]) without leaving it.
pub const RIGHT: usize = 24;

/// One frame's keys, row-planar: for each grid row, each channel's values along the row
/// between zeros (`data[(y · channels + c) · stride + LEFT + x]`,
/// `stride = LEFT + width + RIGHT`).
/// Along a row, neighbouring cells sit side by side in one channel: the readout's inner loop
/// multiplies 8 or 16 query cells by 8 or 16 memory cells at a fixed offset in one instruction.
#[derive(Clone, Debug)]
pub struct Keys {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    data: Vec<f32>,
}

impl Keys {
    /// The keys of a feature map at its own resolution.
    pub fn from_map(map: &FeatureMap) -> Keys {
        let (c, h, w) = (map.channels, map.height, map.width);
        let n = h * w;
        let mut norm = vec![0f32; n];
        for ch in 0..c {
            for (s, &v) in norm.iter_mut().zip(&map.data[ch * n..(ch + 1) * n]) {
                *s += v * v;
            }
        }
        norm.iter_mut().for_each(|s| *s = 1.0 / s.sqrt().max(1e-6));
        let stride = LEFT + w + RIGHT;
        let mut data = vec![0f32; h * c * stride];
        for ch in 0..c {
            for y in 0..h {
                let src = &map.data[ch * n + y * w..ch * n + (y + 1) * w];
                let dst = &mut data[(y * c + ch) * stride + LEFT..][..w];
                for ((d, &v), &k) in dst.iter_mut().zip(src).zip(&norm[y * w..(y + 1) * w]) {
                    *d = v * k;
                }
            }
        }
        Keys {
            height: h,
            width: w,
            channels: c,
            data,
        }
    }

    /// Distance between two channels' runs in a row.
    pub fn stride(&self) -> usize {
        LEFT + self.width + RIGHT
    }

    /// Row `y`: every channel's run, `channels · stride` values.
    pub fn row(&self, y: usize) -> &[f32] {
        let len = self.channels * self.stride();
        &self.data[y * len..(y + 1) * len]
    }

    /// Cell `(y, x)`'s key vector (for the plain reference readout).
    pub fn cell(&self, y: usize, x: usize) -> Vec<f32> {
        let s = self.stride();
        (0..self.channels)
            .map(|ch| self.data[(y * self.channels + ch) * s + LEFT + x])
            .collect()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
}

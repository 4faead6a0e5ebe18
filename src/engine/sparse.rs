//! SpVOS's region-level reuse on the backbone's early, high-resolution layers (blocks 0–6, to
//! stride 8 — the part every computed frame pays): 16×16-pixel tiles whose input changed less
//! than a threshold since their activations were computed keep them; around the changed tiles
//! the low part runs again on a crop. What is pasted back is the changed tiles' box grown by
//! the receptive field (an unchanged tile next to a changed one sees it), and the crop is that
//! box grown by the receptive field again, so every pasted value is what a dense run computes
//! (at threshold 0 the features are the dense ones up to float rounding). One crop per frame:
//! the box around every changed tile.

use super::BackboneEngine;
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::{HighFeatures, LowFeatures};

/// Tile side, pixels.
const TILE: usize = 16;
/// Receptive-field radius of blocks 0–6 of MobileNetV2 (29 pixels: each 3×3 layer adds its
/// input stride), rounded up to whole stride-8 cells.
const FIELD: usize = 32;
/// Above this share of the frame a crop costs about what the dense run does: run dense.
const MAX_SHARE: f64 = 0.75;
/// A normalised input value per grey level (the ImageNet standard deviations are ~0.226).
const PER_GREY: f32 = 1.0 / (255.0 * 0.226);

/// The low part with region reuse; the high part as the wrapped engine runs it.
pub struct SparseBackbone {
    inner: Box<dyn BackboneEngine>,
    /// Mean |change| of a tile's normalised input below which it keeps its activations.
    threshold: f32,
    /// The input each tile's stored activations were computed from, and the activations.
    last: Option<(FeatureMap, LowFeatures)>,
    /// Share of the frame's pixels the last `low` ran the network on.
    share: f64,
}

/// A box of pixels `(x0, y0, x1, y1)`, exclusive ends.
type Region = (usize, usize, usize, usize);

impl SparseBackbone {
    /// `threshold`: mean absolute change of a tile, in grey levels (0..255), below which its
    /// activations are kept.
    pub fn new(inner: Box<dyn BackboneEngine>, threshold: f32) -> SparseBackbone {
        SparseBackbone {
            inner,
            threshold: threshold.max(0.0) * PER_GREY,
            last: None,
            share: 1.0,
        }
    }

    /// The box around every tile whose input changed more than the threshold (None: none did).
    /// Once the crop around the box would exceed [`MAX_SHARE`] the frame runs dense whatever
    /// the other tiles hold, so the whole frame is returned without reading them; rows are
    /// read from the outside in (top, bottom, second, second to last, …) so that a frame that
    /// changed everywhere is known after two rows.
    fn changed(&self, then: &FeatureMap, now: &FeatureMap) -> Option<Region> {
        let (w, h) = (now.width, now.height);
        let plane = w * h;
        let rows = h.div_ceil(TILE);
        let mut found: Option<Region> = None;
        for i in 0..rows {
            let ty = if i % 2 == 0 { i / 2 } else { rows - 1 - i / 2 };
            if found.is_some_and(|r| share(around(r, (w, h)).1, (w, h)) > MAX_SHARE) {
                return Some((0, 0, w, h));
            }
            for tx in 0..w.div_ceil(TILE) {
                let (x0, y0) = (tx * TILE, ty * TILE);
                let (x1, y1) = ((x0 + TILE).min(w), (y0 + TILE).min(h));
                let mut sum = 0f32;
                for c in 0..now.channels {
                    for y in y0..y1 {
                        let row = c * plane + y * w;
                        let (a, b) = (
                            &now.data[row + x0..row + x1],
                            &then.data[row + x0..row + x1],
                        );
                        sum += a.iter().zip(b).map(|(u, v)| (u - v).abs()).sum::<f32>();
                    }
                }
                let mean = sum / (now.channels * (x1 - x0) * (y1 - y0)) as f32;
                // Any change counts at threshold 0 (exact reuse only).
                if mean > self.threshold || (self.threshold == 0.0 && sum > 0.0) {
                    found = Some(match found {
                        None => (x0, y0, x1, y1),
                        Some(r) => (r.0.min(x0), r.1.min(y0), r.2.max(x1), r.3.max(y1)),
                    });
                }
            }
        }
        found
    }
}

/// Around the tiles in `changed`: what is pasted (the box grown by the receptive field) and
/// what the low part runs on to compute it (grown by the receptive field again).
fn around(changed: Region, size: (usize, usize)) -> (Region, Region) {
    let pasted = grown(changed, FIELD, size);
    (pasted, grown(pasted, FIELD, size))
}

/// The share of a `w × h` frame that `r` covers.
fn share(r: Region, (w, h): (usize, usize)) -> f64 {
    ((r.2 - r.0) * (r.3 - r.1)) as f64 / (w * h) as f64
}

/// `r` grown by `by` pixels on every side, within `w × h`.
fn grown(r: Region, by: usize, (w, h): (usize, usize)) -> Region {
    (
        r.0.saturating_sub(by),
        r.1.saturating_sub(by),
        (r.2 + by).min(w),
        (r.3 + by).min(h),
    )
}

/// The pixels of `image` inside `r`.
fn crop(image: &FeatureMap, r: Region) -> FeatureMap {
    let (cw, ch) = (r.2 - r.0, r.3 - r.1);
    let mut data = Vec::with_capacity(image.channels * cw * ch);
    for c in 0..image.channels {
        for y in r.1..r.3 {
            let row = c * image.height * image.width + y * image.width;
            data.extend_from_slice(&image.data[row + r.0..row + r.2]);
        }
    }
    FeatureMap::new(image.channels, ch, cw, data)
}

/// Writes `part` (a map of stride `stride` computed on the crop starting at pixel `origin`)
/// into `full` over pixel region `r`.
fn paste(
    full: &mut FeatureMap,
    part: &FeatureMap,
    stride: usize,
    origin: (usize, usize),
    r: Region,
) {
    let (x0, y0) = (r.0 / stride, r.1 / stride);
    let (x1, y1) = (
        r.2.div_ceil(stride).min(full.width),
        r.3.div_ceil(stride).min(full.height),
    );
    let (ox, oy) = (origin.0 / stride, origin.1 / stride);
    for c in 0..full.channels {
        for y in y0..y1 {
            let dst = c * full.height * full.width + y * full.width;
            let src = c * part.height * part.width + (y - oy) * part.width;
            full.data[dst + x0..dst + x1].copy_from_slice(&part.data[src + x0 - ox..src + x1 - ox]);
        }
    }
}

impl BackboneEngine for SparseBackbone {
    fn kind(&self) -> super::EngineKind {
        self.inner.kind()
    }

    fn low(&mut self, image: &FeatureMap) -> Result<LowFeatures> {
        let size = (image.width, image.height);
        let same = |then: &FeatureMap| {
            (then.width, then.height, then.channels) == (image.width, image.height, image.channels)
        };
        let changed = match &self.last {
            Some((then, low)) if same(then) => match self.changed(then, image) {
                Some(r) => r,
                None => {
                    self.share = 0.0;
                    return Ok(low.clone());
                }
            },
            _ => (0, 0, size.0, size.1),
        };
        let (pasted, run) = around(changed, size);
        let share = share(run, size);
        let (Some((then, low)), true) = (self.last.as_mut(), share <= MAX_SHARE) else {
            let low = self.inner.low(image)?;
            self.last = Some((image.clone(), low.clone()));
            self.share = 1.0;
            return Ok(low);
        };
        let part = self.inner.low(&crop(image, run))?;
        paste(&mut low.s4, &part.s4, 4, (run.0, run.1), pasted);
        paste(&mut low.s8, &part.s8, 8, (run.0, run.1), pasted);
        // The input the pasted activations came from; elsewhere the older one stays, so slow
        // drift below the threshold still adds up to a recompute.
        let now = crop(image, pasted);
        paste(then, &now, 1, (pasted.0, pasted.1), pasted);
        self.share = share;
        Ok(low.clone())
    }

    fn high(&mut self, s8: &FeatureMap) -> Result<HighFeatures> {
        self.inner.high(s8)
    }

    fn low_share(&self) -> f64 {
        self.share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine the tile comparison never calls.
    struct Unused;

    impl BackboneEngine for Unused {
        fn kind(&self) -> crate::engine::EngineKind {
            crate::engine::EngineKind::Burn
        }
        fn low(&mut self, _: &FeatureMap) -> Result<LowFeatures> {
            Err(crate::error::Error::Invalid("not run".into()))
        }
        fn high(&mut self, _: &FeatureMap) -> Result<HighFeatures> {
            Err(crate::error::Error::Invalid("not run".into()))
        }
    }

    /// A 3-channel 320×192 image, 0 everywhere but `(value, x, y)` pixels.
    fn image(pixels: &[(f32, usize, usize)]) -> FeatureMap {
        let (w, h) = (320, 192);
        let mut data = vec![0.0; 3 * w * h];
        for &(v, x, y) in pixels {
            for c in 0..3 {
                data[c * w * h + y * w + x] = v;
            }
        }
        FeatureMap::new(3, h, w, data)
    }

    #[test]
    fn the_changed_box_is_the_tiles_that_changed_or_the_frame_once_it_would_run_dense() {
        let sparse = SparseBackbone::new(Box::new(Unused), 0.0);
        let still = image(&[]);
        assert_eq!(sparse.changed(&still, &still), None);
        // Two tiles: (1, 2) and (3, 2) in tiles → pixels 16..64 × 32..48.
        let two = image(&[(1.0, 20, 40), (1.0, 50, 35)]);
        assert_eq!(sparse.changed(&still, &two), Some((16, 32, 64, 48)));
        // A change in the top and bottom rows spans the frame's height: the crop would be
        // most of the frame, so the rows between are not read and the whole frame is returned
        // (as the full box would have been: it only grows).
        let apart = image(&[(1.0, 5, 2), (1.0, 300, 190)]);
        assert_eq!(sparse.changed(&still, &apart), Some((0, 0, 320, 192)));
        // Below the threshold nothing changed.
        let faint = SparseBackbone::new(Box::new(Unused), 255.0);
        assert_eq!(faint.changed(&still, &two), None);
    }

    #[test]
    fn paste_and_crop_round_trip() {
        let image = FeatureMap::new(2, 6, 8, (0..96).map(|v| v as f32).collect());
        let r = (2, 1, 6, 5);
        let part = crop(&image, r);
        assert_eq!((part.width, part.height), (4, 4));
        let mut blank = FeatureMap::new(2, 6, 8, vec![0.0; 96]);
        paste(&mut blank, &part, 1, (2, 1), r);
        for c in 0..2 {
            for y in 0..6 {
                for x in 0..8 {
                    let inside = (2..6).contains(&x) && (1..5).contains(&y);
                    let want = if inside { image.at(c, y, x) } else { 0.0 };
                    assert_eq!(blank.at(c, y, x), want);
                }
            }
        }
    }
}

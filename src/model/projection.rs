//! A fixed linear projection of the matching keys to fewer channels: the principal directions
//! of MobileNetV2's L2-normalised stride-8 features on DAVIS frames (no labels used). The
//! readout's cost is proportional to the key channels, and cosine similarities of the
//! projected keys keep most of what the full ones say.

use crate::error::{Error, Result};
use crate::model::FeatureMap;
use crate::model::weights::{WeightTensor, Weights};
use ndarray::{Array2, ArrayView2};
use std::collections::BTreeMap;

/// The embedded projection of the 32 stride-8 channels to 16 (`weights fit-keys`).
static KEYS16_SAFETENSORS: &[u8] = include_bytes!("../../weights/keys-pca16.safetensors");

/// The tensor's name in the weight file.
const NAME: &str = "projection";

/// `out × in` rows of unit length, most explained variance first.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyProjection {
    matrix: Array2<f32>,
}

impl KeyProjection {
    /// The embedded 32 → 16 projection.
    pub fn embedded() -> Result<KeyProjection> {
        Self::from_weights(&Weights::from_safetensors(
            KEYS16_SAFETENSORS,
            "embedded keys-pca16.safetensors",
        )?)
    }

    fn from_weights(w: &Weights) -> Result<KeyProjection> {
        let t = w.get(NAME)?;
        let bad = |reason: &str| Error::Format {
            path: w.origin.clone().into(),
            reason: reason.into(),
        };
        let [rows, cols] = t.shape[..] else {
            return Err(bad("the projection is not a matrix"));
        };
        if rows == 0 || rows > cols {
            return Err(bad("the projection must have 1 to `in` rows"));
        }
        let matrix = Array2::from_shape_vec((rows, cols), t.data.clone())
            .map_err(|e| bad(&e.to_string()))?;
        Ok(KeyProjection { matrix })
    }

    /// The top `channels` principal directions of the second moment `E[x xᵀ]` of unit
    /// vectors (so dot products of projected keys approximate those of the full ones best),
    /// and the fraction of the moment's trace they keep.
    pub fn fit(moment: &SecondMoment, channels: usize) -> (KeyProjection, f64) {
        let n = moment.dim;
        let count = moment.count.max(1) as f64;
        let mut a: Vec<f64> = moment.sum.iter().map(|v| v / count).collect();
        let (values, vectors) = symmetric_eigen(&mut a, n);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| values[j].total_cmp(&values[i]));
        let channels = channels.clamp(1, n);
        let total: f64 = values.iter().sum();
        let kept: f64 = order.iter().take(channels).map(|&i| values[i]).sum();
        let mut matrix = Array2::zeros((channels, n));
        for (row, &i) in order.iter().take(channels).enumerate() {
            let column: Vec<f64> = (0..n).map(|k| vectors[k * n + i]).collect();
            // A fixed sign (largest component positive): the same fit gives the same file.
            let big = column
                .iter()
                .fold(0f64, |m, &v| if v.abs() > m.abs() { v } else { m });
            let sign = if big < 0.0 { -1.0 } else { 1.0 };
            for (k, v) in column.iter().enumerate() {
                matrix[[row, k]] = (sign * v) as f32;
            }
        }
        (
            KeyProjection { matrix },
            kept / total.max(f64::MIN_POSITIVE),
        )
    }

    pub fn channels_in(&self) -> usize {
        self.matrix.ncols()
    }

    pub fn channels_out(&self) -> usize {
        self.matrix.nrows()
    }

    /// The projected map (same grid, `channels_out` channels).
    pub fn apply(&self, map: &FeatureMap) -> Result<FeatureMap> {
        if map.channels != self.channels_in() {
            return Err(Error::Invalid(format!(
                "the key projection takes {} channels, the features have {}",
                self.channels_in(),
                map.channels
            )));
        }
        let hw = map.height * map.width;
        let x = ArrayView2::from_shape((map.channels, hw), &map.data)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let y = self.matrix.dot(&x);
        Ok(FeatureMap::new(
            self.channels_out(),
            map.height,
            map.width,
            y.into_raw_vec_and_offset().0,
        ))
    }

    /// The safetensors file, with what made it in the metadata.
    pub fn to_safetensors(&self, meta: BTreeMap<String, String>) -> Result<Vec<u8>> {
        let mut w = Weights::default();
        w.tensors.insert(
            NAME.into(),
            WeightTensor {
                shape: vec![self.channels_out(), self.channels_in()],
                data: self.matrix.iter().copied().collect(),
            },
        );
        w.to_safetensors(meta)
    }
}

/// Running sums of `x xᵀ` over unit vectors `x`.
#[derive(Clone, Debug)]
pub struct SecondMoment {
    dim: usize,
    sum: Vec<f64>,
    count: u64,
}

impl SecondMoment {
    pub fn new(dim: usize) -> SecondMoment {
        SecondMoment {
            dim,
            sum: vec![0.0; dim * dim],
            count: 0,
        }
    }

    /// Adds every cell of `map` (channels = `dim`), each normalised to unit length.
    pub fn add(&mut self, map: &FeatureMap) {
        let (n, hw) = (self.dim, map.height * map.width);
        if map.channels != n {
            return;
        }
        let mut cell = vec![0f64; n];
        for i in 0..hw {
            for (c, v) in cell.iter_mut().enumerate() {
                *v = f64::from(map.data[c * hw + i]);
            }
            let norm = cell.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm < 1e-6 {
                continue;
            }
            for (a, &ca) in cell.iter().enumerate() {
                let xa = ca / norm;
                for (s, &cb) in self.sum[a * n..(a + 1) * n].iter_mut().zip(&cell) {
                    *s += xa * cb / norm;
                }
            }
            self.count += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Eigenvalues and eigenvectors (column `i` of the row-major `n × n` result) of the symmetric
/// matrix `a` (destroyed), by cyclic Jacobi rotations.
fn symmetric_eigen(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q].powi(2))
            .sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i].powi(2)).sum();
        if off <= 1e-24 * scale.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (kp, kq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * kp - s * kq;
                    a[k * n + q] = s * kp + c * kq;
                }
                for k in 0..n {
                    let (pk, qk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * pk - s * qk;
                    a[q * n + k] = s * pk + c * qk;
                }
                for k in 0..n {
                    let (kp, kq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * kp - s * kq;
                    v[k * n + q] = s * kp + c * kq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eigenvectors_diagonalise_the_matrix() {
        let n = 6;
        let m: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                1.0 / (1.0 + i as f64 + j as f64) + if i == j { 0.5 } else { 0.0 }
            })
            .collect();
        let (values, v) = symmetric_eigen(&mut m.clone(), n);
        for (i, &lambda) in values.iter().enumerate() {
            for r in 0..n {
                let mv: f64 = (0..n).map(|k| m[r * n + k] * v[k * n + i]).sum();
                assert!((mv - lambda * v[r * n + i]).abs() < 1e-9, "M v != λ v");
            }
        }
    }

    #[test]
    fn a_map_in_a_subspace_keeps_its_dot_products() {
        // Cells spread over two directions of a 4-channel space: a 2-row projection fitted on
        // them keeps every cosine between cells.
        let (h, w) = (3, 5);
        let dirs = [[0.6f32, 0.0, 0.8, 0.0], [0.0, 1.0, 0.0, 0.0]];
        let mut data = vec![0f32; 4 * h * w];
        for i in 0..h * w {
            let (a, b) = ((i as f32 * 0.7).sin(), (i as f32 * 1.3).cos());
            for c in 0..4 {
                data[c * h * w + i] = a * dirs[0][c] + b * dirs[1][c];
            }
        }
        let map = FeatureMap::new(4, h, w, data);
        let mut moment = SecondMoment::new(4);
        moment.add(&map);
        let (p, kept) = KeyProjection::fit(&moment, 2);
        assert!((kept - 1.0).abs() < 1e-9, "kept {kept}");
        let y = p.apply(&map).expect("projection");
        let dot = |m: &FeatureMap, i: usize, j: usize| -> f32 {
            (0..m.channels)
                .map(|c| m.data[c * h * w + i] * m.data[c * h * w + j])
                .sum()
        };
        for (i, j) in [(0, 1), (2, 7), (4, 14)] {
            assert!((dot(&map, i, j) - dot(&y, i, j)).abs() < 1e-4);
        }
        let bytes = p.to_safetensors(BTreeMap::new()).expect("bytes");
        let back = KeyProjection::from_weights(&Weights::from_safetensors(&bytes, "t").expect("w"));
        assert_eq!(back.expect("projection"), p);
    }
}

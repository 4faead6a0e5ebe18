//! Named f32 tensors: imported from PyTorch checkpoints, stored as safetensors.

use crate::error::{Error, Result};
use burn::store::pytorch_reader::{DType, PytorchReader};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// One tensor: shape and row-major f32 values.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A set of named tensors, sorted by name.
#[derive(Clone, Debug, Default)]
pub struct Weights {
    pub tensors: BTreeMap<String, WeightTensor>,
    /// Where they came from, for error messages.
    pub origin: String,
}

fn le_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Weights {
    /// Reads a PyTorch checkpoint (legacy pre-1.6 pickle or zip format) with Burn's PyTorch
    /// reader. Float tensors become f32; integer bookkeeping tensors (`num_batches_tracked`)
    /// are left out. Returns the weights and the names that were left out.
    pub fn import_pytorch(path: &Path) -> Result<(Weights, Vec<String>)> {
        let reader = PytorchReader::new(path)
            .map_err(|e| Error::format(path, format!("not a readable PyTorch checkpoint: {e}")))?;
        let mut tensors = BTreeMap::new();
        let mut skipped = Vec::new();
        for (name, t) in reader.tensors() {
            let bytes = t.read().map_err(|e| Error::read(path, e))?;
            let data: Vec<f32> = match t.dtype() {
                DType::F32 => le_f32(&bytes),
                DType::F64 => bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                    .collect(),
                _ => {
                    skipped.push(format!("{name} ({:?})", t.dtype()));
                    continue;
                }
            };
            tensors.insert(
                name.clone(),
                WeightTensor {
                    shape: t.shape().to_vec(),
                    data,
                },
            );
        }
        if tensors.is_empty() {
            return Err(Error::format(path, "checkpoint holds no float tensors"));
        }
        skipped.sort();
        Ok((
            Weights {
                tensors,
                origin: path.display().to_string(),
            },
            skipped,
        ))
    }

    /// Parses safetensors bytes (f32 tensors only).
    pub fn from_safetensors(bytes: &[u8], origin: &str) -> Result<Weights> {
        let bad = |reason: String| Error::Format {
            path: origin.into(),
            reason,
        };
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor {name} is {:?}, expected F32",
                    view.dtype()
                )));
            }
            tensors.insert(
                name,
                WeightTensor {
                    shape: view.shape().to_vec(),
                    data: le_f32(view.data()),
                },
            );
        }
        Ok(Weights {
            tensors,
            origin: origin.to_string(),
        })
    }

    /// Reads a safetensors file.
    pub fn load(path: &Path) -> Result<Weights> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        Self::from_safetensors(&bytes, &path.display().to_string())
    }

    /// Serialises as safetensors with the given metadata.
    pub fn to_safetensors(&self, metadata: BTreeMap<String, String>) -> Result<Vec<u8>> {
        let bytes: Vec<(String, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b)| {
                TensorView::new(Dtype::F32, self.tensors[n].shape.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::Invalid(format!("tensor {n}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(metadata.into_iter().collect()))
            .map_err(|e| Error::Invalid(format!("cannot serialise safetensors: {e}")))
    }

    /// The element-wise mean of several sets of weights with the same tensors and shapes
    /// (averaging training snapshots: steadier than picking one).
    pub fn average(sets: &[Weights]) -> Result<Weights> {
        let first = sets
            .first()
            .ok_or_else(|| Error::Invalid("no weights to average".into()))?;
        let mut tensors = BTreeMap::new();
        for (name, t) in &first.tensors {
            let mut sum = vec![0f64; t.data.len()];
            for set in sets {
                let other = set.get(name)?;
                if other.shape != t.shape {
                    return Err(Error::Format {
                        path: set.origin.clone().into(),
                        reason: format!(
                            "tensor {name} is {:?}, in {} it is {:?}",
                            other.shape, first.origin, t.shape
                        ),
                    });
                }
                sum.iter_mut()
                    .zip(&other.data)
                    .for_each(|(s, &v)| *s += f64::from(v));
            }
            let n = sets.len() as f64;
            let data = sum.into_iter().map(|s| (s / n) as f32).collect();
            tensors.insert(
                name.clone(),
                WeightTensor {
                    shape: t.shape.clone(),
                    data,
                },
            );
        }
        for set in &sets[1..] {
            if let Some(extra) = set.tensors.keys().find(|k| !first.tensors.contains_key(*k)) {
                return Err(Error::Format {
                    path: set.origin.clone().into(),
                    reason: format!("tensor {extra} is not in {}", first.origin),
                });
            }
        }
        Ok(Weights {
            tensors,
            origin: "average".into(),
        })
    }

    /// A tensor by name, with its expected rank checked.
    pub fn get(&self, name: &str) -> Result<&WeightTensor> {
        self.tensors.get(name).ok_or_else(|| Error::Format {
            path: self.origin.clone().into(),
            reason: format!("missing tensor {name}"),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// The converted torchvision MobileNetV2 weights (see `weights/MANIFEST.md`).
static BACKBONE_SAFETENSORS: &[u8] = include_bytes!("../../weights/mobilenet_v2.safetensors");

/// The backbone weights embedded in the binary.
pub fn embedded_backbone() -> Result<Weights> {
    Weights::from_safetensors(BACKBONE_SAFETENSORS, "embedded mobilenet_v2.safetensors")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(origin: &str, values: &[(&str, Vec<usize>, Vec<f32>)]) -> Weights {
        Weights {
            tensors: values
                .iter()
                .map(|(n, s, d)| {
                    (
                        n.to_string(),
                        WeightTensor {
                            shape: s.clone(),
                            data: d.clone(),
                        },
                    )
                })
                .collect(),
            origin: origin.into(),
        }
    }

    #[test]
    fn average_is_the_elementwise_mean_and_rejects_other_shapes() {
        let a = set("a", &[("w", vec![2], vec![1.0, 2.0])]);
        let b = set("b", &[("w", vec![2], vec![3.0, 6.0])]);
        let m = Weights::average(&[a.clone(), b]).expect("same shapes");
        assert_eq!(m.tensors["w"].data, vec![2.0, 4.0]);
        let c = set("c", &[("w", vec![1, 2], vec![3.0, 6.0])]);
        let err = Weights::average(&[a.clone(), c]).expect_err("shape differs");
        assert!(err.to_string().contains("tensor w"), "{err}");
        let d = set(
            "d",
            &[("w", vec![2], vec![0.0, 0.0]), ("x", vec![1], vec![1.0])],
        );
        assert!(Weights::average(&[a, d]).is_err());
    }
}

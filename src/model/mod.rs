//! The networks: their weights, their definitions as Burn modules, and the tensors they pass.

pub mod backbone;
pub mod decoder;
pub mod reuse;
pub mod target;
pub mod tensor;
pub mod weights;

pub use tensor::FeatureMap;
pub use weights::Weights;

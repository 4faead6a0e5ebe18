//! The networks: their weights, their definitions as Burn modules, and the tensors they pass.

pub mod backbone;
pub mod decoder;
pub mod int8;
pub mod load;
pub mod online;
pub mod projection;
pub mod reuse;
pub mod tensor;
pub mod vit;
pub mod weights;

pub use load::Model;
pub use tensor::FeatureMap;
pub use weights::Weights;

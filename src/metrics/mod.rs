//! Scores against ground truth, exactly as the official DAVIS toolkit
//! (davis2017-evaluation, semi-supervised task) computes them.

pub mod boundary;
pub mod eval;
pub mod region;
pub mod stats;

pub use boundary::f_measure;
pub use eval::{EvalOptions, EvalReport, ObjectScores, evaluate};
pub use region::jaccard;
pub use stats::{Stats, db_statistics};

//! The jobs a user starts: each puts the library's layers together for one task and owns its
//! outputs. Nothing under `track/`, `model/` or `engine/` imports a job.

pub mod frame;
pub mod run;
pub mod segment;
pub mod sweep;
pub mod train;

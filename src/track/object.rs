//! One tracked object's state between frames, and the manager that keeps them by id.

use super::gate::GateDecision;
use super::tracker::ObjectModel;
use crate::model::FeatureMap;
use serde::{Deserialize, Serialize};

/// What an object keeps of its last computed frame, for the reuse path.
pub struct ReuseMemory {
    /// K×K, from the frame where the object's mask was given.
    pub template: Vec<f32>,
    /// The tracker's raw score (stride 16).
    pub score: FeatureMap,
    /// The decoder state after the deep stages (stride 16).
    pub state: FeatureMap,
    /// The backbone's stride-8 features.
    pub s8: FeatureMap,
    /// The ground truth of that frame (oracle policy only).
    pub truth: Option<Vec<bool>>,
}

/// Where an object was on its last computed (or given) frame, and that frame's luma cells:
/// what the motion gate and the safety net compare a new frame against.
pub struct Anchor {
    pub thumb: std::sync::Arc<super::safety::Thumb>,
    pub footprint: super::safety::Footprint,
    /// The object's probability on that frame (what a copy that follows the object shifts);
    /// kept only when copies follow.
    pub probability: Option<Vec<f32>>,
}

/// One object: its tracker model, its stored reuse state, and how far it has come.
pub struct ObjectState {
    pub id: u8,
    pub model: Box<dyn ObjectModel>,
    /// Computed frames since the object was (re)started.
    pub frames: usize,
    /// Frames reused in a row until now.
    pub streak: usize,
    /// Frames since its memory last matched fresh keys (copied and stale-keys frames).
    pub keys_age: usize,
    /// Whether its last computed frame read stale keys.
    pub stale_last: bool,
    /// None when the session computes no luma cells (no reuse).
    pub anchor: Option<Anchor>,
    /// None when the session runs no reuse path.
    pub reuse: Option<ReuseMemory>,
    /// The object's probability on the previous frame (what `copy` reuses; kept only by
    /// policies that copy).
    pub previous: Vec<f32>,
    /// What its copies would have lost on its computed frames (the safety net's audit).
    pub audit: super::safety::CopyAudit,
}

/// The session's objects, in id order (the merge and the outputs list them so).
#[derive(Default)]
pub struct Objects {
    list: Vec<ObjectState>,
}

impl Objects {
    /// Adds an object, or restarts the one with its id.
    pub fn start(&mut self, object: ObjectState) {
        match self.list.iter_mut().find(|o| o.id == object.id) {
            Some(o) => *o = object,
            None => {
                self.list.push(object);
                self.list.sort_by_key(|o| o.id);
            }
        }
    }

    pub fn ids(&self) -> Vec<u8> {
        self.list.iter().map(|o| o.id).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ObjectState> {
        self.list.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, ObjectState> {
        self.list.iter_mut()
    }
}

/// What happened to one object on one frame (a record of `stats.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectFrame {
    pub id: u8,
    pub area: usize,
    /// The object's mask was given on this frame (first frame or a correction).
    pub given: bool,
    /// The tracker's model was refined after this frame.
    pub refined: bool,
    pub decision: GateDecision,
    /// Time of this object's path (gate included), milliseconds.
    pub path_ms: f64,
    /// Bytes its tracker model holds after this frame (target model memory, memory bank).
    #[serde(default)]
    pub memory_bytes: usize,
    /// On a computed frame the net audits: what the copy the gate would have made lost
    /// (1 − IoU against the mask computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_loss: Option<f32>,
}

//! Step 2 of a frame: per object, which path makes its mask. The learned gate compares the
//! frame's stride-8 features with the object's last computed frame (template matching, P(reuse)
//! and Δ); the oracle compares ground truths; the policy turns them into a [`Path`].

use super::flow::{BlockFlow, Follow, block_flow};
use super::gate::{GateDecision, GatePolicy, GateSettings, Path};
use super::object::ObjectState;
use super::safety::{Motion, Thumb, motion};
use crate::engine::ReuseEngine;
use crate::error::Result;
use crate::io::Mask;
use crate::metrics::region::iou;
use crate::model::FeatureMap;
use crate::model::tensor::resize_bilinear;

/// Reads the ground truth of a session frame index (the n-th pushed frame), for the `oracle`
/// policy: a gate input given when the session is made.
pub type Oracle = Box<dyn Fn(usize) -> Result<Option<Mask>> + Send>;

/// One object's decision, and the Δ the gate produced for the reuse path.
pub struct Decided {
    pub decision: GateDecision,
    pub delta: Option<FeatureMap>,
    /// How a copy follows the object, when the motion policy follows.
    pub follow: Option<Followed>,
    /// Time the decision took, milliseconds.
    pub ms: f64,
}

impl Decided {
    pub fn given() -> Decided {
        Decided {
            decision: GateDecision {
                p_reuse: None,
                oracle_iou: None,
                path: Path::Given,
                motion: None,
                change: None,
                safety: None,
            },
            delta: None,
            follow: None,
            ms: 0.0,
        }
    }

    pub fn path(&self) -> Path {
        self.decision.path
    }
}

/// How a copied mask follows its object: one shift (pixels), or a motion per block.
pub enum Followed {
    Shift((i32, i32)),
    Blocks(BlockFlow),
}

/// The decision for an object whose mask was not given: the gate (when the session has a
/// reuse path and the object a stored frame), the oracle's IoU (when `truth` is known), the
/// policy, then the safety net's checks before a reuse (`thumb`: this frame's luma cells).
pub fn decide(
    object: &ObjectState,
    reuse: Option<&mut Box<dyn ReuseEngine>>,
    s8: Option<&FeatureMap>,
    thumb: &Thumb,
    truth: Option<&Mask>,
    settings: &GateSettings,
) -> Result<Decided> {
    let (mut p_reuse, mut delta, mut oracle_iou) = (None, None, None);
    let moved = object
        .anchor
        .as_ref()
        .filter(|_| thumb.width > 0)
        .map(|a| (motion(thumb, &a.thumb, &a.footprint), &a.footprint));
    let raw = moved.map(|(m, _)| m);
    // A copy that follows the object judges only the change left after its shift, for shifts
    // the safety net's jump check would accept.
    let shift = moved.and_then(|(m, f)| {
        let within = m.pixels as f64 <= settings.safety.max_shift as f64 * f.area.sqrt();
        (settings.follows() && within).then_some(m.shift)
    });
    let follow = match (settings.follow, shift, &object.anchor) {
        (Follow::Blocks, Some(by), Some(a)) => Some(Followed::Blocks(block_flow(
            thumb,
            &a.thumb,
            &a.footprint,
            by,
        ))),
        (_, by, _) => by.map(Followed::Shift),
    };
    let moved = moved.map(|(m, f)| match &follow {
        Some(Followed::Blocks(flow)) => (m.followed_by(flow.residual), f),
        Some(_) => (m.followed(), f),
        None => (m, f),
    });
    if settings.policy == GatePolicy::Motion {
        let scale = settings.follow.change_scale();
        p_reuse = moved.map(|(m, f)| m.p_reuse(f, settings.safety.max_motion, scale));
    }
    if let (Some(reuse), Some(mem), Some(s8)) = (reuse, &object.reuse, s8) {
        // The gate reads one score channel (fusion's first is the target model's).
        let s = &mem.score;
        let (h8, w8) = (s8.height, s8.width);
        let plane = &s.data[..s.height * s.width];
        let score8 = FeatureMap::new(1, h8, w8, resize_bilinear(plane, s.height, s.width, h8, w8));
        let (logit, d) = reuse.gate(s8, &mem.s8, &score8, &mem.template)?;
        p_reuse = Some(1.0 / (1.0 + (-logit).exp()));
        delta = Some(d);
        if let (Some(gt), Some(last)) = (truth, &mem.truth) {
            let now: Vec<bool> = gt.ids.iter().map(|&v| v == object.id).collect();
            oracle_iou = Some(iou(&now, last) as f32);
        }
    }
    let mut path = settings.decide(p_reuse, oracle_iou);
    let safety = match (path.is_reuse(), moved) {
        (true, Some((m, f))) => settings.safety.before(object.streak, &m, f),
        // No luma cells to compare: only the streak bound applies.
        (true, None) => {
            settings
                .safety
                .before(object.streak, &Motion::default(), &Default::default())
        }
        _ => None,
    };
    if safety.is_some() {
        path = Path::Computed;
    }
    Ok(Decided {
        decision: GateDecision {
            p_reuse,
            oracle_iou,
            path,
            motion: raw.map(|m| m.pixels),
            change: moved.map(|(m, _)| m.change),
            safety,
        },
        delta,
        follow: follow.filter(|_| path == Path::Copied),
        ms: 0.0,
    })
}

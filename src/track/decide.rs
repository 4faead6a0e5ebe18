//! Step 2 of a frame: per object, which path makes its mask. The learned gate compares the
//! frame's stride-8 features with the object's last computed frame (template matching, P(reuse)
//! and Δ); the oracle compares ground truths; the policy turns them into a [`Path`].

pub use super::flow::Followed;
use super::flow::{Follow, block_flow};
use super::gate::{GateDecision, GatePolicy, GateSettings, Path};
use super::object::{ObjectState, ReuseMemory};
use super::safety::{Footprint, Motion, Override, Thumb, motion};
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
    /// How a copy follows the object, when the motion policy follows (on a computed frame:
    /// the copy it would have been, which the safety net audits, and on a stale-keys frame
    /// how the memory's last readout is moved).
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
                stale_keys: false,
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

/// How an object moved since its last computed frame, as the gate and the safety net see it.
struct Moved<'a> {
    /// As measured (how far it moved, the change without following).
    raw: Motion,
    /// As a copy sees it: after following, only the change left counts.
    seen: Motion,
    /// Where it was on its last computed frame.
    footprint: &'a Footprint,
    /// How a copy follows it (None: a copy stays where it was).
    follow: Option<Followed>,
}

/// The object's motion from its last computed frame to this one (`thumb`), and how a copy
/// would follow it; None without luma cells to compare.
fn moved<'a>(object: &'a ObjectState, thumb: &Thumb, settings: &GateSettings) -> Option<Moved<'a>> {
    let anchor = object.anchor.as_ref().filter(|_| thumb.width > 0)?;
    let footprint = &anchor.footprint;
    let raw = motion(thumb, &anchor.thumb, footprint);
    // Copies follow shifts the safety net's jump check would accept.
    let within = raw.pixels as f64 <= settings.safety.max_shift as f64 * footprint.area.sqrt();
    let follow = (settings.follows() && within).then(|| match settings.follow {
        Follow::Blocks => Followed::Blocks(block_flow(thumb, &anchor.thumb, footprint, raw.shift)),
        Follow::Shift => Followed::Shift(raw.shift),
    });
    let seen = match &follow {
        Some(Followed::Blocks(flow)) => raw.followed_by(flow.residual),
        Some(Followed::Shift(_)) => raw.followed(),
        None => raw,
    };
    Some(Moved {
        raw,
        seen,
        footprint,
        follow,
    })
}

/// The learned gate's P(reuse) and Δ for an object with a stored frame, and the oracle's IoU
/// when the ground truth is known.
fn learned(
    object: &ObjectState,
    reuse: &mut Box<dyn ReuseEngine>,
    mem: &ReuseMemory,
    s8: &FeatureMap,
    truth: Option<&Mask>,
) -> Result<(f32, FeatureMap, Option<f32>)> {
    // The gate reads one score channel (fusion's first is the target model's).
    let s = &mem.score;
    let (h8, w8) = (s8.height, s8.width);
    let plane = &s.data[..s.height * s.width];
    let score8 = FeatureMap::new(1, h8, w8, resize_bilinear(plane, s.height, s.width, h8, w8));
    let (logit, delta) = reuse.gate(s8, &mem.s8, &score8, &mem.template)?;
    let oracle_iou = match (truth, &mem.truth) {
        (Some(gt), Some(last)) => {
            let now: Vec<bool> = gt.ids.iter().map(|&v| v == object.id).collect();
            Some(iou(&now, last) as f32)
        }
        _ => None,
    };
    Ok((1.0 / (1.0 + (-logit).exp()), delta, oracle_iou))
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
    let moved = moved(object, thumb, settings);
    if settings.policy == GatePolicy::Motion {
        let scale = settings.follow.change_scale();
        p_reuse = moved.as_ref().map(|m| {
            m.seen
                .p_reuse(m.footprint, settings.safety.max_motion, scale)
        });
    }
    if let (Some(reuse), Some(mem), Some(s8)) = (reuse, &object.reuse, s8) {
        let (p, d, iou) = learned(object, reuse, mem, s8, truth)?;
        (p_reuse, delta, oracle_iou) = (Some(p), Some(d), iou);
    }
    let mut path = settings.decide(p_reuse, oracle_iou);
    let safety = match (path.is_reuse(), &moved) {
        (true, Some(m)) => {
            settings
                .safety
                .before(object.streak, &m.seen, m.footprint, &object.audit)
        }
        // No luma cells to compare: only the streak bound applies.
        (true, None) => settings.safety.before(
            object.streak,
            &Motion::default(),
            &Default::default(),
            &Default::default(),
        ),
        _ => None,
    };
    if safety.is_some() {
        path = Path::Computed;
    }
    let (motion, change) = (
        moved.as_ref().map(|m| m.raw.pixels),
        moved.as_ref().map(|m| m.seen.change),
    );
    let follow = moved
        .and_then(|m| m.follow)
        .filter(|_| matches!(path, Path::Copied | Path::Computed));
    let stale_keys = path == Path::Computed
        && follow.is_some()
        && keys_can_wait(object, p_reuse, safety, settings);
    Ok(Decided {
        decision: GateDecision {
            p_reuse,
            oracle_iou,
            path,
            motion,
            change,
            safety,
            stale_keys,
        },
        delta,
        follow,
        ms: 0.0,
    })
}

/// Whether a computed object's memory can read its last readout moved by its motion instead
/// of this frame's keys: the motion explains the frame (P(reuse) above the rule's τ and the
/// gate's: a frame the gate itself refused is motion the luma cells do not explain), the
/// object did not move past what the safety net allows, its last fresh keys are recent enough, and its last computed
/// frame had fresh ones — a stale frame's mask becomes the next one's prior, and a chain of
/// them drifts (dance-jump, fold 0: J 0.74 → 0.60 over six stale frames in a row).
fn keys_can_wait(
    object: &ObjectState,
    p_reuse: Option<f32>,
    safety: Option<Override>,
    settings: &GateSettings,
) -> bool {
    let Some(rule) = settings.stale_keys else {
        return false;
    };
    let kept = object
        .anchor
        .as_ref()
        .is_some_and(|a| a.probability.is_some());
    kept && p_reuse.is_some_and(|p| p > rule.tau.max(settings.tau))
        && object.keys_age < rule.max_age
        && !object.stale_last
        && safety != Some(Override::Motion)
}

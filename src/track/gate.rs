//! Per object and frame: which path produces the mask. The learned gate's P(reuse) against τ,
//! or one of the comparison policies of the paper (never reuse, copy the previous mask, fuse
//! copy and translation, or an oracle that knows the ground truth).

use serde::{Deserialize, Serialize};

/// How reuse is decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GatePolicy {
    /// The learned gate: take the reuse path (see [`ReuseMode`]) when P(reuse) > τ.
    Learned,
    /// Always the full path (the baseline tracker).
    Never,
    /// When P(reuse) > τ, copy the object's previous mask (the paper's "Ours-copy").
    Copy,
    /// Copy when P(reuse) > τ2, translate when τ < P(reuse) ≤ τ2, else the full path.
    Fusion,
    /// Reuse when the ground-truth IoU between this frame and the last computed one is > τ
    /// (needs annotations of every frame: the paper's g_IoU).
    Oracle,
    /// The default. Training-free, on every tracker: copy the object's last computed mask,
    /// warped by the motion its 4×4-pixel luma cells show (per 16×16-pixel block, or one shift:
    /// see [`super::flow::Follow`]), when the change left after that motion is small (P = 1 −
    /// change / scale, against τ). Decided before the backbone: a frame where every object
    /// copies runs no network.
    #[default]
    Motion,
}

/// What the reuse path does with the last computed frame's stored score map and decoder state
/// (the deep stages are skipped in every mode; the shallow decoder stages always run on the
/// current frame's stride-8 and stride-4 features).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReuseMode {
    /// Score and state as stored. Measured best on dev (J&F 59.6 at τ = 0.7, 56.9 at 0.6).
    #[default]
    Stored,
    /// Score + Δ (the Δ-generator), state as stored.
    Delta,
    /// Score + Δ, state through the refine-translator: the paper's reuse path.
    Translate,
}

impl ReuseMode {
    pub fn adds_delta(self) -> bool {
        self != ReuseMode::Stored
    }
    pub fn translates(self) -> bool {
        self == ReuseMode::Translate
    }
}

impl std::fmt::Display for ReuseMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReuseMode::Stored => "stored",
            ReuseMode::Delta => "delta",
            ReuseMode::Translate => "translate",
        })
    }
}

impl std::fmt::Display for GatePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GatePolicy::Learned => "learned",
            GatePolicy::Never => "never",
            GatePolicy::Copy => "copy",
            GatePolicy::Fusion => "fusion",
            GatePolicy::Oracle => "oracle",
            GatePolicy::Motion => "motion",
        })
    }
}

/// The path one object's mask came from on one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// The user gave the mask.
    Given,
    /// Full path: deep backbone stages, target model, deep decoder stages.
    Computed,
    /// Reuse path: last computed score + Δ, refine-translator on the stored decoder state.
    Reused,
    /// The previous mask copied.
    Copied,
}

impl Path {
    pub fn is_reuse(self) -> bool {
        matches!(self, Path::Reused | Path::Copied)
    }
}

/// One object's decision on one frame.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct GateDecision {
    /// The learned gate's P(reuse), when it ran.
    pub p_reuse: Option<f32>,
    /// The oracle's IoU with the last computed frame, when asked.
    pub oracle_iou: Option<f32>,
    pub path: Path,
    /// The object's motion (pixels) since its last computed frame (when the gate ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motion: Option<f32>,
    /// The mean absolute luma change (0..1) of the object's cells where it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<f32>,
    /// The safety net recomputed a frame the gate would have reused, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<super::safety::Override>,
    /// A computed frame whose memory read its last readout moved by the object's motion
    /// instead of matching this frame's keys ([`StaleKeys`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale_keys: bool,
}

/// When a computed frame may skip the matching backbone (the quality mode's DINOv2): an object
/// whose P(reuse) is above `tau` but was not copied (the gate's τ or the safety net refused)
/// still moved the way its luma cells say, so its memory can read its last readout moved by
/// that motion; the frame's target model and decoder run as usual. When every computed
/// object can, the keys are not computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaleKeys {
    pub tau: f32,
    /// Frames an object may go without matching fresh keys (copied ones included).
    pub max_age: usize,
}

/// The policy and its thresholds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct GateSettings {
    pub policy: GatePolicy,
    pub tau: f32,
    /// The copy threshold of `fusion`.
    pub tau2: f32,
    /// What a reused frame does with the stored score and state.
    #[serde(default)]
    pub mode: ReuseMode,
    /// The checks that turn a risky reuse back into a computed frame.
    #[serde(default = "super::safety::SafetyNet::off")]
    pub safety: super::safety::SafetyNet,
    /// How the motion policy's copies follow the object (records from before it: one shift).
    #[serde(default = "super::flow::Follow::one_shift")]
    pub follow: super::flow::Follow,
    /// Computed frames that read a moved mask instead of fresh keys (None: never).
    #[serde(default)]
    pub stale_keys: Option<StaleKeys>,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            policy: GatePolicy::Motion,
            tau: 0.7,
            tau2: 0.9,
            mode: ReuseMode::Stored,
            safety: Default::default(),
            follow: Default::default(),
            stale_keys: None,
        }
    }
}

impl GateSettings {
    /// Whether any frame can take a reuse path (P and IoU are at most 1, and reuse needs > τ).
    pub fn can_reuse(&self) -> bool {
        self.policy != GatePolicy::Never && self.tau < 1.0
    }

    /// Whether some frame can copy the previous mask.
    pub fn copies(&self) -> bool {
        self.can_reuse()
            && matches!(
                self.policy,
                GatePolicy::Copy | GatePolicy::Fusion | GatePolicy::Motion
            )
    }

    /// Whether the policy needs the learned reuse network (gate, Δ, translator).
    pub fn needs_reuse_net(&self) -> bool {
        self.can_reuse() && self.policy != GatePolicy::Motion
    }

    /// Whether copies follow the object's measured shift (the motion policy's copies do).
    pub fn follows(&self) -> bool {
        self.policy == GatePolicy::Motion && self.can_reuse()
    }

    /// Whether the learned gate (and Δ) must run for a frame.
    pub fn runs_gate(&self) -> bool {
        self.can_reuse()
    }

    /// The path for a frame, given the gate's P(reuse) and the oracle's IoU when known.
    pub fn decide(&self, p_reuse: Option<f32>, oracle_iou: Option<f32>) -> Path {
        if !self.can_reuse() {
            return Path::Computed;
        }
        let over = |v: Option<f32>, t: f32| v.is_some_and(|v| v > t);
        match self.policy {
            GatePolicy::Never => Path::Computed,
            GatePolicy::Learned if over(p_reuse, self.tau) => Path::Reused,
            GatePolicy::Copy if over(p_reuse, self.tau) => Path::Copied,
            GatePolicy::Fusion if over(p_reuse, self.tau2) => Path::Copied,
            GatePolicy::Fusion if over(p_reuse, self.tau) => Path::Reused,
            GatePolicy::Oracle if over(oracle_iou, self.tau) => Path::Reused,
            GatePolicy::Motion if over(p_reuse, self.tau) => Path::Copied,
            _ => Path::Computed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_decide_as_documented() {
        let s = |policy, tau| GateSettings {
            policy,
            tau,
            tau2: 0.9,
            ..Default::default()
        };
        assert_eq!(
            s(GatePolicy::Learned, 0.7).decide(Some(0.8), None),
            Path::Reused
        );
        assert_eq!(
            s(GatePolicy::Learned, 0.7).decide(Some(0.7), None),
            Path::Computed
        );
        assert_eq!(
            s(GatePolicy::Learned, 1.0).decide(Some(1.0), None),
            Path::Computed
        );
        assert_eq!(
            s(GatePolicy::Never, 0.0).decide(Some(1.0), None),
            Path::Computed
        );
        assert_eq!(
            s(GatePolicy::Copy, 0.0).decide(Some(0.01), None),
            Path::Copied
        );
        assert_eq!(
            s(GatePolicy::Fusion, 0.5).decide(Some(0.95), None),
            Path::Copied
        );
        assert_eq!(
            s(GatePolicy::Fusion, 0.5).decide(Some(0.6), None),
            Path::Reused
        );
        assert_eq!(
            s(GatePolicy::Fusion, 0.5).decide(Some(0.4), None),
            Path::Computed
        );
        assert_eq!(
            s(GatePolicy::Oracle, 0.8).decide(None, Some(0.9)),
            Path::Reused
        );
        assert_eq!(
            s(GatePolicy::Oracle, 0.8).decide(Some(1.0), Some(0.5)),
            Path::Computed
        );
    }
}

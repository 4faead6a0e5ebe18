//! The safety net around reuse: a reused frame is a guess that the object barely changed, and a
//! wrong guess compounds (the stored score is never refreshed while an object reuses). Five
//! cheap checks turn a reuse back into a computed frame:
//! - **streak**: at most `max_streak` reused frames in a row per object;
//! - **motion**: the object moved more than `max_motion` of its size since its last computed
//!   frame (its cells' luma matched in this frame, 4×4-pixel cells, ±48 pixels), or its cells'
//!   luma changed more than `max_change` where it was (a deforming or blurred object) — the
//!   stored score is where the object *was*; the learned gate was blind to both (a dancer, a
//!   dog: every harmful reuse there changed its cells by 0.1–0.3, a slow rhino by ~0.02);
//! - **jump**: the reused mask's area left `[1/max_area_ratio, max_area_ratio]` of the last
//!   computed one, or its centre moved more than `max_shift` of the object's size;
//! - **audit**: the copy's expected loss is above `max_copy_loss`. On every computed frame
//!   after the object's first (whose copy would be of the drawn mask, not a decoded one) the
//!   copy the gate would have made is held against the mask computed ([`CopyAudit`]): how
//!   much mask a copy loses per unit of luma change is the object's own (a textureless dancer
//!   changes its outline while its cells' luma barely changes; a rhino's copies lose little);
//! - **growth**: a copy moves the mask, it does not scale it, so an object whose area changed
//!   between its last two computed (or given) frames is expected to lose `1 − e^(−rate·k)` of
//!   its mask k frames on (a motorbike coming at the camera).

use crate::io::Frame;
use serde::{Deserialize, Serialize};

/// The checks and their limits (reported in `stats.json` with the gate).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SafetyNet {
    pub enabled: bool,
    /// Most consecutive reused frames per object.
    pub max_streak: usize,
    /// Largest motion of the object since its last computed frame (the luma of its 4×4-pixel
    /// cells matched within ±48 pixels), as a share of its size (√area).
    pub max_motion: f32,
    /// Largest mean absolute luma change (0..1) of the object's cells where it was: a
    /// deforming or blurred object matches no shift, but its pixels change.
    #[serde(default = "default_max_change")]
    pub max_change: f32,
    /// Largest area ratio (either way) of a reused mask against the last computed one.
    pub max_area_ratio: f32,
    /// Largest move of the mask's centre, as a share of the object's size (√area).
    pub max_shift: f32,
    /// Largest expected loss (1 − IoU against the mask a computed frame would give) of a copy:
    /// this frame's luma change times the object's audited loss per change. None: no audit
    /// (runs recorded before it).
    #[serde(default)]
    pub max_copy_loss: Option<f32>,
    /// Largest expected loss (1 − IoU) of a copy from the object's growth or shrinking alone
    /// (its area's rate of change between its last two computed or given frames). None: no
    /// check.
    #[serde(default)]
    pub max_growth_loss: Option<f32>,
}

impl Default for SafetyNet {
    fn default() -> Self {
        SafetyNet {
            enabled: true,
            max_streak: MAX_STREAK,
            max_motion: 0.03,
            max_change: default_max_change(),
            max_area_ratio: 1.3,
            max_shift: 0.15,
            max_copy_loss: Some(MAX_COPY_LOSS),
            max_growth_loss: Some(MAX_GROWTH_LOSS),
        }
    }
}

/// The default `max_streak` (five folds over the 30 DAVIS-2016 train sequences, session 19):
/// 6 reused 43.5 % of frames with every fold within 0.37 J&F of never reusing; 4 reused
/// 41.6 % (0.36), 8 reused 43.9 % but lost 0.52 on two folds.
pub const MAX_STREAK: usize = 6;

/// The default `max_copy_loss` and `max_growth_loss` (five folds, session 20): together they
/// reuse 46.3 % of frames with every fold within 0.41 J&F of never reusing. The copy-loss bound
/// alone at 0.12 reused 49.0 % but lost 1.17 on fold 0 (motocross-bumps: a copy does not
/// grow); 0.1 without the growth check reused 44.3 %.
pub const MAX_COPY_LOSS: f32 = 0.12;

/// See [`MAX_COPY_LOSS`]; 0.04 reused 45.4 % (every fold within 0.37), 0.06 47.6 % (0.55).
pub const MAX_GROWTH_LOSS: f32 = 0.05;

fn default_max_change() -> f32 {
    0.06
}

/// Why the net recomputed a frame the gate would have reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Override {
    Streak,
    Motion,
    Jump,
    Audit,
    Growth,
}

/// What an object's copies lost on its computed frames: 1 − IoU of the copy the gate would
/// have made against the mask computed, beside the luma change the gate saw there
/// (exponential means, so the object's latest behaviour counts most).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CopyAudit {
    loss: f32,
    change: f32,
    seen: bool,
    trend: AreaTrend,
}

/// Weight of the newest audit in the means.
const AUDIT_WEIGHT: f32 = 0.5;

/// Change below which an audit says nothing about loss per change.
const AUDIT_MIN_CHANGE: f32 = 0.005;

impl CopyAudit {
    /// Records one computed frame: what its copy would have lost, and the change seen.
    pub fn observe(&mut self, loss: f32, change: f32) {
        if change < AUDIT_MIN_CHANGE {
            return;
        }
        if self.seen {
            self.loss += AUDIT_WEIGHT * (loss - self.loss);
            self.change += AUDIT_WEIGHT * (change - self.change);
        } else {
            *self = CopyAudit {
                loss,
                change,
                seen: true,
                ..*self
            };
        }
    }

    /// The loss a copy at `change` is expected to have (None before any audit).
    pub fn expected(&self, change: f32) -> Option<f32> {
        self.seen
            .then(|| change * self.loss / self.change.max(AUDIT_MIN_CHANGE))
    }

    /// Records the object's area on a computed or given frame.
    pub fn sized(&mut self, index: usize, area: f64) {
        self.trend.observe(index, area);
    }

    /// The loss of an unscaled copy `frames` frames after the last computed one (None until
    /// two computed or given frames with the object on them).
    pub fn growth_loss(&self, frames: usize) -> Option<f32> {
        self.trend.expected(frames)
    }
}

/// How fast an object's area changes: Δ ln area per frame between its last two computed (or
/// given) frames.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct AreaTrend {
    last: Option<(usize, f64)>,
    rate: Option<f64>,
}

impl AreaTrend {
    fn observe(&mut self, index: usize, area: f64) {
        self.rate = match self.last {
            Some((i0, a0)) if index > i0 && a0 > 0.0 && area > 0.0 => {
                Some((area / a0).ln() / (index - i0) as f64)
            }
            _ => None,
        };
        self.last = Some((index, area));
    }

    /// A copy of an area scaled by e^(±rate·frames) keeps e^(−rate·frames) of the union.
    fn expected(&self, frames: usize) -> Option<f32> {
        self.rate
            .map(|r| (1.0 - (-r.abs() * frames as f64).exp()) as f32)
    }
}

/// Where an object was on its last computed frame: its area, centre and stride-8 box.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Footprint {
    pub area: f64,
    pub centre: (f64, f64),
    /// `(x0, y0, x1, y1)` in image pixels, exclusive ends; empty when the object is absent.
    pub bbox: (usize, usize, usize, usize),
    /// The [`Thumb`] cells whose centre pixel is the object.
    pub cells: Vec<(u32, u32)>,
}

impl Footprint {
    /// The footprint of a probability map (`> 0.5` is the object) of `w × h` pixels.
    pub fn of(probability: &[f32], (w, h): (usize, usize)) -> Footprint {
        let (mut n, mut sx, mut sy) = (0usize, 0f64, 0f64);
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        for (y, row) in probability.chunks_exact(w.max(1)).enumerate() {
            for (x, _) in row.iter().enumerate().filter(|(_, p)| **p > 0.5) {
                n += 1;
                sx += x as f64;
                sy += y as f64;
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
        if n == 0 {
            return Footprint::default();
        }
        let mut cells = Vec::new();
        for cy in 0..h.div_ceil(CELL) {
            for cx in 0..w.div_ceil(CELL) {
                let (x, y) = (
                    (cx * CELL + CELL / 2).min(w - 1),
                    (cy * CELL + CELL / 2).min(h - 1),
                );
                if probability[y * w + x] > 0.5 {
                    cells.push((cx as u32, cy as u32));
                }
            }
        }
        Footprint {
            area: n as f64,
            centre: (sx / n as f64, sy / n as f64),
            bbox: (x0, y0, x1, y1),
            cells,
        }
    }
}

impl SafetyNet {
    /// No checks (what runs recorded before the net existed used).
    pub fn off() -> SafetyNet {
        SafetyNet {
            enabled: false,
            ..Default::default()
        }
    }

    /// Whether computed frames audit the copies (the audit is one of the checks).
    pub fn audits(&self) -> bool {
        self.enabled && self.max_copy_loss.is_some()
    }

    /// The net's verdict before a reuse: `streak` reused frames in a row so far, the object's
    /// motion since its last computed frame (see [`motion`]), where it was then.
    pub fn before(
        &self,
        streak: usize,
        motion: &Motion,
        computed: &Footprint,
        audit: &CopyAudit,
    ) -> Option<Override> {
        if !self.enabled {
            return None;
        }
        if streak >= self.max_streak {
            return Some(Override::Streak);
        }
        let limit = self.max_motion as f64 * computed.area.sqrt();
        if motion.pixels as f64 > limit || motion.change > self.max_change {
            return Some(Override::Motion);
        }
        let expected = audit.expected(motion.change);
        if matches!((expected, self.max_copy_loss), (Some(e), Some(m)) if e > m) {
            return Some(Override::Audit);
        }
        let scaled = audit.growth_loss(streak + 1);
        let grows = matches!((scaled, self.max_growth_loss), (Some(e), Some(m)) if e > m);
        grows.then_some(Override::Growth)
    }

    /// The net's verdict on a reused mask against the last computed frame's.
    pub fn after(&self, reused: &Footprint, computed: &Footprint) -> Option<Override> {
        if !self.enabled || computed.area == 0.0 {
            return None;
        }
        let ratio = reused.area.max(1.0) / computed.area;
        let size = computed.area.sqrt();
        let (dx, dy) = (
            reused.centre.0 - computed.centre.0,
            reused.centre.1 - computed.centre.1,
        );
        let jumped = ratio > self.max_area_ratio as f64
            || ratio < 1.0 / self.max_area_ratio as f64
            || (reused.area > 0.0 && (dx * dx + dy * dy).sqrt() > self.max_shift as f64 * size);
        jumped.then_some(Override::Jump)
    }
}

/// A frame's luma averaged over 4×4-pixel cells (0..1): what the motion check matches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Thumb {
    pub width: usize,
    pub height: usize,
    pub luma: Vec<f32>,
}

/// Cell size of a [`Thumb`], in pixels.
pub const CELL: usize = 4;

/// How far the motion check searches, in cells (±48 pixels).
const SEARCH: i64 = 12;

/// Most object cells the motion check matches (more are subsampled).
const MAX_CELLS: usize = 1500;

impl Thumb {
    pub fn of(frame: &Frame) -> Thumb {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let (tw, th) = (w.div_ceil(CELL), h.div_ceil(CELL));
        let mut sum = vec![0f32; tw * th];
        let mut count = vec![0u32; tw * th];
        for (y, row) in frame.rgb.chunks_exact(3 * w).enumerate() {
            let cells = (y / CELL) * tw;
            // A cell's pixels of this row in order, summed in a register.
            for (c, run) in row.chunks(3 * CELL).enumerate() {
                let mut acc = sum[cells + c];
                for px in run.chunks_exact(3) {
                    acc += 0.299 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32;
                }
                sum[cells + c] = acc;
                count[cells + c] += (run.len() / 3) as u32;
            }
        }
        let luma = sum
            .iter()
            .zip(&count)
            .map(|(s, &n)| s / (255.0 * n.max(1) as f32))
            .collect();
        Thumb {
            width: tw,
            height: th,
            luma,
        }
    }

    pub(crate) fn at(&self, x: i64, y: i64) -> Option<f32> {
        let inside = x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height;
        inside.then(|| self.luma[y as usize * self.width + x as usize])
    }
}

/// How an object changed since its last computed frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Motion {
    /// How far it moved, pixels.
    pub pixels: f32,
    /// Mean absolute luma change (0..1) of its cells where it was.
    pub change: f32,
    /// The shift `(dx, dy)` in pixels that matched its cells best ((0, 0) when unclear).
    pub shift: (i32, i32),
    /// The change left after that shift (= `change` when there is none).
    pub residual: f32,
}

impl Motion {
    /// The motion as a copy that follows the object sees it: moved by `shift`, only the
    /// change left after the shift counts.
    pub fn followed(&self) -> Motion {
        self.followed_by(self.residual)
    }

    /// The motion as a copy that follows the object part by part sees it: only the change
    /// left after the block warp (`residual`) counts.
    pub fn followed_by(&self, residual: f32) -> Motion {
        Motion {
            pixels: 0.0,
            change: residual,
            ..*self
        }
    }

    /// The motion gate's P(reuse): 1 − change / `scale` (floored at 0; see
    /// [`super::flow::Follow::change_scale`]), and 0 when the object moved more than
    /// `max_motion` of its size (a followed motion has moved 0).
    pub fn p_reuse(&self, footprint: &Footprint, max_motion: f32, scale: f32) -> f32 {
        let limit = max_motion as f64 * footprint.area.sqrt();
        if self.pixels as f64 > limit || footprint.area == 0.0 {
            return 0.0;
        }
        (1.0 - self.change / scale).max(0.0)
    }
}

/// How the object moved between its last computed frame (`then`, where it covered
/// `footprint`'s cells) and this frame (`now`): the shift within ±48 pixels that best matches
/// its cells' luma. No motion unless that shift matches clearly better than no shift (a flat
/// object on a flat background gives no evidence of motion, and reuse is then harmless).
pub fn motion(now: &Thumb, then: &Thumb, footprint: &Footprint) -> Motion {
    let step = footprint.cells.len().div_ceil(MAX_CELLS).max(1);
    let cells: Vec<(i64, i64, f32)> = footprint
        .cells
        .iter()
        .step_by(step)
        .filter_map(|&(x, y)| Some((x as i64, y as i64, then.at(x as i64, y as i64)?)))
        .collect();
    if cells.is_empty() {
        return Motion::default();
    }
    // Shifts keeping every cell inside the frame (most of them) are summed without bounds
    // checks and abandoned once they cannot beat the best so far: the partial sum of
    // non-negative terms only grows, so the shift found and its cost are the same.
    let (w, h) = (now.width as i64, now.height as i64);
    let bounds = cells
        .iter()
        .fold((i64::MAX, i64::MAX, i64::MIN, i64::MIN), |b, &(x, y, _)| {
            (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y))
        });
    let indexed: Vec<(i64, f32)> = cells.iter().map(|&(x, y, v)| (y * w + x, v)).collect();
    let n_all = cells.len() as f32;
    let cost = |dx: i64, dy: i64, bound: f32| -> f32 {
        let inside =
            bounds.0 + dx >= 0 && bounds.1 + dy >= 0 && bounds.2 + dx < w && bounds.3 + dy < h;
        if inside {
            let offset = dy * w + dx;
            let mut sum = 0f32;
            for chunk in indexed.chunks(64) {
                for &(i, v) in chunk {
                    sum += (now.luma[(i + offset) as usize] - v).abs();
                }
                if sum / n_all >= bound {
                    return f32::INFINITY;
                }
            }
            return sum / n_all;
        }
        let (mut sum, mut n) = (0f32, 0usize);
        for &(x, y, v) in &cells {
            if let Some(u) = now.at(x + dx, y + dy) {
                sum += (u - v).abs();
                n += 1;
            }
        }
        // Shifts that leave most of the object outside the frame are no evidence.
        if n * 2 < cells.len() {
            f32::INFINITY
        } else {
            sum / n as f32
        }
    };
    let still = cost(0, 0, f32::INFINITY);
    let mut best = (still, 0i64, 0i64);
    for dy in -SEARCH..=SEARCH {
        for dx in -SEARCH..=SEARCH {
            let c = cost(dx, dy, best.0);
            if c < best.0 {
                best = (c, dx, dy);
            }
        }
    }
    let change = if still.is_finite() { still } else { 1.0 };
    if best.0 >= 0.8 * still {
        return Motion {
            change,
            residual: change,
            ..Motion::default()
        };
    }
    let shift = (best.1 as i32 * CELL as i32, best.2 as i32 * CELL as i32);
    Motion {
        pixels: ((shift.0 * shift.0 + shift.1 * shift.1) as f32).sqrt(),
        change,
        shift,
        residual: best.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(w: usize, h: usize, x0: usize) -> Vec<f32> {
        let mut p = vec![0.0f32; w * h];
        for y in 8..24 {
            for x in x0..x0 + 16 {
                p[y * w + x] = 1.0;
            }
        }
        p
    }

    #[test]
    fn footprints_and_verdicts() {
        let (w, h) = (64, 32);
        let f = Footprint::of(&square(w, h, 8), (w, h));
        assert_eq!((f.area, f.bbox), (256.0, (8, 8, 24, 24)));
        assert_eq!(f.centre, (15.5, 15.5));
        assert_eq!(f.cells.len(), 16);
        let net = SafetyNet::default();
        assert_eq!(net.after(&f, &f), None);
        let moved = Footprint {
            centre: (25.5, 15.5),
            ..f.clone()
        };
        assert_eq!(net.after(&moved, &f), Some(Override::Jump));
        let grown = Footprint {
            area: 400.0,
            ..f.clone()
        };
        assert_eq!(net.after(&grown, &f), Some(Override::Jump));
        let none = CopyAudit::default();
        let still = Motion::default();
        let moved = Motion {
            pixels: 8.0,
            ..still
        };
        let changed = Motion {
            change: 0.2,
            ..still
        };
        assert_eq!(
            net.before(net.max_streak, &still, &f, &none),
            Some(Override::Streak)
        );
        assert_eq!(net.before(0, &moved, &f, &none), Some(Override::Motion));
        assert_eq!(net.before(0, &changed, &f, &none), Some(Override::Motion));
        assert_eq!(net.before(0, &still, &f, &none), None);
        let off = SafetyNet::off();
        assert_eq!(off.before(100, &changed, &f, &none), None);
        // Copies of this object lost 0.2 at change 0.04: at 0.02 one expects 0.1.
        let mut lossy = CopyAudit::default();
        lossy.observe(0.2, 0.04);
        let e = lossy.expected(0.02).unwrap_or(0.0);
        assert!((e - 0.1).abs() < 1e-6, "expected loss {e}");
        let slight = Motion {
            change: 0.02,
            ..still
        };
        let audited = SafetyNet {
            max_copy_loss: Some(0.05),
            ..net
        };
        assert_eq!(
            audited.before(0, &slight, &f, &lossy),
            Some(Override::Audit)
        );
        assert_eq!(audited.before(0, &slight, &f, &none), None);
        let mut sound = CopyAudit::default();
        sound.observe(0.02, 0.04);
        assert_eq!(audited.before(0, &slight, &f, &sound), None);
    }

    #[test]
    fn a_growing_object_is_recomputed() {
        let f = Footprint::of(&square(64, 32, 8), (64, 32));
        let net = SafetyNet::default();
        let still = Motion::default();
        // Area 1000 on frame 10, 1120 on frame 12: ln 1.12 / 2 ≈ 0.057 a frame, so a copy one
        // frame on keeps e^(−0.057) of it (loss 0.055 > 0.05), and a still object loses none.
        let mut growing = CopyAudit::default();
        growing.sized(10, 1000.0);
        assert_eq!(growing.growth_loss(1), None);
        growing.sized(12, 1120.0);
        let e = growing.growth_loss(1).unwrap_or(0.0);
        assert!(
            (e - (1.0 - (-(1.12f32).ln() / 2.0).exp())).abs() < 1e-6,
            "{e}"
        );
        assert_eq!(net.before(0, &still, &f, &growing), Some(Override::Growth));
        // Shrinking counts the same; a steady area passes; two frames on loses more.
        let mut shrinking = CopyAudit::default();
        shrinking.sized(0, 1120.0);
        shrinking.sized(2, 1000.0);
        assert_eq!(
            net.before(0, &still, &f, &shrinking),
            Some(Override::Growth)
        );
        let mut steady = CopyAudit::default();
        steady.sized(0, 1000.0);
        steady.sized(3, 1010.0);
        assert_eq!(net.before(0, &still, &f, &steady), None);
        assert!(steady.growth_loss(4) > steady.growth_loss(1));
        // An object that vanished gives no rate (nothing to scale).
        steady.sized(5, 0.0);
        assert_eq!(steady.growth_loss(1), None);
        let unchecked = SafetyNet {
            max_growth_loss: None,
            ..net
        };
        assert_eq!(unchecked.before(0, &still, &f, &growing), None);
    }

    #[test]
    fn motion_is_the_object_shift() {
        // A textured square on a flat background, moved 12 pixels to the right.
        let (w, h) = (64, 32);
        let frame = |x0: usize| {
            let mut rgb = vec![40u8; w * h * 3];
            for y in 8..24 {
                for x in x0..x0 + 16 {
                    let v = if (x - x0) / 4 % 2 == (y / 4) % 2 {
                        250
                    } else {
                        120
                    };
                    rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[v, v, v]);
                }
            }
            Frame {
                width: w as u32,
                height: h as u32,
                rgb,
            }
        };
        let then = Thumb::of(&frame(8));
        assert_eq!((then.width, then.height), (16, 8));
        let f = Footprint::of(&square(w, h, 8), (w, h));
        let same = motion(&Thumb::of(&frame(8)), &then, &f);
        assert_eq!((same.pixels, same.change), (0.0, 0.0));
        assert_eq!(same.p_reuse(&f, 0.03, 0.1), 1.0);
        let moved = motion(&Thumb::of(&frame(20)), &then, &f);
        assert_eq!(moved.pixels, 12.0);
        assert!(moved.change > 0.05);
        assert_eq!(moved.p_reuse(&f, 0.03, 0.1), 0.0);
        // Followed, the square's own texture matches exactly after the 12-pixel shift.
        assert_eq!((moved.shift, moved.residual), ((12, 0), 0.0));
        assert_eq!(moved.followed().p_reuse(&f, 0.03, 0.1), 1.0);
    }
}

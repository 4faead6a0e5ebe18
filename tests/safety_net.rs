//! The safety net around reuse, with the embedded gate at its default τ: a fast object is not
//! reused into collapse, a static clip is still reused (up to the streak bound), the bound holds,
//! and the masks are deterministic.

mod common;

use reuse_vos::io::{Frame, Mask};
use reuse_vos::metrics::jaccard;
use reuse_vos::model::Model;
use reuse_vos::track::gate::{GatePolicy, GateSettings, Path};
use reuse_vos::track::safety::SafetyNet;
use reuse_vos::track::{FrameOutput, Session, TrackerConfig};

fn frame(seq: &str, i: usize) -> Frame {
    Frame::load(&common::davis2016().join(format!("JPEGImages/480p/{seq}/{i:05}.jpg"))).unwrap()
}

fn gt(seq: &str, i: usize) -> Mask {
    Mask::read_binary(&common::davis2016().join(format!("Annotations/480p/{seq}/{i:05}.png")))
        .unwrap()
}

fn session(gate: GateSettings) -> Session {
    Session::new(
        &Model::embedded().unwrap(),
        TrackerConfig {
            engine: Some(reuse_vos::engine::resolve(None).unwrap()),
            gate,
            ..Default::default()
        },
    )
    .unwrap()
}

fn track(mut s: Session, frames: &[Frame], first: Mask) -> Vec<FrameOutput> {
    s.add_mask(0, first).unwrap();
    frames.iter().map(|f| s.push(f).unwrap()).collect()
}

fn paths(outs: &[FrameOutput]) -> Vec<Path> {
    outs.iter().map(|o| o.objects[0].decision.path).collect()
}

/// The longest run of reused frames.
fn longest_streak(paths: &[Path]) -> usize {
    let (mut best, mut now) = (0, 0);
    for p in paths {
        now = if p.is_reuse() { now + 1 } else { 0 };
        best = best.max(now);
    }
    best
}

fn mean_j(outs: &[FrameOutput], truth: &[Mask]) -> f64 {
    let js: Vec<f64> = (1..outs.len())
        .map(|i| jaccard(&truth[i].ids, 1, &outs[i].mask.ids, 1))
        .collect();
    js.iter().sum::<f64>() / js.len() as f64
}

/// The bear, cut out at half size, sliding over a still boat frame: `n` frames, starting at
/// x = `x0`, `step` px per frame; with its masks.
fn sliding_bear(n: usize, x0: i64, step: i64) -> (Vec<Frame>, Vec<Mask>) {
    let (object, mask) = (frame("bear", 0), gt("bear", 0));
    let background = frame("boat", 0);
    (0..n as i64)
        .map(|i| common::paste(&object, &mask, 0.5, &background, (x0 + step * i, 120)))
        .unzip()
}

/// The masks without reuse and with the default gate.
fn never_and_default(frames: &[Frame], first: &Mask) -> (Vec<FrameOutput>, Vec<FrameOutput>) {
    let never = GateSettings {
        policy: GatePolicy::Never,
        ..Default::default()
    };
    (
        track(session(never), frames, first.clone()),
        track(session(GateSettings::default()), frames, first.clone()),
    )
}

#[test]
fn a_fast_object_is_not_reused_into_collapse() {
    // Crossing the frame at 40 px per frame.
    let (frames, truth) = sliding_bear(10, 20, 40);
    let (baseline, with_net) = never_and_default(&frames, &truth[0]);
    let (jb, jn) = (mean_j(&baseline, &truth), mean_j(&with_net, &truth));
    eprintln!(
        "fast object: J {jb:.3} computed, {jn:.3} with the gate and its net; paths {:?}",
        paths(&with_net)
    );
    assert!(jb > 0.5, "the full path follows it: J {jb}");
    assert!(jn > jb - 0.05, "J {jn} against {jb} without reuse");
}

#[test]
fn a_static_clip_is_reused_up_to_the_streak_bound_deterministically() {
    let gate = GateSettings::default();
    let bound = gate.safety.max_streak;
    // Room for the bound to step in twice.
    let n = 2 * (bound + 1) + 1;
    let still: Vec<Frame> = (0..n).map(|_| frame("rhino", 0)).collect();
    let outs = track(session(gate), &still, gt("rhino", 0));
    let p = paths(&outs);
    let reused = p[1..].iter().filter(|p| p.is_reuse()).count();
    eprintln!("static clip: {reused} of {} reused: {p:?}", n - 1);
    assert!(longest_streak(&p) <= bound, "{p:?}");
    // Every frame the bound allows: bound of every bound + 1.
    assert!(reused >= (n - 1) * bound / (bound + 1) - 1, "{p:?}");
    let streak_overrides = outs
        .iter()
        .filter(|o| o.objects[0].decision.safety.is_some())
        .count();
    assert!(streak_overrides >= 2, "the bound stepped in: {p:?}");
    // The audit's measurement is recorded on every computed frame, never on a reused one: the
    // copy of the given mask loses what the tracker departs from it, the copy of a computed
    // frame of a still object nothing.
    for (i, o) in outs.iter().enumerate().skip(2) {
        let rec = &o.objects[0];
        match (rec.decision.path, rec.copy_loss) {
            (Path::Computed, Some(loss)) => {
                assert!((0.0..0.15).contains(&loss), "frame {i}: copy loss {loss}")
            }
            (Path::Computed, None) => panic!("frame {i}: computed without an audit"),
            (_, loss) => assert!(loss.is_none(), "frame {i}: reused with an audit"),
        }
    }
    let last = outs[n - 1].objects[0].copy_loss;
    assert!(
        last.is_some_and(|l| l < 0.01),
        "{last:?} after a computed frame"
    );
    let again = track(session(gate), &still, gt("rhino", 0));
    for (a, b) in outs.iter().zip(&again) {
        assert!(a.mask == b.mask, "deterministic masks");
    }

    // Without the net, the gate alone reuses the whole clip.
    let off = GateSettings {
        safety: SafetyNet::off(),
        ..gate
    };
    let p = paths(&track(session(off), &still, gt("rhino", 0)));
    assert!(longest_streak(&p) > bound, "{p:?}");
}

#[test]
fn the_motion_gate_copies_a_still_object_without_the_networks_on_any_tracker() {
    use reuse_vos::track::TrackerKind;
    let still: Vec<Frame> = (0..8).map(|_| frame("rhino", 0)).collect();
    let (fast, truth) = sliding_bear(8, 20, 40);
    for tracker in [TrackerKind::Frtm, TrackerKind::Memory] {
        let make = |policy| {
            Session::new(
                &Model::embedded_for(&tracker.to_string()).unwrap(),
                TrackerConfig {
                    tracker,
                    engine: Some(reuse_vos::engine::resolve(None).unwrap()),
                    gate: GateSettings {
                        policy,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let outs = track(make(GatePolicy::Motion), &still, gt("rhino", 0));
        let p = paths(&outs);
        assert!(longest_streak(&p) <= GateSettings::default().safety.max_streak);
        let copied: Vec<(&FrameOutput, &FrameOutput)> = outs
            .windows(2)
            .filter(|w| w[1].objects[0].decision.path == Path::Copied)
            .map(|w| (&w[0], &w[1]))
            .collect();
        assert!(copied.len() >= 5, "{tracker}: {p:?}");
        for (before, o) in &copied {
            assert_eq!(o.times.backbone_ms, 0.0, "a copied frame runs no network");
            assert!(o.mask == before.mask, "the previous mask, as it was");
        }
        let moving = track(make(GatePolicy::Motion), &fast, truth[0].clone());
        let computed = track(make(GatePolicy::Never), &fast, truth[0].clone());
        let (jm, jc) = (mean_j(&moving, &truth), mean_j(&computed, &truth));
        eprintln!("{tracker}: fast object J {jm:.3} with the motion gate, {jc:.3} computed");
        assert!(jm > jc - 0.05, "{tracker}: {:?}", paths(&moving));
    }
}

#[test]
fn the_default_gate_follows_a_sliding_object_with_copies_that_move_with_it() {
    // The bear at half size sliding 8 px per frame over a still boat frame: its cells match
    // exactly after the shift, so copies moved by it stand in for computed frames.
    let (frames, truth) = sliding_bear(13, 40, 8);
    let (baseline, outs) = never_and_default(&frames, &truth[0]);
    let p = paths(&outs);
    let copied = p[1..].iter().filter(|&&p| p == Path::Copied).count();
    let (jb, jf) = (mean_j(&baseline, &truth), mean_j(&outs, &truth));
    eprintln!("sliding object: J {jb:.3} computed, {jf:.3} followed; paths {p:?}");
    assert!(copied >= 4, "{p:?}");
    assert!(jf > jb - 0.05, "J {jf} against {jb} without reuse");
    // A copy that did not follow would stay behind: the followed one moved with the object.
    let last_copy = (1..outs.len())
        .rev()
        .find(|&i| p[i] == Path::Copied)
        .unwrap();
    let j_copy = jaccard(&truth[last_copy].ids, 1, &outs[last_copy].mask.ids, 1);
    assert!(j_copy > 0.8, "frame {last_copy}: J {j_copy}");
}

#[test]
fn block_following_copies_a_deforming_object_where_one_shift_cannot() {
    use reuse_vos::track::flow::Follow;
    // A flamingo walking: legs and neck move apart from the body.
    let frames: Vec<Frame> = (0..16).map(|i| frame("flamingo", i)).collect();
    let truth: Vec<Mask> = (0..16).map(|i| gt("flamingo", i)).collect();
    let with = |follow| GateSettings {
        follow,
        ..Default::default()
    };
    let never = GateSettings {
        policy: GatePolicy::Never,
        ..Default::default()
    };
    let computed = track(session(never), &frames, truth[0].clone());
    let shift = track(session(with(Follow::Shift)), &frames, truth[0].clone());
    let blocks = track(session(with(Follow::Blocks)), &frames, truth[0].clone());
    let copies = |o: &[FrameOutput]| paths(o)[1..].iter().filter(|p| p.is_reuse()).count();
    let (jc, js, jb) = (
        mean_j(&computed, &truth),
        mean_j(&shift, &truth),
        mean_j(&blocks, &truth),
    );
    eprintln!(
        "flamingo: J {jc:.3} computed; one shift {js:.3} ({} copied); blocks {jb:.3} ({} copied): {:?}",
        copies(&shift),
        copies(&blocks),
        paths(&blocks)
    );
    assert!(copies(&blocks) > copies(&shift), "blocks copy more");
    assert!(jb > jc - 0.03, "J {jb} against {jc} computed");
    assert_eq!(
        GateSettings::default().follow,
        Follow::Blocks,
        "the default"
    );
}

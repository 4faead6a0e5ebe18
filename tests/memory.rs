//! The memory tracker on real DAVIS frames (at half size, so the suite stays quick): a bounded
//! memory, a static clip, an object that leaves and comes back, a small fast object pasted on
//! another video, a looped clip that must not drift, deterministic masks.

mod common;

use reuse_vos::io::{Frame, Mask};
use reuse_vos::metrics::jaccard;
use reuse_vos::model::Model;
use reuse_vos::track::gate::{GatePolicy, GateSettings};
use reuse_vos::track::{FrameOutput, Session, TrackerConfig, TrackerKind};

/// Half-size frame (2×2 box filter).
fn half(f: &Frame) -> Frame {
    let (w, h) = (f.width / 2, f.height / 2);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let s: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| u32::from(f.pixel(2 * x + dx, 2 * y + dy)[c]))
                    .sum();
                rgb.push((s / 4) as u8);
            }
        }
    }
    Frame {
        width: w,
        height: h,
        rgb,
    }
}

/// Half-size mask (the top-left pixel of each 2×2 block).
fn half_mask(m: &Mask) -> Mask {
    let (w, h) = (m.width / 2, m.height / 2);
    let mut out = Mask::new(w, h);
    for y in 0..h as usize {
        for x in 0..w as usize {
            out.ids[y * w as usize + x] = m.ids[2 * y * m.width as usize + 2 * x];
        }
    }
    out
}

fn frame(seq: &str, i: usize) -> Frame {
    let p = common::davis2016().join(format!("JPEGImages/480p/{seq}/{i:05}.jpg"));
    half(&Frame::load(&p).unwrap())
}

fn truth(seq: &str, i: usize) -> Mask {
    let p = common::davis2016().join(format!("Annotations/480p/{seq}/{i:05}.png"));
    half_mask(&Mask::read_binary(&p).unwrap())
}

/// The memory tracker, every frame computed. The embedded decoder is FRTM's: the session reads
/// the memory's probability directly.
fn memory_config() -> TrackerConfig {
    TrackerConfig {
        tracker: TrackerKind::Memory,
        gate: GateSettings {
            policy: GatePolicy::Never,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn session(slots: usize) -> Session {
    let mut cfg = memory_config();
    cfg.memory.slots = slots;
    // Every frame written, so the bank fills within a few frames.
    cfg.memory.write_every = 1;
    cfg.memory.write_change = 0.0;
    Session::new(&Model::embedded().unwrap(), cfg).unwrap()
}

/// Tracks `frames` from `first` given on frame 0; every frame's output.
fn track(s: &mut Session, first: Mask, frames: &[Frame]) -> Vec<FrameOutput> {
    s.add_mask(0, first).unwrap();
    frames.iter().map(|f| s.push(f).unwrap()).collect()
}

fn j(out: &FrameOutput, gt: &Mask) -> f64 {
    jaccard(&gt.ids, 1, &out.mask.ids, 1)
}

#[test]
fn the_memory_never_grows_past_its_slots() {
    let frames: Vec<Frame> = (0..14).map(|i| frame("rhino", i)).collect();
    let outs = track(&mut session(3), truth("rhino", 0), &frames);
    let bytes: Vec<usize> = outs.iter().map(|o| o.objects[0].memory_bytes).collect();
    // The given frame plus at most three tracked frames: full from the fourth tracked frame on.
    assert!(bytes[4] > bytes[1], "{bytes:?}");
    assert!(bytes[4..].iter().all(|&b| b == bytes[4]), "{bytes:?}");
}

#[test]
fn a_static_clip_keeps_its_mask() {
    let still = frame("rhino", 0);
    let frames = vec![still; 8];
    let gt = truth("rhino", 0);
    let outs = track(&mut session(7), gt.clone(), &frames);
    let last = j(outs.last().unwrap(), &gt);
    assert!(last > 0.9, "J {last}");
}

#[test]
fn an_object_that_leaves_and_comes_back_is_found_again() {
    // rhino, four frames of another video without it, rhino again.
    let mut frames: Vec<Frame> = vec![frame("rhino", 0), frame("rhino", 1)];
    frames.extend((0..4).map(|i| frame("boat", i)));
    frames.push(frame("rhino", 2));
    let outs = track(&mut session(7), truth("rhino", 0), &frames);
    let gone = outs[2..6]
        .iter()
        .map(|o| o.objects[0].area)
        .max()
        .unwrap_or(0);
    let back = j(&outs[6], &truth("rhino", 2));
    assert!(back > 0.7, "J back {back} (areas while away up to {gone})");
}

#[test]
fn a_looped_clip_does_not_drift() {
    let clip: Vec<Frame> = (0..12).map(|i| frame("bear", i)).collect();
    let gts: Vec<Mask> = (0..12).map(|i| truth("bear", i)).collect();
    let frames: Vec<Frame> = (0..5).flat_map(|_| clip.iter().cloned()).collect();
    let outs = track(&mut session(7), gts[0].clone(), &frames);
    let pass = |p: usize| (1..12).map(|i| j(&outs[p * 12 + i], &gts[i])).sum::<f64>() / 11.0;
    let (first, last) = (pass(0), pass(4));
    assert!(last > first - 0.05, "first pass J {first}, last {last}");
}

#[test]
fn masks_are_deterministic() {
    let frames: Vec<Frame> = (0..6).map(|i| frame("rhino", i)).collect();
    let a = track(&mut session(7), truth("rhino", 0), &frames);
    let b = track(&mut session(7), truth("rhino", 0), &frames);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.mask.ids, y.mask.ids);
    }
}

#[test]
fn a_small_fast_object_is_tracked() {
    // The rhino scaled so it covers under 2 % of the frame, moving 10 px per frame across
    // the boat video.
    let (object, mask) = (frame("rhino", 0), truth("rhino", 0));
    let n = 12;
    let mut frames = Vec::new();
    let mut gts = Vec::new();
    for i in 0..n {
        let (f, m) = common::paste(
            &object,
            &mask,
            0.3,
            &frame("boat", i),
            (40 + 10 * i as i64, 60),
        );
        frames.push(f);
        gts.push(m);
    }
    let area = gts[0].area(1) as f64 / gts[0].ids.len() as f64;
    assert!(area < 0.02, "the object covers {area}");
    let outs = track(&mut session(7), gts[0].clone(), &frames);
    let mean = (1..n).map(|i| j(&outs[i], &gts[i])).sum::<f64>() / (n - 1) as f64;
    assert!(mean > 0.6, "mean J {mean}");
}

#[test]
fn the_fusion_tracker_reads_both_scores_through_its_decoder() {
    let model = Model::embedded_for("fusion").unwrap();
    assert_eq!(model.decoder_config.score_channels, 2);
    let cfg = TrackerConfig {
        tracker: TrackerKind::Fusion,
        ..Default::default()
    };
    let mut s = Session::new(&model, cfg).unwrap();
    // The default gate (motion) runs on every tracker; the learned one was trained over FRTM's
    // decoder: asked for on fusion, every frame is computed.
    assert_eq!(s.gate().policy, GatePolicy::Motion);
    let learned = TrackerConfig {
        tracker: TrackerKind::Fusion,
        gate: GateSettings {
            policy: GatePolicy::Learned,
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        Session::new(&model, learned).unwrap().gate().policy,
        GatePolicy::Never
    );
    let frames: Vec<Frame> = (0..8).map(|i| frame("rhino", i)).collect();
    let outs = track(&mut s, truth("rhino", 0), &frames);
    let mean = (1..8).map(|i| j(&outs[i], &truth("rhino", i))).sum::<f64>() / 7.0;
    assert!(mean > 0.7, "mean J {mean}");
    // A two-channel decoder refuses a tracker that gives one channel.
    let frtm = TrackerConfig::default();
    assert!(Session::new(&model, frtm).is_err());
}

#[test]
fn projected_keys_track_with_less_memory() {
    let frames: Vec<Frame> = (0..8).map(|i| frame("rhino", i)).collect();
    let run = |channels: Option<usize>| {
        let mut cfg = memory_config();
        cfg.matching.key_channels = channels;
        let mut s = Session::new(&Model::embedded().unwrap(), cfg).unwrap();
        track(&mut s, truth("rhino", 0), &frames)
    };
    let (full, half) = (run(None), run(Some(16)));
    let mean =
        |outs: &[FrameOutput]| (1..8).map(|i| j(&outs[i], &truth("rhino", i))).sum::<f64>() / 7.0;
    // (Measured: 0.81 against 0.89 with all 32; through the fusion decoder the 30-sequence
    // cost is 1.2 J&F.)
    let (a, b) = (mean(&half), mean(&full));
    assert!(a > 0.75 && b > a - 0.15, "16 channels {a}, 32 channels {b}");
    // Half the key channels: the object's memory (keys, values and its other state) shrinks.
    let bytes = |outs: &[FrameOutput]| outs[7].objects[0].memory_bytes as f64;
    let ratio = bytes(&half) / bytes(&full);
    assert!(ratio > 0.5 && ratio < 0.9, "ratio {ratio}");
    let mut bad = TrackerConfig::default();
    bad.matching.key_channels = Some(24);
    let err = Session::new(&Model::embedded().unwrap(), bad)
        .err()
        .unwrap();
    assert!(err.to_string().contains("--key-channels 24"), "{err}");
}

//! The reuse path: Burn ↔ ONNX Runtime parity of its modules, and the tracker's policies on
//! real DAVIS frames with the embedded trained weights.

mod common;

use reuse_vos::engine::BackboneEngine;
use reuse_vos::engine::ReuseEngine;
use reuse_vos::engine::burn::{BurnBackbone, BurnReuse, device};
use reuse_vos::engine::ort::reuse::OrtReuse;
use reuse_vos::io::{Frame, Mask};
use reuse_vos::model::FeatureMap;
use reuse_vos::model::Model;
use reuse_vos::model::backbone::{BackboneSpec, normalize};
use reuse_vos::model::online::area_downsample;
use reuse_vos::model::reuse::ReuseConfig;
use reuse_vos::track::gate::{GatePolicy, GateSettings, Path, ReuseMode};
use reuse_vos::track::safety::SafetyNet;
use reuse_vos::track::{Session, TrackerConfig};

fn rel(a: &[f32], b: &[f32]) -> f32 {
    let max = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / max
}

fn frame(seq: &str, i: usize) -> Frame {
    Frame::load(&common::davis2016().join(format!("JPEGImages/480p/{seq}/{i:05}.jpg"))).unwrap()
}

fn gt(seq: &str, i: usize) -> Mask {
    Mask::read_binary(&common::davis2016().join(format!("Annotations/480p/{seq}/{i:05}.png")))
        .unwrap()
}

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn reuse_modules_parity_burn_vs_ort() {
    let f = frame("bear", 0);
    let spec = BackboneSpec::embedded().unwrap();
    let p = BurnBackbone::new(&spec).pyramid(&normalize(&f)).unwrap();
    let dev = device();
    dev.seed(11);
    let mut net = ReuseConfig::new().init(&dev);
    // The untrained gate's last conv is scaled down (P(reuse) ≈ 0.15 whatever the input):
    // give it unit-size weights so the logit depends on everything before it.
    let [o, i, _, _] = net.gate_out.weight.val().dims();
    let w: Vec<f32> = (0..o * i)
        .map(|k| ((k * 37) % 11) as f32 / 5.0 - 1.0)
        .collect();
    net.gate_out.weight =
        burn::module::Param::from_data(burn::tensor::TensorData::new(w, [o, i, 1, 1]), &dev);
    let mut ort = match OrtReuse::new(&net, p.s8.channels, 2) {
        Ok(o) => o,
        Err(e) if !common::ort_required() => return eprintln!("skipping: {e}"),
        Err(e) => panic!("{e}"),
    };
    let mut burn = BurnReuse::new(net);
    let (w, h) = (f.width as usize, f.height as usize);
    let (h8, w8) = (p.s8.height, p.s8.width);
    let full: Vec<f32> = gt("bear", 0)
        .ids
        .iter()
        .map(|&v| f32::from(v > 0))
        .collect();
    let mask8 = FeatureMap::new(1, h8, w8, area_downsample(&full, w, h, w8, h8));

    let tb = burn.template(&p.s8, &mask8).unwrap();
    let to = ort.template(&p.s8, &mask8).unwrap();
    let k = ReuseConfig::new().key_channels;
    assert_eq!(tb.len(), k * k);
    let row: f32 = tb[..k].iter().sum();
    assert!(
        (row - 1.0).abs() < 1e-4,
        "template rows are softmaxes: {row}"
    );
    let r_template = rel(&tb, &to);

    let score8 = FeatureMap::new(
        1,
        h8,
        w8,
        (0..h8 * w8)
            .map(|i| ((i % w8) as f32 / w8 as f32 - 0.3) * 1.5)
            .collect(),
    );
    let earlier = BurnBackbone::new(&spec)
        .pyramid(&normalize(&frame("bear", 5)))
        .unwrap();
    let (lb, db) = burn.gate(&p.s8, &earlier.s8, &score8, &tb).unwrap();
    let (lo, dob) = ort.gate(&p.s8, &earlier.s8, &score8, &tb).unwrap();
    assert_eq!(
        (db.height, db.width),
        (p.s16.height, p.s16.width),
        "Δ is at the score map's stride"
    );
    let r_delta = rel(&db.data, &dob.data);
    let d_logit = (lb - lo).abs() / lb.abs().max(1e-3);
    eprintln!("gate logit: burn {lb}, ort {lo}");

    let (h16, w16) = (p.s16.height, p.s16.width);
    let state = FeatureMap::new(
        32,
        h16,
        w16,
        (0..32 * h16 * w16)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0)
            .collect(),
    );
    let sb = burn.translate(&state, &db).unwrap();
    let so = ort.translate(&state, &db).unwrap();
    assert_eq!(sb.shape(), state.shape());
    let r_state = rel(&sb.data, &so.data);
    eprintln!(
        "reuse burn vs ort: template {r_template:e}, logit {d_logit:e}, Δ {r_delta:e}, translated state {r_state:e}"
    );
    for r in [r_template, d_logit, r_delta, r_state] {
        assert!(r < 1e-4, "{r:e}");
    }
}

fn session(policy: GatePolicy, tau: f32) -> Session {
    session_with(policy, tau, ReuseMode::default())
}

fn session_with(policy: GatePolicy, tau: f32, mode: ReuseMode) -> Session {
    let model = Model::embedded().unwrap();
    assert!(
        model.reuse.is_some(),
        "the reuse path's weights are embedded"
    );
    Session::new(
        &model,
        TrackerConfig {
            engine: Some(reuse_vos::engine::resolve(None).unwrap()),
            gate: GateSettings {
                policy,
                tau,
                tau2: 0.9,
                mode,
                // The gate itself, without the safety net (tests/safety_net.rs has it).
                safety: SafetyNet::off(),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap()
}

/// Tracks `frames` from the first one's ground truth; the paths object 1 took, and the masks.
fn track(mut s: Session, frames: &[Frame], first: Mask) -> (Vec<Path>, Vec<Mask>) {
    s.add_mask(0, first).unwrap();
    let mut paths = Vec::new();
    let mut masks = Vec::new();
    for f in frames {
        let out = s.push(f).unwrap();
        paths.push(out.objects[0].decision.path);
        masks.push(out.mask);
    }
    (paths, masks)
}

#[test]
fn tau_one_is_the_baseline_and_copy_at_zero_keeps_the_first_mask() {
    let frames: Vec<Frame> = (0..8).map(|i| frame("rhino", i)).collect();
    let (_, baseline) = track(session(GatePolicy::Never, 0.7), &frames, gt("rhino", 0));
    let (paths, at_one) = track(session(GatePolicy::Learned, 1.0), &frames, gt("rhino", 0));
    assert!(paths[1..].iter().all(|&p| p == Path::Computed));
    assert!(baseline == at_one, "τ = 1 gives the baseline's masks");

    let (paths, copied) = track(session(GatePolicy::Copy, 0.0), &frames, gt("rhino", 0));
    assert!(paths[1..].iter().all(|&p| p == Path::Copied), "{paths:?}");
    let first = gt("rhino", 0);
    assert!(copied.iter().all(|m| m.ids == first.ids));
    assert!(copied[5].ids != baseline[5].ids, "the baseline does move");
}

#[test]
fn the_trained_gate_reuses_a_static_clip_and_computes_after_a_cut() {
    let still: Vec<Frame> = (0..10).map(|_| frame("rhino", 0)).collect();
    let (paths, stored) = track(session(GatePolicy::Learned, 0.7), &still, gt("rhino", 0));
    let reused = paths[1..].iter().filter(|p| p.is_reuse()).count();
    eprintln!("static clip: {reused} of 9 frames reused: {paths:?}");
    assert!(reused >= 8, "{paths:?}");
    // On an unchanged frame the stored score and state are what the full path computes: the
    // reused mask is the computed one, exactly.
    let (_, computed) = track(session(GatePolicy::Never, 0.7), &still[..2], gt("rhino", 0));
    assert_eq!(paths[1], Path::Reused);
    assert!(
        stored[1] == computed[1],
        "stored reuse = computation on a repeated frame"
    );
    // The Δ-generator and the translator move it (they are learned, not exact).
    for mode in [ReuseMode::Delta, ReuseMode::Translate] {
        let (_, moved) = track(
            session_with(GatePolicy::Learned, 0.7, mode),
            &still[..2],
            gt("rhino", 0),
        );
        let differ = moved[1]
            .ids
            .iter()
            .zip(&computed[1].ids)
            .filter(|(a, b)| a != b)
            .count();
        eprintln!("{mode}: {differ} pixels differ from the computed mask on a repeated frame");
    }

    // Rhino, then a cut to another video.
    let mut cut: Vec<Frame> = (0..4).map(|i| frame("rhino", i)).collect();
    cut.extend((0..4).map(|i| frame("bear", i)));
    let (paths, _) = track(session(GatePolicy::Learned, 0.7), &cut, gt("rhino", 0));
    eprintln!("clip with a cut at frame 4: {paths:?}");
    assert_eq!(paths[4], Path::Computed, "{paths:?}");
}

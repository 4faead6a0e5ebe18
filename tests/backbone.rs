//! The MobileNetV2 port against torchvision's golden activations, on both engines.

mod common;

use reuse_vos::engine::burn::BurnBackbone;
use reuse_vos::engine::ort::backbone::debug_session;
use reuse_vos::engine::ort::graph::run;
use reuse_vos::engine::{BackboneEngine, EngineKind};
use reuse_vos::io::Frame;
use reuse_vos::model::backbone::net::{to_map, to_tensor};
use reuse_vos::model::backbone::{BackboneSpec, normalize};
use reuse_vos::model::{FeatureMap, Weights};
use serde_json::Value;

fn fixture(name: &str) -> std::path::PathBuf {
    common::shared().join("fixtures/mobilenet-v2").join(name)
}

fn spec() -> BackboneSpec {
    BackboneSpec::embedded().expect("embedded weights")
}

/// Every `features.<i>` output (and the logits as a 1000x1x1 map) on Burn.
fn burn_all(spec: &BackboneSpec, input: &FeatureMap) -> Vec<FeatureMap> {
    let engine = BurnBackbone::new(spec);
    let device = reuse_vos::engine::burn::device();
    let outs = engine.net().forward_all(to_tensor(input, &device));
    let logits = engine
        .net()
        .classify(outs.last().unwrap().clone())
        .expect("classifier");
    let mut maps: Vec<FeatureMap> = outs.into_iter().map(|t| to_map(t).unwrap()).collect();
    let l = logits.into_data().try_into_vec::<f32>().unwrap();
    maps.push(FeatureMap::new(1000, 1, 1, l));
    maps
}

/// The same on ONNX Runtime, or None when it is not required and not available.
fn ort_all(spec: &BackboneSpec, input: &FeatureMap) -> Option<Vec<FeatureMap>> {
    let mut session = match debug_session(spec, 2) {
        Ok(s) => s,
        Err(e) if !common::ort_required() => {
            eprintln!("skipping ONNX Runtime: {e}");
            return None;
        }
        Err(e) => panic!("ONNX Runtime must load under CI / REUSE_VOS_REQUIRE_ORT: {e}"),
    };
    let mut names: Vec<String> = (0..19).map(|i| format!("features.{i}")).collect();
    names.push("logits".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Some(run(&mut session, &[("image", input)], &refs).unwrap())
}

fn crop_fixture() -> Weights {
    Weights::load(&fixture("crop96x128.safetensors")).unwrap()
}

fn to_map_w(w: &Weights, name: &str) -> FeatureMap {
    let t = w.get(name).unwrap();
    FeatureMap::new(t.shape[1], t.shape[2], t.shape[3], t.data.clone())
}

/// max|diff| / max|ref| over every features.<i> of the crop.
fn crop_parity(outs: &[FeatureMap], engine: &str) -> f32 {
    let fx = crop_fixture();
    let mut worst = 0f32;
    for (i, out) in outs.iter().take(19).enumerate() {
        let reference = to_map_w(&fx, &format!("features.{i}"));
        let rel = out.max_abs_diff(&reference) / reference.max_abs();
        assert!(
            rel <= 1e-3,
            "{engine} features.{i}: max|diff|/max|ref| = {rel:e}"
        );
        worst = worst.max(rel);
    }
    eprintln!("{engine}: crop96x128 worst max|diff|/max|ref| over features.0..18 = {worst:e}");
    worst
}

#[test]
fn crop_matches_torchvision_on_burn() {
    let spec = spec();
    let input = to_map_w(&crop_fixture(), "input");
    crop_parity(&burn_all(&spec, &input), "burn");
}

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn crop_matches_torchvision_on_ort() {
    let spec = spec();
    let input = to_map_w(&crop_fixture(), "input");
    if let Some(outs) = ort_all(&spec, &input) {
        crop_parity(&outs, "ort");
    }
}

struct Summary {
    sum: f64,
    mean: f64,
    std: f64,
    absmax: f64,
}

fn summary(m: &FeatureMap) -> Summary {
    let n = m.data.len() as f64;
    let sum: f64 = m.data.iter().map(|&v| v as f64).sum();
    let mean = sum / n;
    let var = m
        .data
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    Summary {
        sum,
        mean,
        std: var.sqrt(),
        absmax: m.max_abs() as f64,
    }
}

fn top5(logits: &FeatureMap) -> Vec<u64> {
    let mut idx: Vec<usize> = (0..logits.data.len()).collect();
    idx.sort_by(|&a, &b| logits.data[b].total_cmp(&logits.data[a]));
    idx[..5].iter().map(|&i| i as u64).collect()
}

/// Full 854x480 frame: per-layer statistics against torchvision's, and the ImageNet top-5.
fn check_full_frame(outs: &[FeatureMap], engine: &str) {
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("full-frame-stats.json")).unwrap())
            .unwrap();
    let ff = &stats["full_frame"];
    let mut worst_std = 0f64;
    for (i, m) in outs.iter().take(20).enumerate() {
        let name = if i < 19 {
            format!("features.{i}")
        } else {
            "logits".into()
        };
        let e = &ff[&name];
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        if i < 19 {
            assert_eq!(shape, m.shape().to_vec(), "{engine} {name} shape");
        }
        let s = summary(m);
        let (em, es, ea) = (
            e["mean"].as_f64().unwrap(),
            e["std"].as_f64().unwrap(),
            e["absmax"].as_f64().unwrap(),
        );
        // The JPEG decoder here (zune-jpeg) and PIL's libjpeg-turbo differ by up to 5 grey
        // levels on 9 % of this frame's pixels, so the statistics agree closely but not to float
        // precision (fed PIL's decoded pixels, the taps match to ~1e-6: see the README).
        let rel_std = (s.std - es).abs() / es;
        worst_std = worst_std.max(rel_std);
        let bound = if i < 19 { 2e-3 } else { 1e-2 };
        assert!(rel_std < bound, "{engine} {name}: std {} vs {es}", s.std);
        assert!(
            (s.mean - em).abs() < 2e-3 * es,
            "{engine} {name}: mean {} vs {em}",
            s.mean
        );
        assert!(
            (s.absmax - ea).abs() < 0.02 * ea,
            "{engine} {name}: absmax {} vs {ea}",
            s.absmax
        );
        let _ = s.sum;
        if let Some(samples) = e["samples"].as_object() {
            for (k, v) in samples {
                let p: Vec<usize> = k.split(',').map(|x| x.parse().unwrap()).collect();
                let got = m.at(p[0], p[1], p[2]) as f64;
                let want = v.as_f64().unwrap();
                assert!(
                    (got - want).abs() < 0.1 * es,
                    "{engine} {name}[{k}]: {got} vs {want}"
                );
            }
        }
    }
    let want: Vec<u64> = ff["top5"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(top5(&outs[19]), want, "{engine} top-5");
    eprintln!("{engine}: full frame, worst relative std difference {worst_std:e}, top-5 {want:?}");
}

/// The f32 backbone on ONNX Runtime; None (said on stderr) when its library is missing and
/// not required.
fn ort_backbone(spec: &BackboneSpec) -> Option<Box<dyn BackboneEngine>> {
    match reuse_vos::engine::backbone(spec, Some(EngineKind::Ort), None, 2) {
        Ok(o) => Some(o),
        Err(e) if !common::ort_required() => {
            eprintln!("skipping: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn bear_frame() -> FeatureMap {
    let path = common::davis2016().join("JPEGImages/480p/bear/00000.jpg");
    normalize(&Frame::load(&path).unwrap())
}

#[test]
fn full_frame_matches_torchvision_on_burn() {
    let burn = burn_all(&spec(), &bear_frame());
    check_full_frame(&burn, "burn");
}

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn full_frame_matches_torchvision_on_ort_and_the_engines_agree() {
    let spec = spec();
    let input = bear_frame();
    let Some(ort) = ort_all(&spec, &input) else {
        return;
    };
    check_full_frame(&ort, "ort");
    let burn = burn_all(&spec, &input);
    let mut worst = 0f32;
    for (i, (a, b)) in burn.iter().zip(&ort).enumerate() {
        let rel = a.max_abs_diff(b) / a.max_abs();
        assert!(rel < 1e-4, "features.{i}: burn vs ort {rel:e}");
        worst = worst.max(rel);
    }
    eprintln!("burn vs ort, full frame: worst max|diff|/max|x| = {worst:e}");
}

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn split_engines_agree_on_the_taps() {
    let spec = spec();
    let input = bear_frame();
    let mut burn = BurnBackbone::new(&spec);
    let b = burn.pyramid(&input).unwrap();
    let Some(mut ort) = ort_backbone(&spec) else {
        return;
    };
    let o = ort.pyramid(&input).unwrap();
    for ((name, x), (_, y)) in b.named().into_iter().zip(o.named()) {
        assert_eq!(x.shape(), y.shape(), "{name}");
        let rel = x.max_abs_diff(y) / x.max_abs();
        assert!(rel < 1e-4, "{name}: {rel:e}");
    }
    // Stopping at stride 8 and resuming from it gives the same taps as one pass.
    let low = ort.low(&input).unwrap();
    assert_eq!(low.s8, o.s8);
    let high = ort.high(&low.s8).unwrap();
    assert_eq!(high.s32, o.s32);
}

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn the_int8_backbone_stays_close_to_f32_and_only_runs_on_ort() {
    let spec = spec();
    let input = bear_frame();
    let model = reuse_vos::model::Model::embedded().unwrap();
    let plan = model
        .int8
        .as_ref()
        .expect("the embedded backbone has an int8 plan");
    let Some(mut f32) = ort_backbone(&spec) else {
        return;
    };
    let mut int8 =
        reuse_vos::engine::backbone(&spec, Some(EngineKind::Ort), Some(plan), 2).unwrap();
    let (a, b) = (f32.pyramid(&input).unwrap(), int8.pyramid(&input).unwrap());
    for ((name, x), (_, y)) in a.named().into_iter().zip(b.named()) {
        assert_eq!(x.shape(), y.shape(), "{name}");
        let err: f32 = x
            .data
            .iter()
            .zip(&y.data)
            .map(|(p, q)| (p - q) * (p - q))
            .sum();
        let norm: f32 = x.data.iter().map(|p| p * p).sum();
        let rel = (err / norm).sqrt();
        eprintln!("{name}: int8 relative error {rel:.3}");
        // Quantised for real (not the f32 graph), and still the same features: measured 0.07,
        // 0.09, 0.13 and 0.49 (the stride-32 tap gathers the error of 16 int8 blocks; the
        // tracker's J&F moved by 0.2 on 30 sequences).
        let bound = match name {
            "s4" | "s8" => 0.15,
            "s16" => 0.25,
            _ => 0.75,
        };
        assert!(rel > 1e-3, "{name}: int8 output equals f32 ({rel:e})");
        assert!(rel < bound, "{name}: int8 relative error {rel:.3}");
    }
    let burn = reuse_vos::engine::backbone(&spec, Some(EngineKind::Burn), Some(plan), 2);
    let why = burn.err().expect("Burn has no int8").to_string();
    assert!(why.contains("int8"), "{why}");
}

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn weights_calibrate_writes_a_plan_that_segment_runs() {
    if reuse_vos::engine::ort::environment().is_err() && !common::ort_required() {
        return eprintln!("skipping: no ONNX Runtime");
    }
    let dir = common::temp_dir("calibrate");
    let plan = dir.join("plan.json");
    let davis = common::davis2016();
    let calibrate = |from: &str| {
        std::process::Command::new(common::bin())
            .args(["weights", "calibrate", "--davis"])
            .arg(&davis)
            .args([
                "--sequences",
                "bear",
                "--per-sequence",
                "2",
                "--from",
                from,
                "--out",
            ])
            .arg(&plan)
            .output()
            .unwrap()
    };
    let run = calibrate("3");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(json["from"], 3);
    let ranges = json["ranges"]["values"].as_object().unwrap();
    // Every convolution's output and every residual sum of the 18 blocks, and the image.
    assert_eq!(ranges.len(), 62);
    for (key, r) in ranges {
        let (lo, hi) = (r[0].as_f64().unwrap(), r[1].as_f64().unwrap());
        assert!(lo <= hi && hi > 0.0, "{key}: [{lo}, {hi}]");
    }
    // A block the backbone does not have is refused, and the plan is left as it was.
    let before = std::fs::read(&plan).unwrap();
    let run = calibrate("18");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && err.contains("--from 18"), "{err}");
    assert_eq!(std::fs::read(&plan).unwrap(), before);
    // The plan runs.
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for i in 0..3 {
        let f = format!("{i:05}.jpg");
        std::fs::copy(davis.join("JPEGImages/480p/bear").join(&f), frames.join(&f)).unwrap();
    }
    let mask = davis.join("Annotations/480p/bear/00000.png");
    let out = dir.join("out");
    let plan_arg = plan.to_str().unwrap();
    let run = common::segment(
        &frames,
        &mask,
        &out,
        &[
            "--engine",
            "ort",
            "--precision",
            "int8",
            "--int8-plan",
            plan_arg,
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join("00002.png").is_file());
}

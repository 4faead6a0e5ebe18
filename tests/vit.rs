//! DINOv2 ViT-S/14: the project's import of the source file, run on both engines, against the
//! source file itself run by ONNX Runtime.

mod common;

use reuse_vos::engine::EngineKind;
use reuse_vos::engine::ort::vit::{OrtVit, source_tokens};
use reuse_vos::io::Frame;
use reuse_vos::model::FeatureMap;
use reuse_vos::model::vit::{VitShape, VitWeights, input, source};
use std::sync::Arc;

/// The checked file and its weights (fetched into the cache once), or None when it cannot be
/// had and CI does not require it.
fn weights() -> Option<(Vec<u8>, Arc<VitWeights>)> {
    // Fetched once per test binary (the tests run in parallel).
    static FETCHED: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    match FETCHED.get_or_init(|| source::fetch().map_err(|e| e.to_string())) {
        Ok(path) => Some((
            source::read_checked(path).unwrap(),
            Arc::new(source::load(path).unwrap()),
        )),
        Err(e) if !common::ort_required() => {
            eprintln!("skipping: no DINOv2 weights: {e}");
            None
        }
        Err(e) => panic!("the DINOv2 weights must be fetchable under CI: {e}"),
    }
}

fn frame() -> Frame {
    Frame::load(&common::davis2016().join("JPEGImages/480p/bmx-bumps/00010.jpg")).unwrap()
}

/// Largest difference relative to the largest magnitude.
fn rel(a: &FeatureMap, b: &FeatureMap) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.max_abs_diff(b) / b.max_abs()
}

#[test]
fn the_imported_vit_matches_the_source_file_on_onnx_runtime() {
    let Some((bytes, w)) = weights() else { return };
    assert_eq!(w.blocks.len(), 12);
    let params: usize = w.patch_weight.len()
        + w.patch_bias.len()
        + w.cls_token.len()
        + w.cls_pos.len()
        + w.pos.len()
        + w.blocks
            .iter()
            .map(|b| {
                [&b.query, &b.key, &b.value, &b.proj, &b.fc1, &b.fc2]
                    .iter()
                    .map(|l| l.weight.len() + l.bias.len())
                    .sum::<usize>()
                    + 6 * 384
            })
            .sum::<usize>();
    // The source file's encoder holds 22 056 192 (ViT-S/14's count); the final norm is not
    // read (middle-layer tokens are the keys).
    assert_eq!(params, 22_056_192 - 2 * 384, "parameters");
    let image = input(&frame(), (224, 224));
    let mut ours = OrtVit::new(w, 2).unwrap();
    for layers in [1, 8, 12] {
        let shape = VitShape {
            height: 224,
            width: 224,
            layers,
        };
        let got = ours.tokens(&image, shape).unwrap();
        let want = source_tokens(&bytes, &image, layers).unwrap();
        let e = rel(&got, &want);
        eprintln!("layer {layers}: relative max error {e:.2e}");
        assert!(e < 1e-3, "layer {layers}: {e}");
    }
}

#[test]
fn burn_and_onnx_runtime_agree_on_a_wide_frame() {
    let Some((_, w)) = weights() else { return };
    // 9 x 15 patches: the position table is resized to a grid of another shape.
    let shape = VitShape {
        height: 126,
        width: 210,
        layers: 3,
    };
    let image = input(&frame(), (shape.height, shape.width));
    let burn = reuse_vos::engine::vit(w.clone(), EngineKind::Burn, 2)
        .unwrap()
        .tokens(&image, shape)
        .unwrap();
    let ort = OrtVit::new(w, 2).unwrap().tokens(&image, shape).unwrap();
    assert_eq!((ort.channels, ort.height, ort.width), (384, 9, 15));
    let e = rel(&burn, &ort);
    eprintln!("burn vs ort: relative max error {e:.2e}");
    assert!(e < 1e-3, "{e}");
}

/// Frames 0..5 of rhino, then frame 5 four more times (a still shot), in a fresh folder.
fn rhino_with_a_still_end(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = common::temp_dir(name);
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let src = common::davis2016().join("JPEGImages/480p/rhino");
    for i in 0..10 {
        let from = src.join(format!("{:05}.jpg", i.min(5)));
        std::fs::copy(from, frames.join(format!("{i:05}.jpg"))).unwrap();
    }
    (dir, frames)
}

#[test]
fn the_quality_mode_tracks_a_real_clip_and_reused_frames_skip_dinov2() {
    if weights().is_none() || reuse_vos::engine::ort::environment().is_err() {
        return eprintln!("skipping: no DINOv2 weights or no ONNX Runtime");
    }
    let (dir, frames) = rhino_with_a_still_end("vit-track");
    let mask = common::davis2016().join("Annotations/480p/rhino/00000.png");
    let out = dir.join("out");
    let r = common::segment(
        &frames,
        &mask,
        &out,
        &["--backbone", "dinov2s", "--vit-side", "224"],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["matching"], "dinov2s (layer 8, 392x224)");
    let mut reused = 0;
    for f in stats["per_frame"].as_array().unwrap().iter().skip(1) {
        let decision = &f["objects"][0]["decision"];
        let path = decision["path"].as_str().unwrap();
        let keys = f["times"]["keys_ms"].as_f64().unwrap();
        let stale = decision["stale_keys"].as_bool().unwrap_or(false);
        if path == "computed" {
            // A stale-keys frame (the default) runs no DINOv2 either.
            assert_eq!(
                keys > 0.0,
                !stale,
                "{}: keys {keys} ms, stale {stale}",
                f["frame"]
            );
        } else {
            reused += 1;
            assert_eq!(keys, 0.0, "{}: DINOv2 ran on a {path} frame", f["frame"]);
        }
    }
    assert!(reused >= 3, "the still end was reused on {reused} frames");
    let truth = common::davis2016().join("Annotations/480p/rhino");
    for i in 1..6 {
        let got = reuse_vos::io::Mask::read_ids(&out.join(format!("{i:05}.png"))).unwrap();
        let want = reuse_vos::io::Mask::read_binary(&truth.join(format!("{i:05}.png"))).unwrap();
        let j = reuse_vos::metrics::jaccard(&want.ids, 1, &got.ids, 1);
        assert!(j > 0.7, "frame {i}: J {j:.3}");
    }
}

/// The first `n` frames of a DAVIS sequence, in a fresh folder.
fn clip(sequence: &str, n: usize, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = common::temp_dir(name);
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let src = common::davis2016().join("JPEGImages/480p").join(sequence);
    for i in 0..n {
        let f = format!("{i:05}.jpg");
        std::fs::copy(src.join(&f), frames.join(&f)).unwrap();
    }
    (dir, frames)
}

#[test]
fn stale_keys_frames_skip_dinov2_within_their_age_bound() {
    if weights().is_none() || reuse_vos::engine::ort::environment().is_err() {
        return eprintln!("skipping: no DINOv2 weights or no ONNX Runtime");
    }
    let (dir, frames) = clip("rhino", 24, "vit-stale");
    let mask = common::davis2016().join("Annotations/480p/rhino/00000.png");
    // Copies end after two in a row, so computed frames come often and within the age bound.
    let age = 4;
    let run = |out: &str| {
        let out = dir.join(out);
        let r = common::segment(
            &frames,
            &mask,
            &out,
            &[
                "--backbone",
                "dinov2s",
                "--vit-side",
                "224",
                "--stale-keys-tau",
                "0",
                "--stale-keys-age",
                &age.to_string(),
                "--max-streak",
                "2",
            ],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        out
    };
    let out = run("a");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    let (mut stale, mut since_fresh, mut last_stale) = (0, 0, false);
    for f in stats["per_frame"].as_array().unwrap().iter().skip(1) {
        let d = &f["objects"][0]["decision"];
        let keys = f["times"]["keys_ms"].as_f64().unwrap();
        since_fresh += 1;
        match (d["path"].as_str().unwrap(), d["stale_keys"].as_bool()) {
            ("computed", Some(true)) => {
                assert!(
                    !last_stale,
                    "{}: two stale-keys frames in a row",
                    f["frame"]
                );
                (stale, last_stale) = (stale + 1, true);
                assert_eq!(
                    keys, 0.0,
                    "{}: DINOv2 ran on a stale-keys frame",
                    f["frame"]
                );
                assert!(
                    since_fresh <= age,
                    "{}: {since_fresh} frames without keys",
                    f["frame"]
                );
            }
            ("computed", _) => {
                assert!(keys > 0.0, "{}: computed without keys", f["frame"]);
                (since_fresh, last_stale) = (0, false);
            }
            _ => assert_eq!(keys, 0.0),
        }
    }
    assert!(stale >= 2, "only {stale} stale-keys frames");
    let truth = common::davis2016().join("Annotations/480p/rhino");
    for i in 1..24 {
        let got = reuse_vos::io::Mask::read_ids(&out.join(format!("{i:05}.png"))).unwrap();
        let want = reuse_vos::io::Mask::read_binary(&truth.join(format!("{i:05}.png"))).unwrap();
        let j = reuse_vos::metrics::jaccard(&want.ids, 1, &got.ids, 1);
        assert!(j > 0.7, "frame {i}: J {j:.3}");
    }
    // The same masks on a second run.
    let again = run("b");
    for i in 1..24 {
        let name = format!("{i:05}.png");
        assert_eq!(
            std::fs::read(out.join(&name)).unwrap(),
            std::fs::read(again.join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn the_quality_mode_says_what_is_missing_or_wrong() {
    let (dir, frames) = rhino_with_a_still_end("vit-errors");
    let mask = common::davis2016().join("Annotations/480p/rhino/00000.png");
    let out = dir.join("out");
    let missing = dir.join("no-such-dinov2.onnx");
    let r = common::segment(
        &frames,
        &mask,
        &out,
        &[
            "--backbone",
            "dinov2s",
            "--dinov2",
            missing.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "{err}");
    assert!(
        err.contains("no-such-dinov2.onnx") && err.contains("weights fetch dinov2s"),
        "{err}"
    );
    assert!(
        !out.join("00001.png").exists(),
        "no output on a refused run"
    );
    // A file that is not the pinned one is refused by its checksum.
    let wrong = dir.join("wrong.onnx");
    std::fs::write(&wrong, b"not a network").unwrap();
    let r = common::segment(
        &frames,
        &mask,
        &out,
        &["--backbone", "dinov2s", "--dinov2", wrong.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("wrong.onnx") && err.contains("sha256"),
        "{err}"
    );
    if weights().is_some() {
        let r = common::segment(
            &frames,
            &mask,
            &out,
            &["--backbone", "dinov2s", "--tracker", "frtm"],
        );
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success() && err.contains("memory and fusion"),
            "{err}"
        );
    }
}

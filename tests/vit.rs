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
    match source::fetch() {
        Ok(path) => Some((
            source::read_checked(&path).unwrap(),
            Arc::new(source::load(&path).unwrap()),
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

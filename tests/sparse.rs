//! Region reuse in the backbone's first blocks (SpVOS, `--sparse-threshold`): on a clip shot
//! from a still camera — a DAVIS object moving over a fixed DAVIS background — only the tiles
//! around the object run again, the features equal the dense ones, and the masks are the same.

mod common;

use reuse_vos::engine::sparse::SparseBackbone;
use reuse_vos::engine::{BackboneEngine, backbone, resolve};
use reuse_vos::io::{Frame, Mask};
use reuse_vos::model::Model;
use reuse_vos::model::backbone::{BackboneSpec, normalize};
use reuse_vos::track::gate::{GatePolicy, GateSettings};
use reuse_vos::track::{Session, TrackerConfig};

fn load(seq: &str) -> (Frame, Mask) {
    let root = common::davis2016();
    let f = Frame::load(&root.join(format!("JPEGImages/480p/{seq}/00000.jpg"))).unwrap();
    let m = Mask::read_binary(&root.join(format!("Annotations/480p/{seq}/00000.png"))).unwrap();
    (f, m)
}

/// Eight frames at 640×360 (the tracking size): a dancer at a fifth of her size walking 8 px a frame across the
/// bear's still background, and her masks.
fn still_camera_clip() -> Vec<(Frame, Mask)> {
    let (background, _) = load("bear");
    let background = background.resized(640, 360).unwrap();
    let (object, mask) = load("dance-jump");
    (0..8)
        .map(|i| common::paste(&object, &mask, 0.2, &background, (80 + 8 * i, 120)))
        .collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let max = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / max
}

#[test]
fn only_the_tiles_around_a_moving_object_run_again_and_match_the_dense_features() {
    let spec = BackboneSpec::embedded().unwrap();
    let kind = resolve(None).unwrap();
    let mut dense = backbone(&spec, Some(kind), None, 2).unwrap();
    let mut sparse = SparseBackbone::new(backbone(&spec, Some(kind), None, 2).unwrap(), 0.0);
    let clip = still_camera_clip();
    let mut shares = Vec::new();
    for (frame, _) in &clip {
        let image = normalize(frame);
        let (want, got) = (dense.low(&image).unwrap(), sparse.low(&image).unwrap());
        assert!(max_rel(&want.s4.data, &got.s4.data) < 1e-5);
        assert!(max_rel(&want.s8.data, &got.s8.data) < 1e-5);
        shares.push(sparse.low_share());
    }
    assert_eq!(shares[0], 1.0, "the first frame runs densely");
    // The dancer's box and the receptive field's halos: well under the whole frame.
    assert!(
        shares[1..].iter().all(|&s| s > 0.0 && s < 0.6),
        "{shares:?}"
    );
    // The same frame again: nothing runs, the stored features come back.
    let again = sparse.low(&normalize(&clip[7].0)).unwrap();
    assert_eq!(sparse.low_share(), 0.0);
    let want = dense.low(&normalize(&clip[7].0)).unwrap();
    assert!(max_rel(&want.s8.data, &again.s8.data) < 1e-5);
}

fn track(sparse: Option<f32>, clip: &[(Frame, Mask)]) -> (Vec<Mask>, u64) {
    let model = Model::embedded_for("fusion").unwrap();
    let config = TrackerConfig {
        tracker: reuse_vos::track::TrackerKind::Fusion,
        engine: Some(resolve(None).unwrap()),
        gate: GateSettings {
            policy: GatePolicy::Never,
            ..Default::default()
        },
        sparse,
        ..Default::default()
    };
    let mut s = Session::new(&model, config).unwrap();
    s.add_mask(0, clip[0].1.clone()).unwrap();
    let (mut masks, mut macs) = (Vec::new(), 0);
    for (frame, _) in clip {
        let out = s.push(frame).unwrap();
        masks.push(out.mask);
        macs += out.macs;
    }
    (masks, macs)
}

#[test]
fn the_masks_are_the_dense_ones_for_fewer_operations() {
    let clip = still_camera_clip();
    let (dense, dense_macs) = track(None, &clip);
    let (sparse, sparse_macs) = track(Some(0.0), &clip);
    for (i, (a, b)) in dense.iter().zip(&sparse).enumerate() {
        let differ = a.ids.iter().zip(&b.ids).filter(|(x, y)| x != y).count();
        assert!(differ <= 2, "frame {i}: {differ} pixels differ");
    }
    assert!(
        (sparse_macs as f64) < 0.9 * dense_macs as f64,
        "{sparse_macs} against {dense_macs}"
    );
}

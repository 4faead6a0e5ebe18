//! The refinement decoder gives the same logits on Burn and on ONNX Runtime.

mod common;

use reuse_vos::engine::burn::{BurnBackbone, device};
use reuse_vos::engine::ort::decoder::OrtDecoder;
use reuse_vos::engine::{BackboneEngine, DecoderEngine};
use reuse_vos::io::Frame;
use reuse_vos::model::FeatureMap;
use reuse_vos::model::backbone::net::{to_map, to_tensor};
use reuse_vos::model::backbone::{BackboneSpec, normalize};
use reuse_vos::model::decoder::{DecoderConfig, DecoderInput};

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn decoder_parity_burn_vs_ort() {
    let frame = Frame::load(&common::davis2016().join("JPEGImages/480p/bear/00000.jpg")).unwrap();
    let spec = BackboneSpec::embedded().unwrap();
    let p = BurnBackbone::new(&spec)
        .pyramid(&normalize(&frame))
        .unwrap();
    let dev = device();
    dev.seed(7);
    let cfg = DecoderConfig::new();
    let dec = cfg.init(&dev);
    // A smooth synthetic score at stride 16.
    let (h, w) = (p.s16.height, p.s16.width);
    let score = FeatureMap::new(
        1,
        h,
        w,
        (0..h * w)
            .map(|i| ((i % w) as f32 / w as f32 - 0.5) * 2.0)
            .collect(),
    );
    let logits = dec.forward(
        DecoderInput {
            s32: to_tensor(&p.s32, &dev),
            s16: to_tensor(&p.s16, &dev),
            s8: to_tensor(&p.s8, &dev),
            s4: to_tensor(&p.s4, &dev),
        },
        to_tensor(&score, &dev),
    );
    let burn = to_map(logits).unwrap();
    assert_eq!(burn.shape(), [1, 1, p.s4.height, p.s4.width]);
    let mut ort = match OrtDecoder::new(&dec, cfg.feature_channels, 2) {
        Ok(o) => o,
        Err(e) if !common::ort_required() => return eprintln!("skipping: {e}"),
        Err(e) => panic!("{e}"),
    };
    let state = ort.deep(&p.s32, &p.s16, &score).unwrap();
    let o = ort.shallow(&state, &p.s8, &p.s4, &score).unwrap();
    let rel = burn.max_abs_diff(&o) / burn.max_abs();
    eprintln!("decoder burn vs ort: max|diff|/max|x| = {rel:e}");
    assert!(rel < 1e-4, "{rel:e}");
}

#[test]
fn rust_upsampling_matches_the_one_training_used() {
    // The tracker upsamples the stride-4 logits in Rust; training used Burn's interpolate.
    let (h, w, oh, ow) = (120, 214, 480, 854);
    let src: Vec<f32> = (0..h * w)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let dev = device();
    let t = to_tensor(&FeatureMap::new(1, h, w, src.clone()), &dev);
    let burn = to_map(reuse_vos::model::decoder::resize(t, oh, ow)).unwrap();
    let rust = reuse_vos::model::tensor::resize_bilinear(&src, h, w, oh, ow);
    let diff = burn
        .data
        .iter()
        .zip(&rust)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    // Same sampling positions; only f32 rounding of the coordinates differs.
    assert!(diff < 1e-4, "max diff {diff}");
}

#[test]
fn a_decoder_is_built_from_the_config_saved_beside_its_weights() {
    use reuse_vos::model::Model;
    use reuse_vos::model::load::{config_path, save_with_config};
    let dir = std::env::temp_dir().join(format!("rvos-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A smaller decoder than the shipped one: only its config says so.
    let config = DecoderConfig::new().with_channels([16, 16, 16, 8]);
    let path = dir.join("small.safetensors");
    save_with_config(&config.init(&device()), &config, &path).unwrap();
    let model = Model::embedded().unwrap().with_decoder_file(&path).unwrap();
    assert_eq!(model.decoder_config.channels, [16, 16, 16, 8]);
    assert!(
        model.reuse.is_none(),
        "the reuse path belongs to another decoder"
    );
    // Without its config the file is refused, naming the config it needs.
    std::fs::remove_file(config_path(&path)).unwrap();
    let err = Model::embedded()
        .unwrap()
        .with_decoder_file(&path)
        .expect_err("no config")
        .to_string();
    assert!(err.contains("small.json"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

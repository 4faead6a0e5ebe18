//! Numeric options are checked at the command line: a value out of range is refused with a
//! message naming the option, before anything runs or is written.

mod common;

use std::process::Command;

fn refused(args: &[&str], says: &str) {
    let out = Command::new(common::bin()).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert!(err.contains(says), "{args:?}: {err}");
}

#[test]
fn out_of_range_numbers_are_refused() {
    let dir = common::temp_dir("cli-args");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let seg = |extra: &[&str]| {
        let mut a = vec!["segment", "frames", "--mask", "m.png", "--out", out];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    for (extra, says) in [
        (vec!["--tau", "NaN"], "--tau"),
        (vec!["--tau", "1.5"], "not in [0, 1]"),
        (vec!["--target-lr", "NaN"], "--target-lr"),
        (vec!["--target-lr", "1"], "must be below 1"),
        (vec!["--threads", "100000"], "--threads"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--mem-temperature", "0"], "above 0"),
        (vec!["--fusion-weight", "inf"], "--fusion-weight"),
        (vec!["--max-side", "10"], "at least 32 pixels"),
        (vec!["--sparse-threshold", "300"], "grey levels"),
        (vec!["--sparse-threshold=-1"], "grey levels"),
    ] {
        let a = seg(&extra);
        refused(&a.iter().map(String::as_str).collect::<Vec<_>>(), says);
    }
    let davis = common::davis2016();
    let davis = davis.to_str().unwrap();
    refused(
        &[
            "run", "--davis", davis, "--gate", "oracle", "--tau", "NaN", "--out", out,
        ],
        "--tau",
    );
    refused(
        &["sweep", "--davis", davis, "--taus", "1,NaN", "--out", out],
        "--taus",
    );
    assert!(!std::path::Path::new(out).exists(), "nothing is written");
}

/// `train --davis <davis>`, then `extra`, then `--out <out>`.
fn train_args<'a>(davis: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&["train", "--davis", davis][..], extra, &["--out", out]].concat()
}

#[test]
fn a_closed_loop_decoder_that_cannot_be_read_is_refused_before_caching() {
    let dir = common::temp_dir("cli-closed-loop");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let davis = common::davis2016();
    let davis = davis.to_str().unwrap();
    let folds = common::davis2016().join("splits/folds");
    let folds = folds.to_str().unwrap();
    let missing = dir.join("{fold}.safetensors");
    let missing = missing.to_str().unwrap();
    let fusion = ["--tracker", "fusion", "--closed-loop", missing];
    refused(
        &train_args(
            davis,
            out,
            &[&fusion[..], &["--folds", folds, "--fold-ids", "2"]].concat(),
        ),
        "fold-2.safetensors: --closed-loop decoder not found (for fold-2)",
    );
    refused(
        &train_args(davis, out, &["--closed-loop", missing]),
        "the FRTM decoder reads no memory",
    );
    refused(&train_args(davis, out, &["--rounds", "2"]), "--closed-loop");
    refused(
        &train_args(davis, out, &[&fusion[..], &["--rounds", "0"]].concat()),
        "--rounds",
    );
    assert!(!std::path::Path::new(out).exists(), "nothing is written");
}

/// The gate's defaults follow the tracker (the memory tracker's τ, copy-loss bound and streak
/// were chosen on the folds for it), an option the user gives wins over them, and stats.json
/// says which were used.
#[test]
fn the_gate_defaults_follow_the_tracker_and_yield_to_options() {
    let dir = common::temp_dir("gate-defaults");
    let seq = common::davis2016().join("JPEGImages/480p/rhino");
    let mask = common::davis2016().join("Annotations/480p/rhino/00000.png");
    let gate = |name: &str, extra: &[&str]| -> serde_json::Value {
        let out = dir.join(name);
        let args = [&["--end", "3", "--max-side", "320"][..], extra].concat();
        let run = common::segment(&seq, &mask, &out, &args);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{name}: {err}");
        let stats = std::fs::read(out.join("stats.json")).unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
        stats["gate"].clone()
    };
    let used = |g: &serde_json::Value| {
        let s = &g["safety"];
        (
            g["tau"].as_f64().unwrap() as f32,
            s["max_copy_loss"].as_f64().unwrap() as f32,
            s["max_streak"].as_u64().unwrap() as usize,
        )
    };
    use reuse_vos::track::tracker::{MEMORY_MAX_COPY_LOSS, MEMORY_MAX_STREAK, MEMORY_TAU};
    let shared = (
        0.7,
        reuse_vos::track::safety::MAX_COPY_LOSS,
        reuse_vos::track::safety::MAX_STREAK,
    );
    let memory = (MEMORY_TAU, MEMORY_MAX_COPY_LOSS, MEMORY_MAX_STREAK);
    assert_ne!(memory, shared);
    assert_eq!(used(&gate("fusion", &[])), shared);
    assert_eq!(used(&gate("memory", &["--tracker", "memory"])), memory);
    let asked = [
        "--tau",
        "0.7",
        "--max-copy-loss",
        "0.12",
        "--max-streak",
        "6",
    ];
    let g = gate(
        "memory-asked",
        &[&["--tracker", "memory"][..], &asked].concat(),
    );
    assert_eq!(used(&g), shared);
}

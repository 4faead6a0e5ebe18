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
/// were chosen on the folds for it), each option the user gives wins over its default alone,
/// and stats.json says which were used.
#[test]
fn the_gate_defaults_follow_the_tracker_and_yield_to_options() {
    use reuse_vos::track::TrackerKind;
    let dir = common::temp_dir("gate-defaults");
    let seq = common::davis2016().join("JPEGImages/480p/rhino");
    let mask = common::davis2016().join("Annotations/480p/rhino/00000.png");
    let used = |name: &str, extra: &[&str]| -> (f32, f32, usize) {
        let out = dir.join(name);
        let args = [&["--end", "1", "--max-side", "320"][..], extra].concat();
        let run = common::segment(&seq, &mask, &out, &args);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{name}: {err}");
        let stats = std::fs::read(out.join("stats.json")).unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
        let (g, s) = (&stats["gate"], &stats["gate"]["safety"]);
        (
            g["tau"].as_f64().unwrap() as f32,
            s["max_copy_loss"].as_f64().unwrap() as f32,
            s["max_streak"].as_u64().unwrap() as usize,
        )
    };
    let defaults = |t: TrackerKind| {
        let g = t.gate_defaults();
        (g.tau, g.safety.max_copy_loss.unwrap(), g.safety.max_streak)
    };
    let (fusion, memory) = (defaults(TrackerKind::Fusion), defaults(TrackerKind::Memory));
    assert_eq!(fusion, (0.7, 0.12, 6), "the shared defaults");
    assert_eq!(memory, (0.75, 0.25, 5), "the memory tracker's");
    assert_eq!(used("fusion", &[]), fusion);
    assert_eq!(used("memory", &["--tracker", "memory"]), memory);
    let tau = used("memory-tau", &["--tracker", "memory", "--tau", "0.65"]);
    assert_eq!(tau, (0.65, memory.1, memory.2));
    let asked = ["--max-copy-loss", "0.3", "--max-streak", "3"];
    let g = used(
        "memory-net",
        &[&["--tracker", "memory"][..], &asked].concat(),
    );
    assert_eq!(g, (memory.0, 0.3, 3));
    let _ = std::fs::remove_dir_all(&dir);
}

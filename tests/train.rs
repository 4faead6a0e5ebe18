//! `train --closed-loop --rounds`: each round starts from the one before, the last round's
//! weights are the run's, and a resumed run does not redo a finished round.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A weight file's tensors by name (the bytes of the file's header may be ordered differently
/// from one write to the next).
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, t)| (name, t.data().to_vec()))
        .collect()
}

fn train(set: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/decoder-fusion.safetensors");
    Command::new(common::bin())
        .args(["train", "--tracker", "fusion", "--davis"])
        .arg(common::davis2016())
        .arg("--set")
        .arg(set)
        .arg("--closed-loop")
        .arg(embedded)
        .args([
            "--rounds",
            "2",
            "--iterations",
            "2",
            "--snapshot-every",
            "0",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn closed_loop_rounds_start_from_each_other_and_a_resumed_run_keeps_them() {
    let dir = common::temp_dir("train-rounds");
    let set = dir.join("one.txt");
    std::fs::write(&set, "dog-agility\n").unwrap();
    let out = dir.join("out");
    let run = train(&set, &out, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read = |p: &str| tensors(&out.join(p));
    let (first, second) = (
        read("round-1/decoder.safetensors"),
        read("round-2/decoder.safetensors"),
    );
    let embedded =
        tensors(&Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/decoder-fusion.safetensors"));
    assert!(first != embedded, "round 1 fine-tunes the given decoder");
    assert!(first != second, "round 2 fine-tunes round 1's");
    assert!(
        read("decoder.safetensors") == second,
        "the run's weights are the last round's"
    );
    assert!(out.join("decoder.json").is_file());

    let again = train(&set, &out, &["--resume"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(read("round-1/decoder.safetensors") == first, "round 1 kept");
    assert!(read("decoder.safetensors") == second, "round 2 kept");
}

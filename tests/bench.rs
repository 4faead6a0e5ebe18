//! `bench networks` times the full computed path and hands the same network to PyTorch: with a
//! Python that has torch, PyTorch's logits must match ONNX Runtime's; without one, the
//! comparison is skipped with a line saying why, and the command still succeeds.

mod common;

use std::process::Command;

fn bench(python: &str) -> String {
    let image = common::davis2016().join("JPEGImages/480p/bear/00000.jpg");
    let out = Command::new(common::bin())
        .args([
            "bench",
            "networks",
            "--runs",
            "1",
            "--max-side",
            "160",
            "--image",
        ])
        .arg(&image)
        .args(["--python", python])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(text.contains("160x90"), "{text}");
    text
}

fn has_ort() -> bool {
    reuse_vos::engine::ort::environment().is_ok() || common::ort_required()
}

#[test]
fn without_torch_the_comparison_is_skipped() {
    if !has_ort() {
        return;
    }
    let text = bench("/nonexistent/python3");
    assert!(text.contains("ort f32"), "{text}");
    assert!(text.contains("PyTorch: skipped (cannot run"), "{text}");
}

#[test]
fn with_torch_the_logits_match_onnx_runtime() {
    let python = Command::new("python3").arg("--version").output();
    let has_python = python.is_ok_and(|o| o.status.success());
    let import = Command::new("python3")
        .args(["-c", "import torch"])
        .output();
    let torch = import.as_ref().is_ok_and(|o| o.status.success());
    let missing = import
        .as_ref()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stderr).contains("No module named 'torch'"));
    // A torch that is there but does not import cannot be judged here.
    if !has_ort() || (has_python && !torch && !missing) {
        return;
    }
    let text = bench("python3");
    if torch {
        // Two layouts, each checked (the command fails beyond 1e-4 of the largest logit).
        assert_eq!(text.matches("logits within").count(), 2, "{text}");
        assert!(text.contains("pytorch channels_last"), "{text}");
    } else if has_python {
        assert!(text.contains("cannot import torch"), "{text}");
    } else {
        assert!(text.contains("PyTorch: skipped (cannot run"), "{text}");
    }
}

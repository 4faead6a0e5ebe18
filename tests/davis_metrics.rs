//! The DAVIS evaluation reproduces the official toolkit's values on the shared fixtures.

mod common;

use reuse_vos::io::{Dataset, DatasetKind};
use reuse_vos::metrics::{EvalOptions, evaluate};
use serde_json::Value;
use std::process::Command;

const TOL: f64 = 1e-9;

fn close(a: f64, b: &Value, what: &str) {
    let b = b.as_f64().unwrap_or(f64::NAN);
    assert!(
        (a - b).abs() <= TOL || (a.is_nan() && b.is_nan()),
        "{what}: got {a}, toolkit {b}"
    );
}

fn fixture_dataset() -> Dataset {
    let root = common::metric_fixtures().join("gt");
    Dataset::open(&root, DatasetKind::Davis2017, Some("val"), None).expect("open fixture GT")
}

#[test]
fn every_fixture_value_matches_the_toolkit() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(common::metric_fixtures().join("expected.json")).unwrap(),
    )
    .unwrap();
    let dataset = fixture_dataset();
    let mut checked = 0usize;
    for (method, exp) in expected.as_object().unwrap() {
        if exp.get("error").is_some() {
            continue;
        }
        let results = common::metric_fixtures().join("results").join(method);
        let report = evaluate(&dataset, &EvalOptions { results }, None)
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let per_object = exp["per_object"].as_object().unwrap();
        assert_eq!(report.objects.len(), per_object.len(), "{method}: objects");
        for o in &report.objects {
            let e = &per_object[&o.name];
            let (ej, ef) = (e["J"].as_array().unwrap(), e["F"].as_array().unwrap());
            assert_eq!(o.j.len(), ej.len(), "{method} {}: frames", o.name);
            for (i, (a, b)) in o.j.iter().zip(ej).enumerate() {
                close(*a, b, &format!("{method} {} J[{i}]", o.name));
            }
            for (i, (a, b)) in o.f.iter().zip(ef).enumerate() {
                close(*a, b, &format!("{method} {} F[{i}]", o.name));
            }
            for k in 0..3 {
                close(
                    o.j_stats[k],
                    &e["J_stats"][k],
                    &format!("{method} {} J_stats[{k}]", o.name),
                );
                close(
                    o.f_stats[k],
                    &e["F_stats"][k],
                    &format!("{method} {} F_stats[{k}]", o.name),
                );
            }
            checked += 2 * o.j.len() + 6;
        }
        let g = &exp["global_"];
        let r = &report.global;
        close(r.jf_mean, &g["JF_mean"], &format!("{method} JF_mean"));
        close(r.j_mean, &g["J_mean"], &format!("{method} J_mean"));
        close(r.j_recall, &g["J_recall"], &format!("{method} J_recall"));
        close(r.j_decay, &g["J_decay"], &format!("{method} J_decay"));
        close(r.f_mean, &g["F_mean"], &format!("{method} F_mean"));
        close(r.f_recall, &g["F_recall"], &format!("{method} F_recall"));
        close(r.f_decay, &g["F_decay"], &format!("{method} F_decay"));
    }
    assert!(checked > 3000, "only {checked} values checked");
}

#[test]
fn extra_id_is_refused_with_a_clear_message() {
    let results = common::metric_fixtures().join("results/extra-id");
    let err = evaluate(&fixture_dataset(), &EvalOptions { results }, None)
        .expect_err("an id the first GT frame lacks must be refused");
    let msg = err.to_string();
    assert!(msg.contains("sequence bear"), "{msg}");
    assert!(
        msg.contains("object id above the number of objects"),
        "{msg}"
    );
}

#[test]
fn cli_eval_writes_toolkit_csvs_and_fails_on_extra_id() {
    let out = common::temp_dir("eval-cli");
    let gt = common::metric_fixtures().join("gt");
    let json = out.join("all.json");
    let status = Command::new(common::bin())
        .args(["eval", "--set", "val", "--davis"])
        .arg(&gt)
        .arg("--results")
        .arg(common::metric_fixtures().join("results/shift"))
        .arg("--csv-dir")
        .arg(&out)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let global = std::fs::read_to_string(out.join("global_results-val.csv")).unwrap();
    // The toolkit's values for `shift`, printed with %.3f.
    assert_eq!(
        global,
        "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n0.734,0.727,0.917,-0.042,0.741,0.729,-0.049\n"
    );
    let per_seq = std::fs::read_to_string(out.join("per-sequence_results-val.csv")).unwrap();
    assert!(
        per_seq.starts_with("Sequence,J-Mean,F-Mean\nbear_1,0.909,1.000\n"),
        "{per_seq}"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["per_object"]["bear_1"]["J"].as_array().unwrap().len(), 80);

    let bad = Command::new(common::bin())
        .args(["eval", "--year", "2017", "--set", "val", "--davis"])
        .arg(&gt)
        .arg("--results")
        .arg(common::metric_fixtures().join("results/extra-id"))
        .arg("--csv-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("object id above the number of objects"),
        "{err}"
    );
}

#[test]
fn davis2016_ground_truth_as_results_scores_one() {
    let root = common::davis2016();
    let dataset = Dataset::open(&root, DatasetKind::Davis2016, Some("train"), None).unwrap();
    assert_eq!(dataset.sequences.len(), 30);
    let results = root.join("Annotations/480p");
    let report = evaluate(&dataset, &EvalOptions { results }, None).unwrap();
    assert_eq!(report.objects.len(), 30);
    assert_eq!(report.global.jf_mean, 1.0);
    assert_eq!(report.global.j_decay, 0.0);
}

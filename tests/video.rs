//! Video files in (through ffmpeg), masks on any frame, backwards propagation, overlay video,
//! mattes, resume and the HTML report, end to end from the command line on real DAVIS frames.
//! The videos are encoded by the tests themselves from `../shared` frames.

mod common;

use reuse_vos::io::Mask;
use reuse_vos::io::source::Source;
use reuse_vos::metrics::jaccard;
use std::path::{Path, PathBuf};
use std::process::Command;

const SEQ: &str = "rhino";
const N: usize = 12;

/// Whether ffmpeg is here; under CI it must be (`.ci/run` installs it).
fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !common::ort_required(),
            "ffmpeg is required under CI (.ci/run installs it)"
        );
        eprintln!("ffmpeg not found: video tests skipped");
    }
    ok
}

fn frame_path(seq: &str, i: usize) -> PathBuf {
    common::davis2016().join(format!("JPEGImages/480p/{seq}/{i:05}.jpg"))
}

fn gt_path(i: usize) -> PathBuf {
    common::davis2016().join(format!("Annotations/480p/{SEQ}/{i:05}.png"))
}

fn gt(i: usize) -> Mask {
    Mask::read_binary(&gt_path(i)).unwrap()
}

/// Encodes `frames` (JPEG paths) into `out` with ffmpeg.
fn encode(frames: &[PathBuf], out: &Path, codec: &[&str]) {
    let dir = out.with_extension("frames");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in frames.iter().enumerate() {
        std::fs::copy(f, dir.join(format!("{i:05}.jpg"))).unwrap();
    }
    let run = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-framerate", "24", "-i"])
        .arg(dir.join("%05d.jpg"))
        .args(codec)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn rhino_video(dir: &Path) -> PathBuf {
    let video = dir.join("rhino.mp4");
    let frames: Vec<PathBuf> = (0..N).map(|i| frame_path(SEQ, i)).collect();
    encode(
        &frames,
        &video,
        &["-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p"],
    );
    video
}

fn reuse_vos(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(common::bin()).args(args).output().unwrap()
}

fn segment(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "segment".as_ref(),
        input.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    reuse_vos(&args)
}

fn ok(run: &std::process::Output) {
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn fail(run: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(!run.status.success(), "should fail");
    assert!(
        err.starts_with("error:") && !err.contains("panicked"),
        "{err}"
    );
    err
}

fn j_of(out: &Path, i: usize) -> f64 {
    let m = Mask::read_ids(&out.join(format!("{i:05}.png"))).unwrap();
    assert_eq!(
        (m.width, m.height),
        (854, 480),
        "masks at the original size"
    );
    jaccard(&gt(i).ids, 1, &m.ids, 1)
}

fn mean_j(out: &Path, frames: impl Iterator<Item = usize>) -> f64 {
    let js: Vec<f64> = frames.map(|i| j_of(out, i)).collect();
    js.iter().sum::<f64>() / js.len() as f64
}

fn stats_of(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap()
}

fn count_video_frames(path: &Path) -> usize {
    let source = Source::open(path).unwrap();
    source.frames(0, None, false).unwrap().count()
}

#[test]
#[cfg_attr(
    no_ffmpeg,
    ignore = "ffmpeg was not found when the tests were built (apt-get install ffmpeg)"
)]
fn decoding_is_frame_accurate() {
    if !have_ffmpeg() {
        return;
    }
    let dir = common::temp_dir("video-accurate");
    // Frames alternate between two sequences, so a frame off by one is unmistakable.
    let frames: Vec<PathBuf> = (0..8)
        .map(|i| frame_path(if i % 2 == 0 { "rhino" } else { "bear" }, i))
        .collect();
    let video = dir.join("mixed.mkv");
    encode(&frames, &video, &["-c:v", "ffv1"]);
    let source = Source::open(&video).unwrap();
    let got: Vec<_> = source
        .frames(3, Some(6), false)
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    assert_eq!(
        got.iter().map(|f| f.index).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    let diff = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y) as f64)
            .sum::<f64>()
            / a.len() as f64
    };
    for f in &got {
        let own = reuse_vos::io::Frame::load(&frames[f.index]).unwrap();
        let other = reuse_vos::io::Frame::load(&frames[f.index + 1]).unwrap();
        let (d_own, d_other) = (diff(&f.frame.rgb, &own.rgb), diff(&f.frame.rgb, &other.rgb));
        assert!(
            d_own < 3.0 && d_other > 4.0 * d_own,
            "frame {}: {d_own} vs {d_other}",
            f.index
        );
    }
    // Backwards: the same frames, last first.
    let back: Vec<usize> = source
        .frames(3, Some(6), true)
        .unwrap()
        .map(|f| f.unwrap().index)
        .collect();
    assert_eq!(back, vec![6, 5, 4, 3]);
    // `frame` writes the picture a first mask is painted on: exactly the frame segment decodes.
    let png = dir.join("frame5.png");
    ok(&reuse_vos(&[
        "frame".as_ref(),
        video.as_os_str(),
        "--index".as_ref(),
        "5".as_ref(),
        "--out".as_ref(),
        png.as_os_str(),
    ]));
    assert_eq!(reuse_vos::io::Frame::load(&png).unwrap(), got[2].frame);
    let err = fail(&reuse_vos(&[
        "frame".as_ref(),
        video.as_os_str(),
        "--index".as_ref(),
        "8".as_ref(),
        "--out".as_ref(),
        dir.join("late.png").as_os_str(),
    ]));
    assert!(
        err.contains("mixed.mkv") && err.contains("past the end"),
        "{err}"
    );
    assert!(!dir.join("late.png").exists());
}

#[test]
#[cfg_attr(
    no_ffmpeg,
    ignore = "ffmpeg was not found when the tests were built (apt-get install ffmpeg)"
)]
fn a_video_file_gives_masks_an_overlay_mattes_and_a_report() {
    if !have_ffmpeg() {
        return;
    }
    let dir = common::temp_dir("video-e2e");
    let video = rhino_video(&dir);
    let out = dir.join("out");
    let overlay = dir.join("overlay.mp4");
    let matte = dir.join("matte");
    let mask = gt_path(0);
    ok(&segment(
        &video,
        &out,
        &[
            "--mask",
            mask.to_str().unwrap(),
            "--gate",
            "never",
            "--overlay",
            overlay.to_str().unwrap(),
            "--matte",
            matte.to_str().unwrap(),
        ],
    ));
    let j = mean_j(&out, 1..N);
    eprintln!("video, baseline: mean J {j:.3}");
    assert!(j > 0.7, "mean J {j}");
    // The overlay: one frame per input frame, at the input's size, no temporary file left.
    assert_eq!(count_video_frames(&overlay), N);
    assert!(!dir.join("overlay.mp4.partial").exists());
    // The overlay shows the mask: tinted pixels inside the object, untouched ones outside.
    let first = Source::open(&overlay)
        .unwrap()
        .frames(5, Some(5), false)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let orig = reuse_vos::io::Frame::load(&frame_path(SEQ, 5)).unwrap();
    let m5 = Mask::read_ids(&out.join("00005.png")).unwrap();
    let change = |inside: bool| {
        let (mut sum, mut n) = (0.0, 0.0);
        for (p, &id) in m5.ids.iter().enumerate() {
            if (id == 1) == inside {
                for c in 0..3 {
                    sum += first.frame.rgb[p * 3 + c].abs_diff(orig.rgb[p * 3 + c]) as f64;
                }
                n += 3.0;
            }
        }
        sum / n
    };
    let (inside, outside) = (change(true), change(false));
    assert!(inside > 15.0 && outside < 5.0, "{inside} {outside}");
    // Mattes: one per object and frame, consistent with the masks.
    let alpha = image::open(matte.join("1/00005.png")).unwrap().into_luma8();
    let agree = alpha
        .as_raw()
        .iter()
        .zip(&m5.ids)
        .filter(|(a, id)| (**a > 127) == (**id == 1))
        .count();
    assert!(agree as f64 / m5.ids.len() as f64 > 0.99);
    assert_eq!(std::fs::read_dir(matte.join("1")).unwrap().count(), N);
    // stats.json complete, the progress log gone.
    let stats = stats_of(&out);
    assert_eq!(stats["per_frame"].as_array().unwrap().len(), N);
    assert!(!out.join("frames.jsonl").exists());

    // The report: one HTML file, self-contained, with thumbnails, timeline and bars.
    let report = dir.join("report.html");
    ok(&reuse_vos(&[
        "report".as_ref(),
        out.as_os_str(),
        "--out".as_ref(),
        report.as_os_str(),
    ]));
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("data:image/jpeg;base64,").count(), 8);
    assert!(html.contains("class=timeline") && html.contains("class=bars"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}

#[test]
#[cfg_attr(
    no_ffmpeg,
    ignore = "ffmpeg was not found when the tests were built (apt-get install ffmpeg)"
)]
fn ranges_reduced_size_reverse_and_corrections() {
    if !have_ffmpeg() {
        return;
    }
    let dir = common::temp_dir("video-range");
    let video = rhino_video(&dir);
    // A range and a reduced size: only frames 2..=7, written at 854x480.
    let out = dir.join("range");
    let m2 = format!("2:{}", gt_path(2).display());
    ok(&segment(
        &video,
        &out,
        &[
            "--mask",
            &m2,
            "--end",
            "7",
            "--max-side",
            "432",
            "--gate",
            "never",
        ],
    ));
    let names: Vec<String> = reuse_vos::io::frame::list_images(&out)
        .unwrap()
        .iter()
        .map(|p| reuse_vos::io::frame::stem(p))
        .collect();
    assert_eq!(
        names,
        ["00002", "00003", "00004", "00005", "00006", "00007"]
    );
    assert_eq!(
        Mask::read_ids(&out.join("00002.png")).unwrap(),
        {
            let mut g = gt(2);
            g.ids.iter_mut().for_each(|v| *v = u8::from(*v != 0));
            g
        },
        "the given frame is the given mask, at full size"
    );
    let j = mean_j(&out, 3..=7);
    eprintln!("--max-side 432: mean J {j:.3}");
    assert!(j > 0.65, "mean J {j}");

    // Backwards from the last frame.
    let back = dir.join("back");
    let last = format!("{}:{}", N - 1, gt_path(N - 1).display());
    ok(&segment(
        &video,
        &back,
        &[
            "--mask",
            &last,
            "--reverse",
            "--start",
            "4",
            "--gate",
            "never",
        ],
    ));
    let j = mean_j(&back, 4..N - 1);
    eprintln!("--reverse: mean J {j:.3}");
    assert!(j > 0.7, "mean J {j}");
    assert!(!back.join("00003.png").exists());
    let stats = stats_of(&back);
    assert_eq!(
        stats["per_frame"][0]["index"],
        N - 1,
        "processed last frame first"
    );

    // A wrong first mask (a box of background) corrected on frame 5.
    let wrong = dir.join("wrong.png");
    let mut w = Mask::new(854, 480);
    for y in 0..60 {
        for x in 0..100 {
            w.ids[y * 854 + x] = 1;
        }
    }
    w.save(&wrong).unwrap();
    let fixed = dir.join("fixed");
    let fix = format!("5:{}", gt_path(5).display());
    ok(&segment(
        &video,
        &fixed,
        &[
            "--mask",
            wrong.to_str().unwrap(),
            "--mask",
            &fix,
            "--gate",
            "never",
        ],
    ));
    let before = mean_j(&fixed, 1..5);
    let after = mean_j(&fixed, 6..N);
    eprintln!("correction: J {before:.3} before frame 5, {after:.3} after");
    assert!(before < 0.2 && after > 0.7, "{before} {after}");
}

#[test]
#[cfg_attr(
    no_ffmpeg,
    ignore = "ffmpeg was not found when the tests were built (apt-get install ffmpeg)"
)]
fn an_interrupted_run_resumes_where_it_stopped() {
    if !have_ffmpeg() {
        return;
    }
    let dir = common::temp_dir("video-resume");
    let video = rhino_video(&dir);
    let out = dir.join("out");
    let overlay = dir.join("o.mp4");
    let mask = gt_path(0);
    let args = [
        "--mask",
        mask.to_str().unwrap(),
        "--overlay",
        overlay.to_str().unwrap(),
    ];
    ok(&segment(&video, &out, &args));
    let j_full = mean_j(&out, 7..N);
    let full: Vec<Vec<u8>> = (0..N)
        .map(|i| std::fs::read(out.join(format!("{i:05}.png"))).unwrap())
        .collect();
    // What an interruption after frame 6 leaves: masks 0..=6, their records (and a cut line),
    // no stats.json, no overlay.
    let stats = stats_of(&out);
    let mut log = String::new();
    for r in &stats["per_frame"].as_array().unwrap()[..7] {
        log.push_str(&serde_json::to_string(r).unwrap());
        log.push('\n');
    }
    log.push_str("{\"index\":7,\"fra");
    std::fs::write(out.join("frames.jsonl"), log).unwrap();
    std::fs::remove_file(out.join("stats.json")).unwrap();
    std::fs::remove_file(&overlay).unwrap();
    for i in 7..N {
        std::fs::remove_file(out.join(format!("{i:05}.png"))).unwrap();
    }
    let mut resumed_args = args.to_vec();
    resumed_args.push("--resume");
    ok(&segment(&video, &out, &resumed_args));
    let stats = stats_of(&out);
    assert_eq!(stats["resumed_at"], 7, "the first unfinished frame");
    assert_eq!(stats["per_frame"].as_array().unwrap().len(), N);
    for (i, bytes) in full.iter().enumerate().take(7) {
        assert_eq!(
            &std::fs::read(out.join(format!("{i:05}.png"))).unwrap(),
            bytes,
            "frame {i} kept"
        );
    }
    let j = mean_j(&out, 7..N);
    eprintln!("frames 7..{N}: J {j:.3} resumed at 6, {j_full:.3} uninterrupted");
    assert!(
        j > j_full - 0.1 && j > 0.5,
        "J after resuming {j}, uninterrupted {j_full}"
    );
    assert_eq!(
        count_video_frames(&overlay),
        N,
        "the overlay is rebuilt whole"
    );
    // Resuming a finished run does nothing.
    let again = segment(&video, &out, &resumed_args);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already complete"));
}

#[test]
#[cfg_attr(
    no_ffmpeg,
    ignore = "ffmpeg was not found when the tests were built (apt-get install ffmpeg)"
)]
fn bad_video_inputs_fail_cleanly() {
    if !have_ffmpeg() {
        return;
    }
    let dir = common::temp_dir("video-bad");
    let mask = gt_path(0);
    let m = mask.to_str().unwrap();
    // Not a video.
    let junk = dir.join("junk.mp4");
    std::fs::write(&junk, b"this is not a video").unwrap();
    let err = fail(&segment(&junk, &dir.join("o1"), &["--mask", m]));
    assert!(err.contains("junk.mp4"), "{err}");
    // A missing file.
    let err = fail(&segment(
        &dir.join("nope.mp4"),
        &dir.join("o2"),
        &["--mask", m],
    ));
    assert!(err.contains("nope.mp4"), "{err}");
    // A file with no video stream (audio only).
    let audio = dir.join("audio.mkv");
    let run = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=8000:cl=mono",
            "-t",
            "0.5",
        ])
        .arg(&audio)
        .output()
        .unwrap();
    assert!(run.status.success());
    let err = fail(&segment(&audio, &dir.join("o3"), &["--mask", m]));
    assert!(
        err.contains("audio.mkv") && err.contains("no video stream"),
        "{err}"
    );
    // A video and a mask beyond its end; an unknown overlay format; no ffmpeg at all.
    let video = rhino_video(&dir);
    let late = format!("40:{m}");
    let err = fail(&segment(&video, &dir.join("o4"), &["--mask", &late]));
    assert!(err.contains("rhino.mp4") && err.contains("40"), "{err}");
    let err = fail(&segment(
        &video,
        &dir.join("o5"),
        &["--mask", m, "--overlay", "x.gif"],
    ));
    assert!(err.contains("x.gif"), "{err}");
    let run = Command::new(common::bin())
        .env("REUSE_VOS_FFMPEG", dir.join("no-ffmpeg-here"))
        .args(["segment"])
        .arg(&video)
        .args(["--mask", m, "--out"])
        .arg(dir.join("o6"))
        .output()
        .unwrap();
    let err = fail(&run);
    assert!(err.contains("ffmpeg") && err.contains("not found"), "{err}");
    for o in ["o1", "o2", "o3", "o4", "o5", "o6"] {
        let written = std::fs::read_dir(dir.join(o))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(written, 0, "{o}: nothing written on a failed start");
    }
}

#[test]
#[cfg_attr(
    no_ffmpeg,
    ignore = "ffmpeg was not found when the tests were built (apt-get install ffmpeg)"
)]
fn a_truncated_video_is_tracked_as_far_as_it_decodes_with_a_warning() {
    if !have_ffmpeg() {
        return;
    }
    let dir = common::temp_dir("video-truncated");
    let frames: Vec<PathBuf> = (0..30).map(|i| frame_path(SEQ, i)).collect();
    let full = dir.join("full.mp4");
    // The index up front (faststart), so the cut file still declares its 30 frames.
    encode(
        &frames,
        &full,
        &[
            "-vf",
            "scale=320:180",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    );
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 45 / 100]).unwrap();
    let mask = dir.join("mask.png");
    image::imageops::resize(
        &image::open(gt_path(0)).unwrap().to_luma8(),
        320,
        180,
        image::imageops::FilterType::Nearest,
    )
    .save(&mask)
    .unwrap();
    let out = dir.join("out");
    let run = Command::new(common::bin())
        .arg("segment")
        .arg(&cut)
        .arg("--mask")
        .arg(&mask)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("declares 30 frames"),
        "{err}"
    );
    let stats = stats_of(&out);
    let decoded = stats["frames"].as_u64().unwrap();
    assert!(decoded < 30, "{decoded}");
    assert!(
        stats["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("cut.mp4")),
        "{stats}"
    );
}

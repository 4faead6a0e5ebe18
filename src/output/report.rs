//! `reuse-vos report`: one self-contained HTML file (inline SVG and CSS, thumbnails as data
//! URIs) for a `segment` output, a `run` output or a `sweep` folder: per sequence a strip of
//! overlay thumbnails, a per-object timeline of P(reuse) with the computed and reused frames,
//! per-stage time bars; the evaluation's J&F when present, the sweep's curves when present.

use super::overlay;
use super::sweep_table::{self, SweepRow};
use crate::error::{Error, Result};
use crate::io::Mask;
use crate::io::palette::color_of;
use crate::io::source::Source;
use crate::track::gate::Path as Route;
use crate::track::video::{FrameStats, VideoStats};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Thumbnails per sequence.
const THUMBS: usize = 8;
const THUMB_WIDTH: u32 = 200;

/// One tracked sequence found in the folder.
struct Sequence {
    name: String,
    stats: VideoStats,
    /// Folder of its mask PNGs.
    masks: PathBuf,
}

/// What the folder holds.
struct Found {
    sequences: Vec<Sequence>,
    /// J&F per sequence, from the evaluation's per-sequence CSVs.
    jf: BTreeMap<String, f64>,
    sweep: Vec<SweepRow>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not a stats file: {e}")))
}

fn find(dir: &Path) -> Result<Found> {
    if !dir.is_dir() {
        return Err(Error::Missing {
            path: dir.to_path_buf(),
            what: "a segment, run or sweep output folder".into(),
        });
    }
    let mut sequences = Vec::new();
    let single = dir.join(super::STATS);
    if single.is_file() {
        let stats: VideoStats = read_json(&single)?;
        let name = Path::new(&stats.source)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".into());
        sequences.push(Sequence {
            name,
            stats,
            masks: dir.to_path_buf(),
        });
    }
    let per_seq = dir.join(super::names::STATS_DIR);
    if per_seq.is_dir() {
        let files =
            crate::io::frame::list_with(&per_seq, |p| p.extension().is_some_and(|e| e == "json"))?;
        for f in files {
            let name = crate::io::frame::stem(&f);
            sequences.push(Sequence {
                stats: read_json(&f)?,
                masks: dir.join(&name),
                name,
            });
        }
    }
    let mut jf = BTreeMap::new();
    let csvs = crate::io::frame::list_with(dir, |p| {
        p.file_name().is_some_and(|n| {
            n.to_string_lossy()
                .starts_with(crate::metrics::eval::PER_SEQUENCE_CSV)
        })
    })?;
    for csv in csvs {
        let text = std::fs::read_to_string(&csv).map_err(|e| Error::read(&csv, e))?;
        let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for line in text.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            if let [name, j, f] = cells[..]
                && let (Ok(j), Ok(f)) = (j.parse::<f64>(), f.parse::<f64>())
            {
                // Objects are named <sequence>_<id>.
                let seq = name.rsplit_once('_').map_or(name, |(s, _)| s);
                per.entry(seq.to_string()).or_default().push((j + f) / 2.0);
            }
        }
        for (seq, v) in per {
            jf.insert(seq, v.iter().sum::<f64>() / v.len() as f64);
        }
    }
    let sweep_csv = dir.join(super::names::SWEEP_CSV);
    let sweep = if sweep_csv.is_file() {
        sweep_table::read(&sweep_csv)?
    } else {
        Vec::new()
    };
    if sequences.is_empty() && sweep.is_empty() {
        return Err(Error::format(
            dir,
            "no stats.json, stats/<sequence>.json or sweep.csv here: not a segment, run or sweep output",
        ));
    }
    Ok(Found {
        sequences,
        jf,
        sweep,
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Overlay thumbnails of evenly spaced frames, as `<figure>`s with data-URI JPEGs.
fn thumbnails(seq: &Sequence) -> Result<String> {
    let frames = &seq.stats.per_frame;
    if frames.is_empty() {
        return Ok(String::new());
    }
    let source = match Source::open(Path::new(&seq.stats.source)) {
        Ok(s) => s,
        Err(e) => {
            return Ok(format!(
                "<p class=note>No thumbnails: the frames are not readable here ({}).</p>",
                esc(&e.to_string())
            ));
        }
    };
    let mut wanted: Vec<&FrameStats> = (0..THUMBS.min(frames.len()))
        .map(|k| &frames[k * (frames.len() - 1) / (THUMBS.min(frames.len()) - 1).max(1)])
        .collect();
    wanted.sort_by_key(|f| f.index);
    wanted.dedup_by_key(|f| f.index);
    let (lo, hi) = (wanted[0].index, wanted[wanted.len() - 1].index);
    let mut html = String::from("<div class=strip>");
    let mut it = source.frames(lo, Some(hi), false)?;
    for record in wanted {
        let frame = loop {
            match it.next() {
                Some(f) => {
                    let f = f?;
                    if f.index == record.index {
                        break Some(f);
                    }
                }
                None => break None,
            }
        };
        let Some(frame) = frame else { break };
        let mask = Mask::read_ids(&seq.masks.join(format!("{}.png", record.frame)))?;
        let paths: Vec<(u8, Route)> = record
            .objects
            .iter()
            .map(|o| (o.id, o.decision.path))
            .collect();
        let drawn = overlay::draw(&frame.frame, &mask, &paths);
        let img = image::RgbImage::from_raw(drawn.width, drawn.height, drawn.rgb)
            .ok_or_else(|| Error::Invalid("overlay buffer does not match its size".into()))?;
        let h = (THUMB_WIDTH as f64 * drawn.height as f64 / drawn.width as f64).round() as u32;
        let small = image::imageops::resize(
            &img,
            THUMB_WIDTH,
            h.max(1),
            image::imageops::FilterType::Triangle,
        );
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode_image(&small)
            .map_err(|e| Error::Invalid(format!("thumbnail: {e}")))?;
        let tags: Vec<String> = record
            .objects
            .iter()
            .map(|o| format!("{} {}", o.id, path_word(o.decision.path)))
            .collect();
        let _ = write!(
            html,
            "<figure><img alt=\"frame {}\" src=\"data:image/jpeg;base64,{}\"><figcaption>{} · {}</figcaption></figure>",
            esc(&record.frame),
            base64::engine::general_purpose::STANDARD.encode(&jpeg),
            esc(&record.frame),
            esc(&tags.join(", "))
        );
    }
    html.push_str("</div>");
    Ok(html)
}

fn path_word(p: Route) -> &'static str {
    match p {
        Route::Given => "given",
        Route::Computed => "computed",
        Route::Reused => "reused",
        Route::Copied => "copied",
    }
}

/// Per object: P(reuse) over the frames (line), τ (dashed), and a band of ticks (grey =
/// computed, object colour = reused or copied, black = given).
fn timeline(stats: &VideoStats) -> String {
    const W: f64 = 900.0;
    const ROW: f64 = 70.0;
    const PLOT: f64 = 46.0;
    const LEFT: f64 = 60.0;
    let frames = &stats.per_frame;
    let mut ids: Vec<u8> = frames
        .iter()
        .flat_map(|f| f.objects.iter().map(|o| o.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let n = frames.len().max(2) as f64;
    let x = |k: usize| LEFT + (W - LEFT - 10.0) * k as f64 / (n - 1.0);
    let bar_w = ((W - LEFT - 10.0) / n).max(1.0);
    let height = ROW * ids.len() as f64 + 24.0;
    let mut svg = format!(
        "<svg class=timeline width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let tau = stats.gate.map(|g| g.tau).filter(|&t| t < 1.0);
    for (row, &id) in ids.iter().enumerate() {
        let top = ROW * row as f64 + 4.0;
        let color = hex(color_of(id));
        let y = |p: f64| top + PLOT * (1.0 - p);
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">object {id}</text><text x=\"4\" y=\"{:.1}\" fill=\"#666\">P(reuse)</text><rect x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{PLOT}\" fill=\"#f6f6f6\"/>",
            top + 14.0,
            top + 28.0,
            W - LEFT - 10.0
        );
        if let Some(t) = tau {
            let _ = write!(
                svg,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#999\">τ {t}</text>",
                W - 10.0,
                y(t as f64),
                y(t as f64),
                W - 40.0,
                y(t as f64) - 2.0
            );
        }
        let mut points = String::new();
        for (k, f) in frames.iter().enumerate() {
            let Some(o) = f.objects.iter().find(|o| o.id == id) else {
                continue;
            };
            if let Some(p) = o.decision.p_reuse {
                let _ = write!(points, "{:.1},{:.1} ", x(k), y(p as f64));
            }
            let fill = match o.decision.path {
                Route::Given => "#000".to_string(),
                Route::Computed => "#888".to_string(),
                Route::Reused | Route::Copied => color.clone(),
            };
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"10\" fill=\"{fill}\"><title>frame {}: {}</title></rect>",
                x(k) - bar_w / 2.0,
                top + PLOT + 4.0,
                esc(&f.frame),
                path_word(o.decision.path)
            );
        }
        if !points.is_empty() {
            let _ = write!(
                svg,
                "<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>"
            );
        }
    }
    let base = ROW * ids.len() as f64 + 16.0;
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{base}\">frame {}</text><text x=\"{:.1}\" y=\"{base}\" text-anchor=\"end\">frame {}</text><text x=\"{:.1}\" y=\"{base}\" text-anchor=\"middle\" fill=\"#666\">band: black given · grey computed · colour reused</text></svg>",
        esc(frames.first().map_or("", |f| f.frame.as_str())),
        W - 10.0,
        esc(frames.last().map_or("", |f| f.frame.as_str())),
        (W + LEFT) / 2.0
    );
    svg
}

/// Mean stage times of a group of frames.
fn stage_means(frames: &[&FrameStats]) -> [(&'static str, f64); 8] {
    let n = frames.len().max(1) as f64;
    let mut m = [
        ("read", 0.0),
        ("backbone", 0.0),
        ("target model", 0.0),
        ("gate", 0.0),
        ("decoder", 0.0),
        ("merge", 0.0),
        ("update", 0.0),
        ("write", 0.0),
    ];
    for f in frames {
        let t = &f.times;
        let v = [
            t.decode_ms,
            t.backbone_ms,
            t.target_ms,
            t.gate_ms,
            t.decoder_ms,
            t.merge_ms,
            t.update_ms,
            t.output_ms,
        ];
        for (slot, v) in m.iter_mut().zip(v) {
            slot.1 += v / n;
        }
    }
    m
}

/// Stacked bars of the mean stage times: all frames, frames with a full computation, frames
/// where every object was reused (given frames left out).
fn stage_bars(stats: &VideoStats) -> String {
    const COLORS: [&str; 8] = [
        "#8dd3c7", "#80b1d3", "#fdb462", "#b3de69", "#fb8072", "#bebada", "#fccde5", "#d9d9d9",
    ];
    let tracked: Vec<&FrameStats> = stats
        .per_frame
        .iter()
        .filter(|f| !f.objects.iter().any(|o| o.given))
        .collect();
    let computed: Vec<&FrameStats> = tracked
        .iter()
        .copied()
        .filter(|f| f.objects.iter().any(|o| o.decision.path == Route::Computed))
        .collect();
    let reused: Vec<&FrameStats> = tracked
        .iter()
        .copied()
        .filter(|f| f.objects.iter().all(|o| o.decision.path.is_reuse()))
        .collect();
    let groups = [
        ("all tracked frames", &tracked),
        ("frames computed", &computed),
        ("frames reused", &reused),
    ];
    let means: Vec<_> = groups.iter().map(|(_, g)| stage_means(g)).collect();
    let max = means
        .iter()
        .map(|m| m.iter().map(|s| s.1).sum::<f64>())
        .fold(1.0, f64::max);
    const W: f64 = 900.0;
    const LEFT: f64 = 150.0;
    let scale = (W - LEFT - 80.0) / max;
    let h = 26.0 * groups.len() as f64 + 40.0;
    let mut svg = format!(
        "<svg class=bars width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    for (row, ((label, frames), m)) in groups.iter().zip(&means).enumerate() {
        let y = 26.0 * row as f64 + 4.0;
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{label} ({})</text>",
            y + 14.0,
            frames.len()
        );
        let mut x = LEFT;
        for ((name, v), c) in m.iter().zip(COLORS) {
            let w = v * scale;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" fill=\"{c}\"><title>{name}: {v:.1} ms</title></rect>"
            );
            x += w;
        }
        let total: f64 = m.iter().map(|s| s.1).sum();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{total:.1} ms</text>",
            x + 6.0,
            y + 14.0
        );
    }
    let mut x = LEFT;
    let y = 26.0 * groups.len() as f64 + 14.0;
    for ((name, _), c) in means[0].iter().zip(COLORS) {
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"10\" height=\"10\" fill=\"{c}\"/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
            x + 13.0,
            y + 9.0
        );
        x += 13.0 + 7.0 * name.len() as f64 + 14.0;
    }
    svg.push_str("</svg>");
    svg
}

fn sequence_section(seq: &Sequence, jf: Option<f64>) -> Result<String> {
    let s = &seq.stats;
    let mut html = format!("<section><h2>{}</h2><p class=facts>", esc(&seq.name));
    let _ = write!(
        html,
        "{} frames at {}×{} · {:.1} FPS ({:.1} without init) on {} · reuse {:.1} % · {:.2} GMAC/frame",
        s.frames,
        s.processing_size.0,
        s.processing_size.1,
        s.fps,
        s.fps_without_init,
        esc(&s.engine),
        100.0 * s.reuse_rate,
        s.gmacs_per_frame
    );
    if let Some(g) = s.gate {
        let _ = write!(html, " · gate {} τ {}", g.policy, g.tau);
    }
    if s.reverse {
        html.push_str(" · backwards");
    }
    if let Some(jf) = jf {
        let _ = write!(html, " · <b>J&amp;F {:.1}</b>", 100.0 * jf);
    }
    html.push_str("</p>");
    if !s.reuse.is_empty() {
        html.push_str("<p class=facts>per object reuse: ");
        let parts: Vec<String> = s
            .reuse
            .iter()
            .map(|(id, r)| {
                format!(
                    "<span style=\"color:{}\">■</span> {id}: {:.1} % of {} frames",
                    hex(color_of(*id)),
                    100.0 * r.rate,
                    r.frames
                )
            })
            .collect();
        html.push_str(&parts.join(" · "));
        html.push_str("</p>");
    }
    html.push_str(&thumbnails(seq)?);
    html.push_str("<h3>P(reuse) and path per frame</h3>");
    html.push_str(&timeline(s));
    html.push_str("<h3>Time per frame by stage (ms)</h3>");
    html.push_str(&stage_bars(s));
    html.push_str("</section>");
    Ok(html)
}

fn sweep_section(rows: &[SweepRow]) -> Result<String> {
    let svg = sweep_table::plot(rows)
        .map_err(|e| Error::Invalid(format!("cannot draw the sweep plot: {e}")))?;
    let mut html = String::from("<section><h2>Sweep</h2>");
    // plotters writes an XML declaration-free <svg>; inline it as is.
    html.push_str(&svg);
    let head: Vec<String> = sweep_table::HEADER.iter().map(|h| esc(h)).collect();
    let _ = write!(html, "<table><tr><th>{}</th></tr>", head.join("</th><th>"));
    for r in rows {
        let cells: Vec<String> = r.cells().iter().map(|c| esc(c)).collect();
        let _ = write!(html, "<tr><td>{}</td></tr>", cells.join("</td><td>"));
    }
    html.push_str("</table></section>");
    Ok(html)
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}\
h3{font-size:13px;color:#555;margin:14px 0 4px}.facts{font-size:13px;margin:4px 0}\
.note{color:#a00;font-size:13px}.strip{display:flex;flex-wrap:wrap;gap:6px}\
figure{margin:0}figure img{display:block;border:1px solid #ccc}\
figcaption{font-size:11px;color:#555;max-width:200px}\
table{border-collapse:collapse;font-size:13px;margin-top:8px}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}";

/// Builds the report of `dir` (a `segment`, `run` or `sweep` output).
pub fn build(dir: &Path) -> Result<String> {
    let found = find(dir)?;
    let mut html = format!(
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>reuse-vos report: {}</title><style>{STYLE}</style></head><body><h1>reuse-vos report</h1><p class=facts>{}</p>",
        esc(&dir.display().to_string()),
        esc(&dir.display().to_string())
    );
    if !found.jf.is_empty() {
        let mean = found.jf.values().sum::<f64>() / found.jf.len() as f64;
        let _ = write!(
            html,
            "<p class=facts>Evaluation present: mean J&amp;F over {} sequences <b>{:.1}</b></p>",
            found.jf.len(),
            100.0 * mean
        );
    }
    if !found.sweep.is_empty() {
        html.push_str(&sweep_section(&found.sweep)?);
    }
    for seq in &found.sequences {
        html.push_str(&sequence_section(seq, found.jf.get(&seq.name).copied())?);
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

/// Writes the report of `dir` to `out` atomically.
pub fn write(dir: &Path, out: &Path) -> Result<()> {
    let html = build(dir)?;
    crate::io::atomic::write_bytes(out, html.as_bytes())
}

//! Video files through the `ffmpeg` program, run as a subprocess with frames on a pipe (never
//! dumped to disk): decoding to RGB frames, and encoding RGB frames to a video file.
//!
//! Decoding asks ffmpeg for PPM images on its standard output: each carries its own size, so
//! the frames are exactly what ffmpeg decoded (rotation metadata applied) without guessing the
//! size beforehand. `-fps_mode passthrough` keeps ffmpeg from dropping or duplicating frames,
//! so frame n of the pipe is frame n of the stream.

use super::Frame;
use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// The ffmpeg program: `$REUSE_VOS_FFMPEG`, else `ffmpeg` on the PATH.
pub fn ffmpeg_program() -> PathBuf {
    std::env::var_os("REUSE_VOS_FFMPEG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ffmpeg"))
}

/// ffprobe, beside the ffmpeg program.
fn ffprobe_program() -> PathBuf {
    let ffmpeg = ffmpeg_program();
    match ffmpeg.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join("ffprobe"),
        None => PathBuf::from("ffprobe"),
    }
}

fn spawn_error(program: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::Invalid(format!(
            "{}: not found; video files need ffmpeg (Debian/Ubuntu: `apt-get install ffmpeg`), or set REUSE_VOS_FFMPEG to its path",
            program.display()
        ))
    } else {
        Error::Invalid(format!("{}: cannot start: {e}", program.display()))
    }
}

/// Collects a child's standard error on a thread (so a full pipe never blocks it).
fn drain(stderr: Option<std::process::ChildStderr>) -> Option<JoinHandle<String>> {
    stderr.map(|mut s| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            text
        })
    })
}

/// What the draining thread collected (once the child has ended).
fn collected(stderr: &mut Option<JoinHandle<String>>) -> String {
    stderr
        .take()
        .and_then(|h| h.join().ok())
        .unwrap_or_default()
}

/// The last lines of ffmpeg's messages, for an error.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// What ffprobe says of a video's first video stream.
#[derive(Clone, Debug, Default)]
pub struct VideoInfo {
    /// Frames, when the container records it (mp4/mov do; mkv/webm often do not).
    pub frames: Option<usize>,
    /// Frames per second (average), when known.
    pub fps: Option<f64>,
}

/// Probes a video file. Errors when the file is unreadable or has no video stream; a missing
/// ffprobe only loses the frame count and rate.
pub fn probe(path: &Path) -> Result<VideoInfo> {
    std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let program = ffprobe_program();
    let out = match Command::new(&program)
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_frames,avg_frame_rate,codec_type",
        ])
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VideoInfo::default()),
        Err(e) => return Err(spawn_error(&program, e)),
    };
    if !out.status.success() {
        return Err(Error::format(
            path,
            format!(
                "not a video ffmpeg can read: {}",
                last_lines(&String::from_utf8_lossy(&out.stderr))
            ),
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::format(path, format!("ffprobe answered something unreadable: {e}")))?;
    let Some(stream) = json["streams"].as_array().and_then(|s| s.first()) else {
        return Err(Error::format(path, "the file holds no video stream"));
    };
    let frames = stream["nb_frames"]
        .as_str()
        .and_then(|s| s.parse::<usize>().ok());
    let fps = stream["avg_frame_rate"].as_str().and_then(|r| {
        let (n, d) = r.split_once('/')?;
        let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
        (n > 0.0 && d > 0.0).then_some(n / d)
    });
    Ok(VideoInfo { frames, fps })
}

/// Decodes the frames of a video file, in stream order, from `first` to `last` (inclusive).
pub struct VideoReader {
    path: PathBuf,
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    /// Index (in the whole stream) of the next frame to be read.
    next: usize,
    last: Option<usize>,
    done: bool,
}

impl VideoReader {
    pub fn open(path: &Path, first: usize, last: Option<usize>) -> Result<VideoReader> {
        std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
        let program = ffmpeg_program();
        let mut cmd = Command::new(&program);
        cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
            .arg(path)
            .args(["-map", "0:v:0"]);
        // Frame-accurate range: select by decoded frame number (no seeking to key frames).
        let select = match (first, last) {
            (0, None) => None,
            (f, None) => Some(format!("select='gte(n,{f})'")),
            (f, Some(l)) => Some(format!("select='between(n,{f},{l})'")),
        };
        if let Some(s) = select {
            cmd.args(["-vf", &s]);
        }
        cmd.args([
            "-fps_mode",
            "passthrough",
            "-f",
            "image2pipe",
            "-c:v",
            "ppm",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(&program, e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Invalid("ffmpeg: no output pipe".into()))?;
        let stderr = drain(child.stderr.take());
        Ok(VideoReader {
            path: path.to_path_buf(),
            child,
            stdout: BufReader::with_capacity(1 << 20, stdout),
            stderr,
            next: first,
            last,
            done: false,
        })
    }

    /// Index of the next frame `next_frame` returns.
    pub fn position(&self) -> usize {
        self.next
    }

    /// The next frame, or `None` after the last one (or after `last`).
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.done || self.last.is_some_and(|l| self.next > l) {
            self.finish()?;
            return Ok(None);
        }
        match read_ppm(&mut self.stdout) {
            Ok(Some(frame)) => {
                self.next += 1;
                Ok(Some(frame))
            }
            Ok(None) => {
                self.finish()?;
                Ok(None)
            }
            Err(reason) => {
                let _ = self.child.kill();
                self.done = true;
                Err(Error::format(
                    &self.path,
                    format!("decoding frame {}: {reason}", self.next),
                ))
            }
        }
    }

    /// Waits for ffmpeg (killing it when frames are left unread) and reports its failure.
    fn finish(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let stopped_early = self.last.is_some_and(|l| self.next > l);
        if stopped_early {
            let _ = self.child.kill();
        }
        let status = self.child.wait().map_err(|e| Error::read(&self.path, e))?;
        let messages = collected(&mut self.stderr);
        if !stopped_early && !status.success() {
            return Err(Error::format(
                &self.path,
                format!("ffmpeg could not decode it: {}", last_lines(&messages)),
            ));
        }
        Ok(())
    }
}

impl Drop for VideoReader {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads one binary PPM (P6, maxval 255) from the pipe; `None` at a clean end of stream.
fn read_ppm(r: &mut impl BufRead) -> std::result::Result<Option<Frame>, String> {
    if r.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let mut fields = Vec::with_capacity(4);
    while fields.len() < 4 {
        let mut token = Vec::new();
        loop {
            let mut b = [0u8];
            if r.read(&mut b).map_err(|e| e.to_string())? == 0 {
                return Err("the stream ended inside a frame header".into());
            }
            match b[0] {
                b'#' if token.is_empty() => {
                    let mut comment = Vec::new();
                    r.read_until(b'\n', &mut comment)
                        .map_err(|e| e.to_string())?;
                }
                c if c.is_ascii_whitespace() => {
                    if !token.is_empty() {
                        break;
                    }
                }
                c => token.push(c),
            }
        }
        fields.push(String::from_utf8_lossy(&token).into_owned());
    }
    if fields[0] != "P6" || fields[3] != "255" {
        return Err(format!("unexpected frame header {fields:?}"));
    }
    let width: u32 = fields[1].parse().map_err(|_| "bad frame width")?;
    let height: u32 = fields[2].parse().map_err(|_| "bad frame height")?;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    r.read_exact(&mut rgb)
        .map_err(|e| format!("the stream ended inside a frame: {e}"))?;
    Ok(Some(Frame { width, height, rgb }))
}

/// Encodes RGB frames into a video file: written under a temporary name and renamed when
/// complete, so an interrupted run leaves no broken file.
pub struct VideoWriter {
    dest: PathBuf,
    tmp: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
    size: (u32, u32),
    finished: bool,
}

/// The container and codec arguments for a file's extension.
fn encoding_for(path: &Path) -> Result<(&'static str, Vec<&'static str>)> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let x264 = vec![
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
    ];
    match ext.as_str() {
        "mp4" => Ok(("mp4", x264)),
        "mov" => Ok(("mov", x264)),
        "mkv" => Ok(("matroska", x264)),
        "webm" => Ok((
            "webm",
            vec![
                "-c:v",
                "libvpx-vp9",
                "-b:v",
                "0",
                "-crf",
                "32",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-pix_fmt",
                "yuv420p",
            ],
        )),
        _ => Err(Error::format(
            path,
            "unknown video extension (use .mp4, .mov, .mkv or .webm)",
        )),
    }
}

impl VideoWriter {
    /// Checks that `path` can be written as a video, before any work is done.
    pub fn check_path(path: &Path) -> Result<()> {
        encoding_for(path).map(|_| ())
    }

    pub fn create(path: &Path, width: u32, height: u32, fps: f64) -> Result<VideoWriter> {
        let (format, codec) = encoding_for(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        }
        let mut name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".partial");
        let tmp = path.with_file_name(name);
        let program = ffmpeg_program();
        let mut child = Command::new(&program)
            .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
            .args(["-s", &format!("{width}x{height}")])
            .args(["-r", &format!("{fps:.6}"), "-i", "-"])
            // 4:2:0 needs even sizes.
            .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
            .args(codec)
            .args(["-f", format])
            .arg(&tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(&program, e))?;
        let stdin = child.stdin.take();
        let stderr = drain(child.stderr.take());
        Ok(VideoWriter {
            dest: path.to_path_buf(),
            tmp,
            child,
            stdin,
            stderr,
            size: (width, height),
            finished: false,
        })
    }

    pub fn write(&mut self, frame: &Frame) -> Result<()> {
        if (frame.width, frame.height) != self.size {
            return Err(Error::Invalid(format!(
                "{}: frame is {}x{}, the video is {}x{}",
                self.dest.display(),
                frame.width,
                frame.height,
                self.size.0,
                self.size.1
            )));
        }
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::Invalid("video writer already finished".into()))?;
        if let Err(e) = stdin.write_all(&frame.rgb) {
            // ffmpeg died: its messages say why.
            self.stdin = None;
            let _ = self.child.wait();
            let messages = collected(&mut self.stderr);
            return Err(Error::format(
                &self.dest,
                format!("ffmpeg stopped encoding ({e}): {}", last_lines(&messages)),
            ));
        }
        Ok(())
    }

    /// Closes the stream, waits for ffmpeg and moves the file into place.
    pub fn finish(mut self) -> Result<()> {
        self.stdin = None;
        let status = self.child.wait().map_err(|e| Error::write(&self.dest, e))?;
        let messages = collected(&mut self.stderr);
        self.finished = true;
        if !status.success() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(Error::format(
                &self.dest,
                format!("ffmpeg could not encode it: {}", last_lines(&messages)),
            ));
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::write(&self.dest, e))
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.stdin = None;
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_frames_parse_and_end_cleanly() {
        let mut bytes = b"P6\n2 1\n255\n".to_vec();
        bytes.extend([1, 2, 3, 4, 5, 6]);
        bytes.extend(b"P6 1 1 255\n");
        bytes.extend([7, 8, 9]);
        let mut r = BufReader::new(&bytes[..]);
        let a = read_ppm(&mut r).unwrap().unwrap();
        assert_eq!(
            (a.width, a.height, a.rgb.clone()),
            (2, 1, vec![1, 2, 3, 4, 5, 6])
        );
        let b = read_ppm(&mut r).unwrap().unwrap();
        assert_eq!(b.rgb, vec![7, 8, 9]);
        assert!(read_ppm(&mut r).unwrap().is_none());
        let mut cut = BufReader::new(&b"P6\n2 1\n255\n\x01"[..]);
        assert!(read_ppm(&mut cut).is_err());
    }

    #[test]
    fn output_extensions_are_checked_before_work() {
        assert!(VideoWriter::check_path(Path::new("a.mp4")).is_ok());
        assert!(VideoWriter::check_path(Path::new("a.WEBM")).is_ok());
        assert!(VideoWriter::check_path(Path::new("a.gif")).is_err());
    }
}

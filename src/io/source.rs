//! Where a video's frames come from: a folder of images or a video file (through ffmpeg), read
//! in a frame range, forwards or backwards.

use super::Frame;
use super::ffmpeg::{self, VideoInfo, VideoReader};
use super::frame::{is_image, list_images, stem};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One frame of a source, with its index in the whole video and its output name.
#[derive(Clone)]
pub struct SourceFrame {
    pub index: usize,
    pub name: String,
    pub frame: Frame,
}

/// A video: a folder of frames (JPEG/PNG, name order) or a video file.
pub enum Source {
    Folder { dir: PathBuf, paths: Vec<PathBuf> },
    Video { path: PathBuf, info: VideoInfo },
}

/// Frames per second assumed for a folder of frames (DAVIS's rate).
pub const FOLDER_FPS: f64 = 24.0;

impl Source {
    /// A folder becomes a frame folder; a file is read as a video.
    pub fn open(path: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(|e| Error::read(path, e))?;
        if meta.is_dir() {
            let paths = list_images(path)?;
            if paths.is_empty() {
                return Err(Error::format(path, "the folder holds no JPEG/PNG frames"));
            }
            Ok(Source::Folder {
                dir: path.to_path_buf(),
                paths,
            })
        } else if is_image(path) {
            Err(Error::format(
                path,
                "a single image, not a video: give a folder of frames or a video file",
            ))
        } else {
            let info = ffmpeg::probe(path)?;
            if info.frames == Some(0) {
                return Err(Error::format(path, "the video has no frames"));
            }
            Ok(Source::Video {
                path: path.to_path_buf(),
                info,
            })
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Source::Folder { dir, .. } => dir,
            Source::Video { path, .. } => path,
        }
    }

    pub fn is_video(&self) -> bool {
        matches!(self, Source::Video { .. })
    }

    /// Frames in the whole video, when known before decoding.
    pub fn len(&self) -> Option<usize> {
        match self {
            Source::Folder { paths, .. } => Some(paths.len()),
            Source::Video { info, .. } => info.frames,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    pub fn fps(&self) -> f64 {
        match self {
            Source::Folder { .. } => FOLDER_FPS,
            Source::Video { info, .. } => info.fps.unwrap_or(FOLDER_FPS),
        }
    }

    /// The output name of frame `index`: a folder's frame stem, or the zero-padded index.
    pub fn name(&self, index: usize) -> String {
        match self {
            Source::Folder { paths, .. } => paths.get(index).map(|p| stem(p)).unwrap_or_default(),
            Source::Video { .. } => format!("{index:05}"),
        }
    }

    /// Frame `index` alone (a video is decoded up to it).
    pub fn frame_at(&self, index: usize) -> Result<SourceFrame> {
        if let Some(n) = self.len().filter(|&n| index >= n) {
            let what = if self.is_video() { "video" } else { "folder" };
            return Err(Error::format(
                self.path(),
                format!(
                    "frame {index} is past the end: the {what} has {n} frames (0..={})",
                    n.saturating_sub(1)
                ),
            ));
        }
        match self {
            Source::Folder { .. } => self
                .frames(index, Some(index), false)?
                .next()
                .unwrap_or_else(|| {
                    Err(Error::format(
                        self.path(),
                        format!("frame {index} is missing"),
                    ))
                }),
            Source::Video { path, .. } => {
                let frame = VideoReader::open(path, index, Some(index))?
                    .next_frame()?
                    .ok_or_else(|| {
                        Error::format(
                            path,
                            format!(
                                "frame {index} is past the end: the video decodes fewer frames"
                            ),
                        )
                    })?;
                Ok(SourceFrame {
                    index,
                    name: format!("{index:05}"),
                    frame,
                })
            }
        }
    }

    /// Frames `first..=last` (`last`: the end of the video when `None`), in order or reversed.
    /// A folder reads each frame when it is needed; a video read backwards is decoded into
    /// memory first (ffmpeg decodes forwards only).
    pub fn frames(
        &self,
        first: usize,
        last: Option<usize>,
        reverse: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<SourceFrame>> + Send + '_>> {
        match self {
            Source::Folder { dir, paths } => {
                let end = last.map_or(paths.len(), |l| l.saturating_add(1).min(paths.len()));
                if first >= end {
                    return Err(Error::format(
                        dir,
                        format!(
                            "frame range {first}..{} is empty (the folder has {} frames)",
                            end.saturating_sub(1),
                            paths.len()
                        ),
                    ));
                }
                let load = move |i: usize| {
                    Frame::load(&paths[i]).map(|frame| SourceFrame {
                        index: i,
                        name: stem(&paths[i]),
                        frame,
                    })
                };
                if reverse {
                    Ok(Box::new((first..end).rev().map(load)))
                } else {
                    Ok(Box::new((first..end).map(load)))
                }
            }
            Source::Video { path, .. } => {
                let mut reader = VideoReader::open(path, first, last)?;
                let empty = || {
                    Error::format(
                        path,
                        match last {
                            Some(l) => format!("no video frames in the range {first}..{l}"),
                            None if first > 0 => format!("no video frames from frame {first} on"),
                            None => "the video has no frames".to_string(),
                        },
                    )
                };
                if reverse {
                    let mut all = Vec::new();
                    while let Some(frame) = reader.next_frame()? {
                        let index = first + all.len();
                        all.push(SourceFrame {
                            index,
                            name: format!("{index:05}"),
                            frame,
                        });
                    }
                    if all.is_empty() {
                        return Err(empty());
                    }
                    Ok(Box::new(all.into_iter().rev().map(Ok)))
                } else {
                    let head = reader.next_frame()?.ok_or_else(empty)?;
                    let head = SourceFrame {
                        index: first,
                        name: format!("{first:05}"),
                        frame: head,
                    };
                    let rest = std::iter::from_fn(move || {
                        let index = reader.position();
                        reader.next_frame().transpose().map(|r| {
                            r.map(|frame| SourceFrame {
                                index,
                                name: format!("{index:05}"),
                                frame,
                            })
                        })
                    });
                    Ok(Box::new(std::iter::once(Ok(head)).chain(rest)))
                }
            }
        }
    }
}

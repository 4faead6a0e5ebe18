//! Dataset layouts: DAVIS 2016 / 2017.
//!
//! DAVIS: `JPEGImages/480p/<seq>/*.jpg`, `Annotations/480p/<seq>/*.png` (every frame),
//! sets in `ImageSets/2017/<set>.txt` (names) or `ImageSets/480p/<set>.txt` (DAVIS 2016 path
//! pairs), or any plain list file.

use crate::error::{Error, Result};
use crate::io::frame::{list_images, list_with, stem};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which layout and annotation convention a dataset root follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// Grey 0/255 annotations, one object per sequence.
    Davis2016,
    /// Palette annotations, ids 1..N, 255 = void.
    Davis2017,
}

/// A dataset root and the sequences selected from it.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub root: PathBuf,
    pub kind: DatasetKind,
    pub sequences: Vec<String>,
}

/// Where one sequence's frames and annotations are.
#[derive(Clone, Debug)]
pub struct SequenceInfo {
    pub name: String,
    /// Frame images in order (may be empty when only annotations are present).
    pub frames: Vec<PathBuf>,
    /// Annotation PNGs with the index of the frame they belong to (frame order).
    pub annotations: Vec<(usize, PathBuf)>,
}

/// The sequence name a set-file line refers to: a bare name, or the folder of a frame path
/// (`/JPEGImages/480p/bear/00000.jpg /Annotations/... ` → `bear`).
fn sequence_of_line(line: &str) -> Option<String> {
    let first = line.split_whitespace().next()?;
    if first.starts_with('#') {
        return None;
    }
    if first.contains('/') {
        let p = Path::new(first);
        if p.extension().is_some() {
            return p
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned());
        }
        return p.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    Some(first.to_string())
}

/// Reads a set file: sequence names in order, duplicates removed.
pub fn read_set_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let mut out: Vec<String> = Vec::new();
    for name in text.lines().filter_map(sequence_of_line) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.is_empty() {
        return Err(Error::format(path, "set file lists no sequences"));
    }
    Ok(out)
}

impl DatasetKind {
    /// The layout of a DAVIS root, from its first annotation: a grey PNG is DAVIS 2016, a
    /// palette PNG DAVIS 2017.
    pub fn detect(root: &Path) -> Result<DatasetKind> {
        let ann = root.join("Annotations").join("480p");
        let missing = || Error::Missing {
            path: ann.clone(),
            what: "a DAVIS annotation folder (Annotations/480p/<sequence>/*.png)".into(),
        };
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&ann)
            .map_err(|_| missing())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let mut first = None;
        for dir in dirs {
            first = list_with(&dir, |p| p.extension().is_some_and(|e| e == "png"))?
                .into_iter()
                .next();
            if first.is_some() {
                break;
            }
        }
        let first = first.ok_or_else(|| Error::Missing {
            path: ann.clone(),
            what: "at least one annotated sequence (Annotations/480p/<sequence>/*.png)".into(),
        })?;
        Ok(match crate::io::Mask::read_png(&first)?.1 {
            crate::io::mask::MaskEncoding::Grey => DatasetKind::Davis2016,
            crate::io::mask::MaskEncoding::Indexed => DatasetKind::Davis2017,
        })
    }

    fn annotations_dir(self, root: &Path) -> PathBuf {
        root.join("Annotations").join("480p")
    }
    fn frames_dir(self, root: &Path) -> PathBuf {
        root.join("JPEGImages").join("480p")
    }

    /// Reads an annotation of this layout: DAVIS 2016 grey → one object (id 1); DAVIS 2017
    /// palette ids, void (255) as background. The one reader of ground truth.
    pub fn read_annotation(self, path: &Path) -> Result<crate::io::Mask> {
        let mut m = match self {
            DatasetKind::Davis2016 => crate::io::Mask::read_binary(path)?,
            DatasetKind::Davis2017 => crate::io::Mask::read_ids(path)?,
        };
        for v in &mut m.ids {
            if *v == crate::io::mask::VOID {
                *v = 0;
            }
        }
        Ok(m)
    }
    fn set_dir(self, root: &Path) -> PathBuf {
        match self {
            DatasetKind::Davis2016 => root.join("ImageSets").join("480p"),
            _ => root.join("ImageSets").join("2017"),
        }
    }
}

impl Dataset {
    /// Opens a dataset root. `set` is a set name (`val`, `train`, ...) looked up in the
    /// layout's ImageSets folder, or a path to a list file; `sequences` picks sequences by
    /// name. With neither, every annotated sequence is used, sorted by name.
    pub fn open(
        root: &Path,
        kind: DatasetKind,
        set: Option<&str>,
        sequences: Option<&[String]>,
    ) -> Result<Dataset> {
        let ann = kind.annotations_dir(root);
        if !ann.is_dir() {
            return Err(Error::Missing {
                path: ann,
                what: "the dataset's annotation folder".into(),
            });
        }
        let names = match (set, sequences) {
            (_, Some(list)) if !list.is_empty() => list.to_vec(),
            (Some(set), _) => read_set_file(&resolve_set(root, kind, set)?)?,
            _ => {
                let mut names = Vec::new();
                for entry in std::fs::read_dir(&ann).map_err(|e| Error::read(&ann, e))? {
                    let path = entry.map_err(|e| Error::read(&ann, e))?.path();
                    if path.is_dir() {
                        names.push(stem_of_dir(&path));
                    }
                }
                names.sort();
                names
            }
        };
        for name in &names {
            let dir = ann.join(name);
            if !dir.is_dir() {
                return Err(Error::Missing {
                    path: dir,
                    what: format!("annotations of sequence {name}"),
                });
            }
        }
        Ok(Dataset {
            root: root.to_path_buf(),
            kind,
            sequences: names,
        })
    }

    /// The annotation folder of a sequence.
    pub fn annotations_dir(&self, seq: &str) -> PathBuf {
        self.kind.annotations_dir(&self.root).join(seq)
    }

    /// The frame folder of a sequence.
    pub fn frames_dir(&self, seq: &str) -> PathBuf {
        self.kind.frames_dir(&self.root).join(seq)
    }

    /// Frames and annotations of one sequence. Frames may be absent (evaluation needs only
    /// annotations); an annotation whose frame is missing is an error when frames exist.
    pub fn sequence(&self, seq: &str) -> Result<SequenceInfo> {
        let ann_dir = self.annotations_dir(seq);
        let anns = list_with(&ann_dir, |p| {
            p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
        })?;
        if anns.is_empty() {
            return Err(Error::Missing {
                path: ann_dir,
                what: "at least one annotation PNG".into(),
            });
        }
        let frame_dir = self.frames_dir(seq);
        let frames = if frame_dir.is_dir() {
            list_images(&frame_dir)?
        } else {
            Vec::new()
        };
        let annotations = if frames.is_empty() {
            anns.into_iter().enumerate().collect()
        } else {
            let index: BTreeMap<String, usize> = frames
                .iter()
                .enumerate()
                .map(|(i, f)| (stem(f), i))
                .collect();
            let mut out = Vec::with_capacity(anns.len());
            for a in anns {
                let i = *index.get(&stem(&a)).ok_or_else(|| Error::Missing {
                    path: frame_dir.join(format!("{}.jpg", stem(&a))),
                    what: format!("the frame annotated by {}", a.display()),
                })?;
                out.push((i, a));
            }
            out
        };
        Ok(SequenceInfo {
            name: seq.to_string(),
            frames,
            annotations,
        })
    }
}

fn stem_of_dir(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A set name in the layout's ImageSets folder, else a path (as given, or under the root).
fn resolve_set(root: &Path, kind: DatasetKind, set: &str) -> Result<PathBuf> {
    let candidates = [
        kind.set_dir(root).join(format!("{set}.txt")),
        PathBuf::from(set),
        root.join(set),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Error::Missing {
            path: candidates[0].clone(),
            what: format!("set {set:?} (a set name or a list file)"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_lines_give_sequence_names() {
        assert_eq!(sequence_of_line("bear").as_deref(), Some("bear"));
        assert_eq!(
            sequence_of_line("/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png")
                .as_deref(),
            Some("bear")
        );
        assert_eq!(sequence_of_line("   "), None);
    }
}

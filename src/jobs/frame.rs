//! `frame`: one frame of a video written as a PNG at its original size — the picture a user
//! paints a first mask on (the mask must have the frame's size).

use crate::error::{Error, Result};
use crate::io::atomic;
use crate::io::source::Source;
use crate::output::guard::same_file;
use std::path::{Path, PathBuf};

/// What was written.
pub struct Exported {
    pub index: usize,
    pub width: u32,
    pub height: u32,
    pub out: PathBuf,
}

/// Writes frame `index` of `input` (a video file or a frame folder) to `out` (a .png).
pub fn export(input: &Path, index: usize, out: &Path) -> Result<Exported> {
    let is_png = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(Error::format(
            out,
            "the frame is written as PNG: name it *.png",
        ));
    }
    let source = Source::open(input)?;
    refuse_touching_the_input(&source, out)?;
    let frame = source.frame_at(index)?.frame;
    let image = image::RgbImage::from_raw(frame.width, frame.height, frame.rgb)
        .ok_or_else(|| Error::format(input, "decoded frame has the wrong number of bytes"))?;
    atomic::write_with(out, |w| {
        image
            .write_to(w, image::ImageFormat::Png)
            .map_err(|e| Error::format(out, format!("cannot encode PNG: {e}")))
    })?;
    Ok(Exported {
        index,
        width: image.width(),
        height: image.height(),
        out: out.to_path_buf(),
    })
}

/// The output must not replace the input, nor add a picture to the input's frame folder (it
/// would become a frame of the video on the next run).
fn refuse_touching_the_input(source: &Source, out: &Path) -> Result<()> {
    if same_file(out, source.path()) {
        return Err(Error::format(
            out,
            "is the input itself; choose another file",
        ));
    }
    if let Source::Folder { dir, .. } = source {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
        if same_file(parent.unwrap_or(Path::new(".")), dir) {
            return Err(Error::format(
                out,
                format!(
                    "is inside the input frame folder {}; it would become one of its frames: write it elsewhere",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

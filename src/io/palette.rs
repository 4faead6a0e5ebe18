//! The standard DAVIS palette: the PASCAL VOC colour map that the official DAVIS toolkit and
//! the DAVIS annotations use (id 1 = dark red, 2 = green, ...; 255 = void).

/// The 256-entry RGB palette, 768 bytes.
pub fn davis_palette() -> [u8; 768] {
    let mut pal = [0u8; 768];
    for id in 0..256usize {
        let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
        let mut c = id;
        for j in 0..8 {
            r |= ((c & 1) as u8) << (7 - j);
            g |= (((c >> 1) & 1) as u8) << (7 - j);
            b |= (((c >> 2) & 1) as u8) << (7 - j);
            c >>= 3;
        }
        pal[id * 3] = r;
        pal[id * 3 + 1] = g;
        pal[id * 3 + 2] = b;
    }
    pal
}

/// The colour of one object id.
pub fn color_of(id: u8) -> [u8; 3] {
    let p = davis_palette();
    let i = id as usize * 3;
    [p[i], p[i + 1], p[i + 2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_entries_match_the_davis_annotations() {
        // As read from the palette of a DAVIS-2017 annotation PNG.
        let p = davis_palette();
        assert_eq!(
            &p[..18],
            &[
                0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128, 128, 0, 128
            ]
        );
        assert_eq!(color_of(255), [224, 224, 192]);
    }
}

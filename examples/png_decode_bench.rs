fn main() {
    let dir = std::path::Path::new("../shared/data/davis2016-train/Annotations/480p/bear");
    let files = reuse_vos::io::frame::list_with(dir, |_| true).unwrap();
    let t = std::time::Instant::now();
    let mut n = 0;
    for f in &files {
        n += reuse_vos::io::Mask::read_binary(f).unwrap().ids.len();
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{} files {n} px: {:.3} ms/file",
        files.len(),
        1000.0 * dt / files.len() as f64
    );
    let m = reuse_vos::io::Mask::read_binary(&files[10]).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..100 {
        std::hint::black_box(reuse_vos::metrics::f_measure(
            &m.ids, 1, &m.ids, 1, 854, 480,
        ));
    }
    println!("f_measure {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
    let t = std::time::Instant::now();
    for _ in 0..100 {
        std::hint::black_box(reuse_vos::metrics::jaccard(&m.ids, 1, &m.ids, 1));
    }
    println!("jaccard {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
}

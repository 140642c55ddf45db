//! The JPEG decoder of the build, timed and dumped: `gps_ssl::dataset::decode_image` over every
//! `.jpg` of a folder. Built lean (zune-jpeg, `image`'s decoder) by default and with libjpeg-turbo
//! under `--features full` (gps-ssl's default features), to measure what the lean build's decoder
//! changes (docs/guide.md "As a dependency"):
//!
//!   cargo run --release --bin decode -- <jpeg folder> <repeats> <dump folder>
//!   cargo run --release --features full --bin decode -- <jpeg folder> <repeats> <dump folder>
//!
//! Prints the median over `repeats` passes of the time per image, and writes each decoded
//! image's bytes (`H×W×C` u8) to `<dump folder>/<name>.raw` for a byte comparison of the two.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, repeats, dump] = args.as_slice() else {
        return Err("usage: decode <jpeg folder> <repeats> <dump folder>".into());
    };
    let repeats: usize = repeats.parse()?;
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "jpeg"))
        .collect();
    files.sort();
    let bytes: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    std::fs::create_dir_all(dump)?;
    let mut per_image = Vec::with_capacity(repeats);
    for pass in 0..repeats.max(1) {
        let start = Instant::now();
        for (path, b) in files.iter().zip(&bytes) {
            let key = path.file_name().unwrap_or_default().to_string_lossy();
            let image = gps_ssl::dataset::decode_image(b, &key)?;
            if pass == 0 {
                std::fs::write(format!("{dump}/{key}.raw"), &image.data)?;
            }
        }
        per_image.push(start.elapsed().as_secs_f64() / files.len() as f64);
    }
    per_image.sort_by(f64::total_cmp);
    println!(
        "{} JPEGs, decoder {}: median {:.3} ms per image over {} passes (min {:.3})",
        files.len(),
        if cfg!(feature = "full") {
            "libjpeg-turbo"
        } else {
            "zune-jpeg"
        },
        per_image[per_image.len() / 2] * 1e3,
        per_image.len(),
        per_image[0] * 1e3
    );
    Ok(())
}

//! `gps-ssl inspect <source>`: count, image shapes, channels, label histogram, fingerprint.

use clap::Args;
use gps_ssl::dataset::{open_source, DataSource};
use std::collections::BTreeMap;

/// Arguments of `gps-ssl inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The dataset source: an IDX images file or prefix (`data/fashion-mnist/train`), a CIFAR
    /// `.bin` batch or directory, a `.parquet` file or directory, an image folder; or any of
    /// these prefixed with `idx:`, `cifar10:`, `cifar100:`, `parquet:`, `folder:`.
    pub source: String,
    /// How many samples (from the start) to decode for the shape summary.
    #[arg(long, default_value_t = 16)]
    pub decode: usize,
}

/// Runs `inspect`, printing a report on stdout.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let src = open_source(&args.source)?;
    println!("source:      {}", src.describe());
    println!("samples:     {}", src.len());
    let n = args.decode.min(src.len());
    let mut shapes: BTreeMap<(u32, u32, u8), usize> = BTreeMap::new();
    for i in 0..n {
        let s = src.get(i)?;
        *shapes
            .entry((s.image.height, s.image.width, s.image.channels))
            .or_default() += 1;
        if i < 3 {
            println!(
                "sample {i}:    key={} label={:?} {}x{}x{}",
                s.key, s.label, s.image.height, s.image.width, s.image.channels
            );
        }
    }
    let shape_list: Vec<String> = shapes
        .iter()
        .map(|((h, w, c), k)| format!("{h}x{w}x{c} ({k})"))
        .collect();
    println!("shapes (HxWxC, first {n}): {}", shape_list.join(", "));
    let channels: Vec<String> = shapes
        .keys()
        .map(|(_, _, c)| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    println!("channels:    {}", channels.join(", "));
    print_histogram(src.as_ref())?;
    println!("fingerprint: {}", src.fingerprint());
    Ok(())
}

fn print_histogram(src: &dyn DataSource) -> anyhow::Result<()> {
    let mut hist: BTreeMap<i64, usize> = BTreeMap::new();
    let mut unlabelled = 0usize;
    for i in 0..src.len() {
        match src.label(i)? {
            Some(l) => *hist.entry(l).or_default() += 1,
            None => unlabelled += 1,
        }
    }
    if hist.is_empty() {
        println!("labels:      none");
        return Ok(());
    }
    println!(
        "labels:      {} classes{}",
        hist.len(),
        if unlabelled > 0 {
            format!(", {unlabelled} unlabelled")
        } else {
            String::new()
        }
    );
    let names = src.class_names().unwrap_or_default();
    for (label, count) in &hist {
        let name = usize::try_from(*label).ok().and_then(|l| names.get(l));
        match name {
            Some(name) => println!("  {label:>6} {name:<16}: {count}"),
            None => println!("  {label:>6}: {count}"),
        }
    }
    Ok(())
}

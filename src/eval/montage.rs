//! The neighbour montage: sampled anchors, each followed by its nearest neighbours in prior
//! space, the quickest way to judge whether a prior suits a dataset before paying for training.
//!
//! ```text
//!  ┌──────┐   ┌──────┐ ┌──────┐ ┌──────┐
//!  │anchor│   │ nn 1 │ │ nn 2 │ │ nn 3 │ …     one row per sampled anchor
//!  └──────┘   └──────┘ └──────┘ └──────┘
//!   Shirt       Shirt    Coat     Shirt        labels, when the dataset has them
//! ```
//! The anchor's tile is outlined in dark grey; a neighbour's in green when its label is the
//! anchor's, in vermilion when it is not, in light grey when either label is unknown.
//!
//! ```no_run
//! use gps_ssl::dataset::open_source;
//! use gps_ssl::eval::Montage;
//! use gps_ssl::store::NeighbourTable;
//!
//! let data = open_source("data/fashion-mnist/train")?;
//! let table = NeighbourTable::read("runs/nn.parquet")?;
//! let layout = Montage::builder().rows(6).neighbours(5).build()?.write(
//!     std::path::Path::new("montage.png"),
//!     &table,
//!     data.as_ref(),
//! )?;
//! println!("{} of the shown neighbours share their anchor's label", layout.matches());
//! # Ok::<(), gps_ssl::Error>(())
//! ```

use super::figure::register_font;
use super::report::temp_path;
use crate::dataset::{DataSource, Image};
use crate::store::NeighbourTable;
use crate::{Error, Result};
use image::imageops::FilterType;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rand::SeedableRng;
use std::path::Path;

/// Anchors (rows) drawn when not set. See [`MontageBuilder::rows`].
pub const DEFAULT_MONTAGE_ROWS: usize = 8;
/// Neighbours shown per anchor when not set (fewer when the lists are shorter). See
/// [`MontageBuilder::neighbours`].
pub const DEFAULT_MONTAGE_NEIGHBOURS: usize = 8;
/// Side of a tile in pixels when not set. See [`MontageBuilder::tile`].
pub const DEFAULT_MONTAGE_TILE: u32 = 96;
/// Seed of the anchor sample when not set. See [`MontageBuilder::seed`].
pub const DEFAULT_MONTAGE_SEED: u64 = 0;

/// The resize filter of the tiles: bilinear ([`image::imageops::resize`] with
/// [`FilterType::Triangle`]), applied to the RGB image (grey images have their one channel
/// copied to three first).
pub const MONTAGE_FILTER: FilterType = FilterType::Triangle;

/// Outer margin of the picture, in pixels.
const MARGIN: u32 = 10;
/// Width of a tile's outline, in pixels (outside the tile).
const BORDER: u32 = 3;
/// Gap between two cells, in pixels.
const GAP: u32 = 6;
/// Extra gap between the anchor column and its neighbours, in pixels.
const ANCHOR_GAP: u32 = 14;
/// Height of the title line, in pixels.
const TITLE: u32 = 26;
/// Height of the label line under a tile, in pixels (0 when no label is known).
const LABEL: u32 = 17;

/// Outline of the anchor's tile.
pub const ANCHOR_COLOUR: [u8; 3] = [60, 60, 60];
/// Outline of a neighbour whose label is its anchor's (Okabe–Ito bluish green).
pub const MATCH_COLOUR: [u8; 3] = [0, 158, 115];
/// Outline of a neighbour whose label differs from its anchor's (Okabe–Ito vermilion).
pub const MISMATCH_COLOUR: [u8; 3] = [213, 94, 0];
/// Outline of a neighbour when its or its anchor's label is unknown.
pub const UNKNOWN_COLOUR: [u8; 3] = [190, 190, 190];

/// Builder of a [`Montage`]; every setter documents its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MontageBuilder {
    rows: usize,
    neighbours: usize,
    tile: u32,
    seed: u64,
}

impl Default for MontageBuilder {
    fn default() -> Self {
        MontageBuilder {
            rows: DEFAULT_MONTAGE_ROWS,
            neighbours: DEFAULT_MONTAGE_NEIGHBOURS,
            tile: DEFAULT_MONTAGE_TILE,
            seed: DEFAULT_MONTAGE_SEED,
        }
    }
}

impl MontageBuilder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Anchors drawn, one per row, 1–1000 (all the table's rows when it has fewer).
    /// Defaults to [`DEFAULT_MONTAGE_ROWS`].
    pub fn rows(mut self, rows: usize) -> Self {
        self.rows = rows;
        self
    }

    /// Neighbours shown after each anchor, nearest first, 1–100: the first this many of its
    /// list (of its entries inside the radius, when the table has one). Defaults to
    /// [`DEFAULT_MONTAGE_NEIGHBOURS`].
    pub fn neighbours(mut self, neighbours: usize) -> Self {
        self.neighbours = neighbours;
        self
    }

    /// Side of a tile in pixels, 16–512: each image is scaled to fit a `tile × tile` square,
    /// keeping its aspect ratio, and centred in it. Defaults to [`DEFAULT_MONTAGE_TILE`].
    pub fn tile(mut self, tile: u32) -> Self {
        self.tile = tile;
        self
    }

    /// Seed of the anchor sample: the same seed and table give the same anchors. Defaults to
    /// [`DEFAULT_MONTAGE_SEED`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Montage> {
        if !(1..=1000).contains(&self.rows) {
            return Err(Error::invalid(
                "montage rows",
                format!("{} (expected 1..=1000)", self.rows),
            ));
        }
        if !(1..=100).contains(&self.neighbours) {
            return Err(Error::invalid(
                "montage neighbours",
                format!("{} (expected 1..=100)", self.neighbours),
            ));
        }
        if !(16..=512).contains(&self.tile) {
            return Err(Error::invalid(
                "montage tile",
                format!("{} pixels (expected 16..=512)", self.tile),
            ));
        }
        Ok(Montage { config: self })
    }
}

/// Draws neighbour montages; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Montage {
    config: MontageBuilder,
}

/// One row of a montage: an anchor and the neighbours shown after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MontageRow {
    /// Dataset id of the anchor.
    pub anchor: u32,
    /// Dataset ids of the neighbours shown, nearest first.
    pub neighbours: Vec<u32>,
    /// Labels of the anchor (entry 0) and of each neighbour, when the dataset has them.
    pub labels: Vec<Option<i64>>,
}

impl MontageRow {
    /// Whether neighbour `j` (0-based) has its anchor's label; `None` when either is unknown.
    ///
    /// # Panics
    /// When `j >= neighbours.len()`.
    pub fn matches(&self, j: usize) -> Option<bool> {
        Some(self.labels[0]? == self.labels[j + 1]?)
    }
}

/// Where everything is in a montage picture.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MontageLayout {
    /// Picture width, in pixels.
    pub width: u32,
    /// Picture height, in pixels.
    pub height: u32,
    /// Side of a tile, in pixels.
    pub tile: u32,
    /// Whether a label line is drawn under the tiles (some label is known).
    pub labelled: bool,
    /// The rows, top to bottom.
    pub rows: Vec<MontageRow>,
}

impl MontageLayout {
    fn new(tile: u32, rows: Vec<MontageRow>) -> Self {
        let labelled = rows.iter().any(|r| r.labels.iter().any(Option::is_some));
        let columns = 1 + rows.iter().map(|r| r.neighbours.len()).max().unwrap_or(0) as u32;
        let (cell_w, cell_h) = Self::cell(tile, labelled);
        let n = rows.len() as u32;
        MontageLayout {
            width: 2 * MARGIN + columns * cell_w + (columns - 1) * GAP + ANCHOR_GAP,
            height: 2 * MARGIN + TITLE + n * cell_h + n.saturating_sub(1) * GAP,
            tile,
            labelled,
            rows,
        }
    }

    /// A cell: the tile, its outline and its label line.
    fn cell(tile: u32, labelled: bool) -> (u32, u32) {
        let h = tile + 2 * BORDER + if labelled { LABEL } else { 0 };
        (tile + 2 * BORDER, h)
    }

    /// The `tile × tile` square of row `row`, column `column` (0: the anchor, `j + 1`: its
    /// neighbour `j`), as `(x, y)` of its top-left pixel. An image fills it when square, and
    /// is centred in it otherwise.
    pub fn tile_origin(&self, row: usize, column: usize) -> (u32, u32) {
        let (cell_w, cell_h) = Self::cell(self.tile, self.labelled);
        let (row, column) = (row as u32, column as u32);
        let x = MARGIN + column * (cell_w + GAP) + if column > 0 { ANCHOR_GAP } else { 0 };
        let y = MARGIN + TITLE + row * (cell_h + GAP);
        (x + BORDER, y + BORDER)
    }

    /// Shown neighbours whose label is their anchor's.
    pub fn matches(&self) -> usize {
        self.count(true)
    }

    /// Shown neighbours whose label differs from their anchor's.
    pub fn mismatches(&self) -> usize {
        self.count(false)
    }

    fn count(&self, matching: bool) -> usize {
        self.rows
            .iter()
            .map(|r| {
                (0..r.neighbours.len())
                    .filter(|&j| r.matches(j) == Some(matching))
                    .count()
            })
            .sum()
    }
}

impl Montage {
    /// A builder with the defaults.
    pub fn builder() -> MontageBuilder {
        MontageBuilder::new()
    }

    /// Samples the anchors (seeded: rows of `table` drawn without replacement, shown in id
    /// order) and reads their labels from `source`.
    ///
    /// Errors with [`Error::Mismatch`] when `table` records another dataset's fingerprint than
    /// `source`'s, and [`Error::InvalidInput`] when the table is empty or names an id outside
    /// `source`.
    pub fn layout(&self, table: &NeighbourTable, source: &dyn DataSource) -> Result<MontageLayout> {
        if let Some(recorded) = table.fingerprint() {
            let fingerprint = source.fingerprint();
            if recorded != fingerprint {
                return Err(Error::mismatch(
                    format!(
                        "dataset fingerprint of the neighbour table vs {}",
                        source.describe()
                    ),
                    recorded,
                    fingerprint,
                ));
            }
        }
        let n = table.ids().len();
        if n == 0 {
            return Err(Error::invalid("neighbour table", "it has no rows to draw"));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.config.seed);
        let mut picked = rand::seq::index::sample(&mut rng, n, self.config.rows.min(n)).into_vec();
        picked.sort_unstable();
        let label = |id: u32| -> Result<Option<i64>> {
            if id as usize >= source.len() {
                return Err(Error::invalid(
                    "neighbour table",
                    format!(
                        "it names id {id}, outside {} ({} samples)",
                        source.describe(),
                        source.len()
                    ),
                ));
            }
            source.label(id as usize)
        };
        let rows = picked
            .into_iter()
            .map(|r| {
                let anchor = table.ids()[r];
                let valid = table.lists.valid(r);
                let neighbours = valid[..valid.len().min(self.config.neighbours)].to_vec();
                let labels = std::iter::once(anchor)
                    .chain(neighbours.iter().copied())
                    .map(&label)
                    .collect::<Result<Vec<_>>>()?;
                Ok(MontageRow {
                    anchor,
                    neighbours,
                    labels,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MontageLayout::new(self.config.tile, rows))
    }

    /// Draws the montage of `table` over the images of `source`: an RGB [`Image`] of
    /// `layout.width × layout.height`, and its layout.
    pub fn render(
        &self,
        table: &NeighbourTable,
        source: &dyn DataSource,
    ) -> Result<(MontageLayout, Image)> {
        let layout = self.layout(table, source)?;
        let (w, h) = (layout.width, layout.height);
        let mut buf = vec![255u8; w as usize * h as usize * 3];
        let names = source.class_names();
        for (r, row) in layout.rows.iter().enumerate() {
            let ids = std::iter::once(row.anchor).chain(row.neighbours.iter().copied());
            for (c, id) in ids.enumerate() {
                let (x, y) = layout.tile_origin(r, c);
                let tile = tile_image(&source.get(id as usize)?.image, layout.tile);
                let (ox, oy) = (
                    x + (layout.tile - tile.width()) / 2,
                    y + (layout.tile - tile.height()) / 2,
                );
                for (px, py, p) in tile.enumerate_pixels() {
                    put(&mut buf, w, ox + px, oy + py, p.0);
                }
                let colour = match c {
                    0 => ANCHOR_COLOUR,
                    _ => match row.matches(c - 1) {
                        Some(true) => MATCH_COLOUR,
                        Some(false) => MISMATCH_COLOUR,
                        None => UNKNOWN_COLOUR,
                    },
                };
                outline(&mut buf, w, (x, y), layout.tile, colour);
            }
        }
        draw_text(&mut buf, &layout, names.as_deref())
            .map_err(|e| Error::invalid("montage", format!("cannot draw its text: {e}")))?;
        Ok((layout, Image::new(w, h, 3, buf)))
    }

    /// [`render`](Self::render)s the montage and writes it to `path` as PNG (through a
    /// temporary file and a rename).
    pub fn write(
        &self,
        path: &Path,
        table: &NeighbourTable,
        source: &dyn DataSource,
    ) -> Result<MontageLayout> {
        let (layout, picture) = self.render(table, source)?;
        let tmp = temp_path(path);
        image::save_buffer_with_format(
            &tmp,
            &picture.data,
            picture.width,
            picture.height,
            image::ExtendedColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::format(&tmp, format!("cannot encode PNG: {e}")))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Ok(layout)
    }
}

/// `image` scaled by [`MONTAGE_FILTER`] to fit a `tile × tile` square, keeping its aspect
/// ratio (each side at least one pixel), as RGB.
pub fn tile_image(image: &Image, tile: u32) -> image::RgbImage {
    let rgb: Vec<u8> = match image.channels {
        1 => image.data.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => image.data.clone(),
    };
    let Some(rgb) = image::RgbImage::from_raw(image.width, image.height, rgb) else {
        // `Image` guarantees `H×W×C` bytes with C ∈ {1, 3}; an empty tile otherwise.
        return image::RgbImage::new(tile, tile);
    };
    let long = image.width.max(image.height).max(1);
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(tile) + u64::from(long) / 2) / u64::from(long))
            .clamp(1, u64::from(tile)) as u32
    };
    image::imageops::resize(
        &rgb,
        scale(image.width),
        scale(image.height),
        MONTAGE_FILTER,
    )
}

fn put(buf: &mut [u8], width: u32, x: u32, y: u32, p: [u8; 3]) {
    let i = (y as usize * width as usize + x as usize) * 3;
    if let Some(px) = buf.get_mut(i..i + 3) {
        px.copy_from_slice(&p);
    }
}

/// A [`BORDER`]-pixel frame around the `tile × tile` square at `origin`.
fn outline(buf: &mut [u8], width: u32, origin: (u32, u32), tile: u32, colour: [u8; 3]) {
    let (x0, y0) = (origin.0 - BORDER, origin.1 - BORDER);
    let side = tile + 2 * BORDER;
    for dy in 0..side {
        for dx in 0..side {
            let inside =
                (BORDER..BORDER + tile).contains(&dx) && (BORDER..BORDER + tile).contains(&dy);
            if !inside {
                put(buf, width, x0 + dx, y0 + dy, colour);
            }
        }
    }
}

/// The title line, and each tile's label centred under it (shortened with `…` to the tile's
/// width).
fn draw_text(
    buf: &mut [u8],
    layout: &MontageLayout,
    names: Option<&[String]>,
) -> std::result::Result<(), String> {
    register_font().map_err(|e| e.to_string())?;
    let root = BitMapBackend::with_buffer(buf, (layout.width, layout.height)).into_drawing_area();
    let k = layout
        .rows
        .iter()
        .map(|r| r.neighbours.len())
        .max()
        .unwrap_or(0);
    let title_style =
        TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    // The longest title that fits the picture.
    let key = if layout.labelled {
        "   (green: same label, vermilion: another)"
    } else {
        ""
    };
    let candidates = [
        format!("anchor  |  its {k} nearest neighbours in prior space{key}"),
        format!("anchor | {k} nearest in prior space{key}"),
        format!("anchor | {k} nearest{key}"),
    ];
    let room = layout.width - 2 * MARGIN;
    let title = candidates
        .iter()
        .find(|t| {
            root.estimate_text_size(t, &title_style)
                .is_ok_and(|(w, _)| w <= room)
        })
        .cloned()
        .unwrap_or_else(|| fit(&root, &candidates[2], &title_style, room));
    root.draw(&Text::new(
        title,
        (MARGIN as i32, (MARGIN + TITLE / 2 - 2) as i32),
        title_style,
    ))
    .map_err(|e| e.to_string())?;
    if !layout.labelled {
        return root.present().map_err(|e| e.to_string());
    }
    let style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (r, row) in layout.rows.iter().enumerate() {
        for (c, label) in row.labels.iter().enumerate() {
            let Some(label) = label else { continue };
            let text = names
                .and_then(|n| usize::try_from(*label).ok().and_then(|i| n.get(i)))
                .cloned()
                .unwrap_or_else(|| format!("class {label}"));
            let text = fit(&root, &text, &style, layout.tile + 2 * BORDER + GAP);
            let (x, y) = layout.tile_origin(r, c);
            root.draw(&Text::new(
                text,
                (
                    (x + layout.tile / 2) as i32,
                    (y + layout.tile + BORDER + 2) as i32,
                ),
                style.clone(),
            ))
            .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

/// `text`, shortened with a trailing `…` until it is at most `width` pixels wide in `style`.
fn fit(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    text: &str,
    style: &TextStyle<'_>,
    width: u32,
) -> String {
    let wide = |s: &str| {
        area.estimate_text_size(s, style)
            .map_or(true, |(w, _)| w > width)
    };
    if !wide(text) {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let short: String = chars.iter().collect::<String>() + "…";
        if !wide(&short) {
            return short;
        }
    }
    String::new()
}

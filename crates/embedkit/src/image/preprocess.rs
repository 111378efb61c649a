//! The preprocessing a model's `preprocessor_config.json` asks for, step for step as
//! fastembed builds it from the same file: resize (shortest edge, exact size, or
//! ConvNeXt's crop-percentage rule), pad to square (JinaCLIP), center crop, rescale,
//! normalize. Pixels stay 8-bit through the geometric steps, as in Pillow.

use std::path::Path;

use image::RgbImage;
use ndarray::Array3;
use serde_json::Value;

use super::resample::{resize, Filter};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Size {
    /// The shorter edge becomes this, the longer keeps the aspect ratio.
    Shortest(u32),
    /// Exactly (height, width).
    Exact(u32, u32),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Resize(Size, Filter),
    /// The longer edge becomes this, both edges rounded up to even (Idefics3).
    ResizeLongestEdge(u32, Filter),
    PadToSquare {
        size: u32,
        fill: [u8; 3],
    },
    CenterCrop {
        height: u32,
        width: u32,
    },
}

/// Idefics3's tiling: images larger than `max_size` are resized up to multiples of it
/// and cut into tiles plus a global view; others are resized to a square (or kept).
#[derive(Debug, Clone, PartialEq)]
struct Tiling {
    max_size: u32,
    filter: Filter,
    split: bool,
}

/// Tiles one image may be cut into. Idefics3-style models cut into 4×4 or so; a
/// configuration allowing more asks for images of gigabytes and prompts to match.
const MAX_TILES: usize = 1024;

/// An image's tiles and their grid `(rows, cols)`.
pub type Tiles = (Vec<Array3<f32>>, (usize, usize));

/// A model's image preprocessing.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    steps: Vec<Step>,
    tiling: Option<Tiling>,
    rescale: Option<f64>,
    normalize: Option<(Vec<f32>, Vec<f32>)>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidModel {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// A mean or std: one number for every channel, or one per channel.
fn channels(v: &Value) -> Option<Vec<f32>> {
    match v {
        Value::Number(n) => n.as_f64().map(|x| vec![x as f32; 3]),
        Value::Array(items) => {
            let xs: Option<Vec<f32>> = items.iter().map(|x| x.as_f64().map(|x| x as f32)).collect();
            xs.filter(|xs| xs.len() == 3)
        }
        _ => None,
    }
}

fn filter_of(config: &Value, path: &Path) -> Result<Filter> {
    match config.get("resample") {
        None | Some(Value::Null) => Ok(Filter::Bicubic),
        Some(v) => {
            let code = v
                .as_i64()
                .ok_or_else(|| invalid(path, "resample must be Pillow's filter number"))?;
            Filter::from_code(code)
        }
    }
}

impl Preprocessor {
    /// From `<dir>/preprocessor_config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("preprocessor_config.json");
        if !path.is_file() {
            return Err(Error::MissingFile {
                file: "preprocessor_config.json".into(),
                dir: dir.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let config: Value = serde_json::from_str(&text)
            .map_err(|e| invalid(&path, format!("not valid JSON: {e}")))?;
        Self::from_config(&config, &path)
    }

    pub fn from_config(config: &Value, path: &Path) -> Result<Self> {
        let mode = config
            .get("image_processor_type")
            .and_then(Value::as_str)
            .unwrap_or("CLIPImageProcessor");
        let flag =
            |key: &str, default: bool| config.get(key).and_then(Value::as_bool).unwrap_or(default);
        let mut steps = Vec::new();
        let mut tiling = None;
        match mode {
            "CLIPImageProcessor" | "SiglipImageProcessor" => {
                if flag("do_resize", false) {
                    let size = &config["size"];
                    let size = if let Some(n) = size.get("shortest_edge").and_then(as_u32) {
                        Size::Shortest(n)
                    } else if let (Some(h), Some(w)) = (
                        size.get("height").and_then(as_u32),
                        size.get("width").and_then(as_u32),
                    ) {
                        Size::Exact(h, w)
                    } else {
                        return Err(invalid(
                            path,
                            "size must contain either 'shortest_edge' or 'height' and 'width'",
                        ));
                    };
                    steps.push(Step::Resize(size, filter_of(config, path)?));
                }
                if flag("do_center_crop", false) {
                    let crop = &config["crop_size"];
                    let (height, width) = if let Some(n) = as_u32(crop) {
                        (n, n)
                    } else if let (Some(h), Some(w)) = (
                        crop.get("height").and_then(as_u32),
                        crop.get("width").and_then(as_u32),
                    ) {
                        (h, w)
                    } else {
                        return Err(invalid(path, format!("invalid crop size: {crop}")));
                    };
                    steps.push(Step::CenterCrop { height, width });
                }
            }
            "ConvNextFeatureExtractor" => {
                if flag("do_resize", true) {
                    let edge = config
                        .get("size")
                        .and_then(|s| s.get("shortest_edge"))
                        .and_then(as_u32)
                        .ok_or_else(|| invalid(path, "size must contain 'shortest_edge'"))?;
                    let crop_pct = config
                        .get("crop_pct")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.875);
                    let filter = filter_of(config, path)?;
                    if edge < 384 {
                        let resized = (f64::from(edge) / crop_pct) as u32;
                        if resized == 0 {
                            return Err(invalid(path, "crop_pct gives an empty resize"));
                        }
                        steps.push(Step::Resize(Size::Shortest(resized), filter));
                        steps.push(Step::CenterCrop {
                            height: edge,
                            width: edge,
                        });
                    } else {
                        steps.push(Step::Resize(Size::Exact(edge, edge), filter));
                    }
                }
            }
            "JinaCLIPImageProcessor" => {
                let filter = match config.get("interpolation") {
                    Some(Value::String(s)) => Filter::from_name(s)?,
                    Some(Value::Number(n)) => Filter::from_code(n.as_i64().unwrap_or(-1))?,
                    _ => Filter::Bicubic,
                };
                if let Some(size) = config.get("size") {
                    let size = as_u32(size)
                        .ok_or_else(|| invalid(path, "size must be a positive integer"))?;
                    let mode = config
                        .get("resize_mode")
                        .and_then(Value::as_str)
                        .unwrap_or("shortest");
                    if mode == "shortest" {
                        steps.push(Step::Resize(Size::Shortest(size), filter));
                    }
                    let fill = match config.get("fill_color") {
                        None | Some(Value::Null) => [0, 0, 0],
                        // Pillow reads an integer colour as packed 0xBBGGRR.
                        Some(Value::Number(n)) => {
                            let v = n.as_u64().unwrap_or(0);
                            [v as u8, (v >> 8) as u8, (v >> 16) as u8]
                        }
                        Some(Value::Array(c)) if c.len() >= 3 => {
                            let ch = |i: usize| c[i].as_u64().unwrap_or(0).min(255) as u8;
                            [ch(0), ch(1), ch(2)]
                        }
                        Some(other) => {
                            return Err(invalid(path, format!("invalid fill_color {other}")))
                        }
                    };
                    steps.push(Step::PadToSquare { size, fill });
                }
            }
            "Idefics3ImageProcessor" => {
                let filter = match config.get("resample") {
                    None | Some(Value::Null) => Filter::Lanczos,
                    Some(v) => Filter::from_code(v.as_i64().ok_or_else(|| {
                        invalid(path, "resample must be Pillow's filter number")
                    })?)?,
                };
                if flag("do_resize", false) {
                    let edge = config
                        .get("size")
                        .and_then(|s| s.get("longest_edge"))
                        .and_then(as_u32)
                        .ok_or_else(|| {
                            invalid(
                                path,
                                "size must contain 'longest_edge' for Idefics3ImageProcessor",
                            )
                        })?;
                    steps.push(Step::ResizeLongestEdge(edge, filter));
                }
                let max_size = config
                    .get("max_image_size")
                    .and_then(|s| s.get("longest_edge"))
                    .and_then(as_u32)
                    .unwrap_or(512);
                tiling = Some(Tiling {
                    max_size,
                    filter,
                    split: flag("do_image_splitting", false),
                });
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "image preprocessor {other:?} (in {})",
                    path.display()
                )))
            }
        }
        let rescale = if flag("do_rescale", true) {
            Some(
                config
                    .get("rescale_factor")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0 / 255.0),
            )
        } else {
            None
        };
        let normalize = if flag("do_normalize", false) {
            let mean = config.get("image_mean").and_then(channels);
            let std = config.get("image_std").and_then(channels);
            match (mean, std) {
                (Some(m), Some(s)) => Some((m, s)),
                _ => {
                    return Err(invalid(
                        path,
                        "image_mean and image_std must give 3 channels",
                    ))
                }
            }
        } else if let (Some(m), Some(s)) = (
            config.get("mean").and_then(channels),
            config.get("std").and_then(channels),
        ) {
            Some((m, s))
        } else {
            None
        };
        let pre = Preprocessor {
            steps,
            tiling,
            rescale,
            normalize,
        };
        if let Some((rows, cols)) = pre.tile_grid_at_most() {
            if rows.saturating_mul(cols) > MAX_TILES {
                return Err(invalid(
                    path,
                    format!(
                        "size and max_image_size cut an image into up to {rows}×{cols} tiles; \
                         at most {MAX_TILES} are taken"
                    ),
                ));
            }
        }
        Ok(pre)
    }

    /// The model input of one image, `[3, height, width]`.
    pub fn apply(&self, image: RgbImage) -> Result<Array3<f32>> {
        if self.tiling.is_some() {
            return Err(Error::Unsupported(
                "this preprocessor cuts images into tiles; use apply_tiles".into(),
            ));
        }
        self.apply_inner(image)
    }

    /// The largest tile grid [`Preprocessor::apply_tiles`] can give, `(0, 0)` when no
    /// image is split, or `None` when no step bounds an image's size (a tile count, and
    /// so an answer's size, known before any image is decoded).
    pub fn tile_grid_at_most(&self) -> Option<(usize, usize)> {
        let Some(tiling) = self.tiling.as_ref().filter(|t| t.split) else {
            return Some((0, 0));
        };
        // The longest edge after the geometric steps (as `geometric` runs them).
        let mut edge: Option<u32> = None;
        for step in &self.steps {
            edge = match *step {
                Step::Resize(Size::Exact(h, w), _) => Some(h.max(w)),
                Step::Resize(Size::Shortest(_), _) => None,
                // Rounded up to even, as the step rounds.
                Step::ResizeLongestEdge(e, _) => Some(e.saturating_add(e % 2)),
                Step::PadToSquare { size, .. } => Some(size),
                Step::CenterCrop { .. } => edge,
            };
        }
        let n = edge?.div_ceil(tiling.max_size.max(1)) as usize;
        Some(if n > 1 { (n, n) } else { (0, 0) })
    }

    /// The tiles of one image (Idefics3: the grid's tiles row by row, then the global
    /// view) and the grid `(rows, cols)`, `(0, 0)` when the image is not split. Without
    /// tiling, the one image of [`Self::apply`].
    pub fn apply_tiles(&self, image: RgbImage) -> Result<Tiles> {
        let Some(tiling) = &self.tiling else {
            return Ok((vec![self.apply_inner(image)?], (0, 0)));
        };
        let image = self.geometric(image)?;
        let max = tiling.max_size;
        let (frames, grid) = if tiling.split {
            // Both edges up to multiples of max_size, keeping the aspect ratio roughly.
            let (w, h) = (image.width(), image.height());
            let aspect = f64::from(w) / f64::from(h);
            let up = |v: u32| v.div_ceil(max) * max;
            let (nw, nh) = if w >= h {
                let nw = up(w);
                (nw, up((f64::from(nw) / aspect) as u32))
            } else {
                let nh = up(h);
                (up((f64::from(nh) * aspect) as u32), nh)
            };
            let image = resize(&image, nw.max(1), nh.max(1), tiling.filter)?;
            let (w, h) = (image.width(), image.height());
            if w > max || h > max {
                let (rows, cols) = (h.div_ceil(max), w.div_ceil(max));
                let (th, tw) = (h.div_ceil(rows), w.div_ceil(cols));
                let mut frames = Vec::new();
                for r in 0..rows {
                    for c in 0..cols {
                        let (x0, y0) = (c * tw, r * th);
                        let (x1, y1) = ((x0 + tw).min(w), (y0 + th).min(h));
                        let tile =
                            image::imageops::crop_imm(&image, x0, y0, x1 - x0, y1 - y0).to_image();
                        frames.push(tile);
                    }
                }
                frames.push(resize(&image, max, max, tiling.filter)?);
                (frames, (rows as usize, cols as usize))
            } else {
                (vec![image], (0, 0))
            }
        } else {
            (vec![resize(&image, max, max, tiling.filter)?], (0, 0))
        };
        let tiles = frames
            .into_iter()
            .map(|f| Ok(self.finish(to_chw(&f), false)))
            .collect::<Result<Vec<_>>>()?;
        Ok((tiles, grid))
    }

    /// The resizes, padding and crops, on 8-bit pixels.
    fn geometric(&self, image: RgbImage) -> Result<RgbImage> {
        let mut image = image;
        for step in &self.steps {
            if let Step::CenterCrop { .. } = step {
                continue;
            }
            image = self.geometric_step(step, image)?;
        }
        Ok(image)
    }

    fn apply_inner(&self, image: RgbImage) -> Result<Array3<f32>> {
        let mut image = image;
        let mut array: Option<(Array3<f32>, bool)> = None;
        for step in &self.steps {
            match step {
                Step::CenterCrop { height, width } => {
                    array = Some(center_crop(&image, *height, *width));
                }
                other => image = self.geometric_step(other, image)?,
            }
        }
        // `padded`: the crop went past the edges, which makes numpy switch to float32.
        let (x, padded) = array.unwrap_or_else(|| (to_chw(&image), false));
        Ok(self.finish(x, padded))
    }

    fn geometric_step(&self, step: &Step, image: RgbImage) -> Result<RgbImage> {
        Ok(match step {
            Step::Resize(size, filter) => {
                let (w, h) = (image.width(), image.height());
                let (nw, nh) = match *size {
                    Size::Exact(h, w) => (w, h),
                    Size::Shortest(s) => {
                        let (short, long) = if w <= h { (w, h) } else { (h, w) };
                        let new_long = (f64::from(s) * f64::from(long) / f64::from(short)) as u32;
                        if w <= h {
                            (s, new_long)
                        } else {
                            (new_long, s)
                        }
                    }
                };
                resize(&image, nw, nh, *filter)?
            }
            Step::ResizeLongestEdge(edge, filter) => {
                let (w, h) = (image.width(), image.height());
                let aspect = f64::from(w) / f64::from(h);
                let (mut nw, mut nh) = if w >= h {
                    (*edge, (f64::from(*edge) / aspect) as u32)
                } else {
                    ((f64::from(*edge) * aspect) as u32, *edge)
                };
                nh += nh % 2;
                nw += nw % 2;
                resize(&image, nw.max(1), nh.max(1), *filter)?
            }
            Step::PadToSquare { size, fill } => pad_to_square(&image, *size, *fill),
            Step::CenterCrop { .. } => image,
        })
    }

    /// Rescale and normalize, in numpy's float types: an 8-bit image is multiplied in
    /// f64, a zero-padded (float32) one in f32.
    fn finish(&self, mut x: Array3<f32>, padded: bool) -> Array3<f32> {
        if let Some(scale) = self.rescale {
            if padded {
                let s = scale as f32;
                x.mapv_inplace(|v| v * s);
            } else {
                x.mapv_inplace(|v| (f64::from(v) * scale) as f32);
            }
        }
        if let Some((mean, std)) = &self.normalize {
            for (c, mut plane) in x.outer_iter_mut().enumerate() {
                let (m, s) = (mean[c], std[c]);
                plane.mapv_inplace(|v| (v - m) / s);
            }
        }
        x
    }
}

fn to_chw(image: &RgbImage) -> Array3<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw = image.as_raw();
    Array3::from_shape_fn((3, h, w), |(c, y, x)| f32::from(raw[(y * w + x) * 3 + c]))
}

/// fastembed's `center_crop`: the centered window, zero-padded where the image is
/// smaller (the padding offset rounded up, the crop offset down).
fn center_crop(image: &RgbImage, height: u32, width: u32) -> (Array3<f32>, bool) {
    let (ow, oh) = (i64::from(image.width()), i64::from(image.height()));
    let (ch, cw) = (i64::from(height), i64::from(width));
    let mut top = (oh - ch).div_euclid(2);
    let mut left = (ow - cw).div_euclid(2);
    let full = to_chw(image);
    let u = |v: i64| v as usize;
    if top >= 0 && left >= 0 && top + ch <= oh && left + cw <= ow {
        let crop = full
            .slice(ndarray::s![.., u(top)..u(top + ch), u(left)..u(left + cw)])
            .to_owned();
        return (crop, false);
    }
    let nh = ch.max(oh);
    let nw = cw.max(ow);
    let top_pad = (nh - oh + 1) / 2;
    let left_pad = (nw - ow + 1) / 2;
    let mut canvas = Array3::<f32>::zeros((3, nh as usize, nw as usize));
    canvas
        .slice_mut(ndarray::s![
            ..,
            u(top_pad)..u(top_pad + oh),
            u(left_pad)..u(left_pad + ow)
        ])
        .assign(&full);
    top += top_pad;
    left += left_pad;
    let (y0, y1) = (top.max(0), (top + ch).min(nh));
    let (x0, x1) = (left.max(0), (left + cw).min(nw));
    (
        canvas
            .slice(ndarray::s![.., u(y0)..u(y1), u(x0)..u(x1)])
            .to_owned(),
        true,
    )
}

/// JinaCLIP's square canvas: edges longer than `size` are cropped around the center
/// (offsets rounded half to even, as torchvision), the image pasted at the top left of
/// a `size`×`size` canvas of `fill`.
fn pad_to_square(image: &RgbImage, size: u32, fill: [u8; 3]) -> RgbImage {
    let (w, h) = (image.width(), image.height());
    let left = if w > size {
        ((f64::from(w - size)) / 2.0).round_ties_even() as u32
    } else {
        0
    };
    let top = if h > size {
        ((f64::from(h - size)) / 2.0).round_ties_even() as u32
    } else {
        0
    };
    let mut canvas = RgbImage::from_pixel(size, size, image::Rgb(fill));
    let (cw, ch) = (w.min(size), h.min(size));
    for y in 0..ch {
        for x in 0..cw {
            canvas.put_pixel(x, y, *image.get_pixel(left + x, top + y));
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn idefics3(longest: u64, tile: u64, split: bool) -> Result<Preprocessor> {
        let config = json!({
            "image_processor_type": "Idefics3ImageProcessor",
            "do_resize": true,
            "size": {"longest_edge": longest},
            "max_image_size": {"longest_edge": tile},
            "do_image_splitting": split,
        });
        Preprocessor::from_config(&config, Path::new("preprocessor_config.json"))
    }

    /// The bound matches the grid `apply_tiles` cuts the largest images into: a square,
    /// a long strip, an odd edge (rounded up to even), and no split at all.
    #[test]
    fn the_tile_grid_bound_is_the_largest_grid_cut() {
        for (longest, tile, split, want) in [
            (160, 64, true, (3, 3)),
            (128, 64, true, (2, 2)),
            (129, 64, true, (3, 3)),
            (64, 64, true, (0, 0)),
            (160, 64, false, (0, 0)),
        ] {
            let p = idefics3(longest, tile, split).unwrap();
            assert_eq!(
                p.tile_grid_at_most(),
                Some(want),
                "{longest}/{tile}/{split}"
            );
            let most = [(1000, 1000), (4000, 100), (100, 4000), (1, 1), (333, 777)]
                .into_iter()
                .map(|(w, h)| p.apply_tiles(RgbImage::new(w, h)).unwrap().1)
                .max()
                .unwrap();
            assert_eq!(most, want, "{longest}/{tile}/{split}");
        }
    }

    /// A configuration that would cut an image into millions of tiles is refused at load.
    #[test]
    fn a_tile_grid_beyond_reason_is_refused() {
        let e = idefics3(1 << 20, 1, true).unwrap_err().to_string();
        assert!(e.contains("tiles"), "{e}");
        assert!(idefics3(2048, 64, true).is_ok());
    }
}

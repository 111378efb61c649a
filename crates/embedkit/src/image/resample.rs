//! Pillow's `Image.resize` for 8-bit RGB images, to the bit: separable convolution with
//! the filter's support widened by the scale, weights normalized per output pixel, then
//! turned into 22-bit fixed point; a horizontal pass over the rows the vertical pass
//! needs, then a vertical pass, each rounding half up and clamping to 0..=255.
//!
//! Hand-written because the image crates resample differently (float weights, other
//! support or rounding), and embeddings must see the pixels Pillow gives fastembed.

use image::RgbImage;

use crate::error::{Error, Result};

/// Pillow's resampling filters (`Image.Resampling`), by their numbers in configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Box,
    Bilinear,
    Hamming,
    Bicubic,
    Lanczos,
}

impl Filter {
    /// From Pillow's integer code (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box,
    /// 5 hamming).
    pub fn from_code(code: i64) -> Result<Self> {
        Ok(match code {
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            0 => {
                return Err(Error::Unsupported(
                    "nearest-neighbour resampling (0) is not supported".into(),
                ))
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown resampling filter {other}"
                )))
            }
        })
    }

    /// From a name (`"bicubic"`, ...), as JinaCLIP's config gives it.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "lanczos" => Filter::Lanczos,
            "bilinear" => Filter::Bilinear,
            "bicubic" => Filter::Bicubic,
            "box" => Filter::Box,
            "hamming" => Filter::Hamming,
            "nearest" => return Filter::from_code(0),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown interpolation method {other:?}"
                )))
            }
        })
    }

    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    x.sin() / x * (0.54 + 0.46 * x.cos())
                }
            }
            Filter::Bicubic => {
                // Keys' cubic with a = -0.5.
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if -3.0 < x && x < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: the first input pixel and the fixed-point weights of the window.
struct Coefficients {
    ksize: usize,
    /// (first, count) per output pixel.
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut window = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C casts truncate toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin).min(ksize);
        let mut total = 0.0;
        for (x, w) in window.iter_mut().enumerate().take(count) {
            *w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            total += *w;
        }
        for x in 0..count {
            let w = if total != 0.0 {
                window[x] / total
            } else {
                window[x]
            };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[xx * ksize + x] = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, count));
    }
    Coefficients {
        ksize,
        bounds,
        weights,
    }
}

fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// One horizontal pass: `rows` rows of `src` (width `in_w`) from row `first`.
fn horizontal(src: &[u8], in_w: usize, first: usize, rows: usize, c: &Coefficients) -> Vec<u8> {
    let out_w = c.bounds.len();
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; rows * out_w * 3];
    for y in 0..rows {
        let line = &src[(y + first) * in_w * 3..(y + first + 1) * in_w * 3];
        for (xx, &(xmin, count)) in c.bounds.iter().enumerate() {
            let k = &c.weights[xx * c.ksize..xx * c.ksize + count];
            let mut ss = [half; 3];
            for (x, &w) in k.iter().enumerate() {
                let p = (xmin + x) * 3;
                for ch in 0..3 {
                    ss[ch] += i32::from(line[p + ch]) * w;
                }
            }
            for ch in 0..3 {
                out[(y * out_w + xx) * 3 + ch] = clip8(ss[ch]);
            }
        }
    }
    out
}

/// One vertical pass over an image of width `w`.
fn vertical(src: &[u8], w: usize, c: &Coefficients) -> Vec<u8> {
    let out_h = c.bounds.len();
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; out_h * w * 3];
    for (yy, &(ymin, count)) in c.bounds.iter().enumerate() {
        let k = &c.weights[yy * c.ksize..yy * c.ksize + count];
        for xx in 0..w {
            let mut ss = [half; 3];
            for (y, &wt) in k.iter().enumerate() {
                let p = ((ymin + y) * w + xx) * 3;
                for ch in 0..3 {
                    ss[ch] += i32::from(src[p + ch]) * wt;
                }
            }
            for ch in 0..3 {
                out[(yy * w + xx) * 3 + ch] = clip8(ss[ch]);
            }
        }
    }
    out
}

/// `image.resize((width, height), filter)` for an RGB image.
pub fn resize(img: &RgbImage, width: u32, height: u32, filter: Filter) -> Result<RgbImage> {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if out_w == 0 || out_h == 0 || in_w == 0 || in_h == 0 {
        return Err(Error::InvalidArgument(format!(
            "cannot resize a {in_w}x{in_h} image to {out_w}x{out_h}"
        )));
    }
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let horiz = coefficients(in_w, out_w, filter);
    let mut vert = coefficients(in_h, out_h, filter);
    let src = img.as_raw();
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice
    // as many pixels as the width; the rounding between passes makes the order matter.
    let (dh, dw) = (in_h as i64 - out_h as i64, in_w as i64 - out_w as i64);
    let horizontal_first = !(dh > 0 && dh > dw * 2);
    let pixels = if horizontal_first {
        let tmp = if need_h {
            // Only the rows the vertical pass reads.
            let first = vert.bounds[0].0;
            let last = vert.bounds[out_h - 1].0 + vert.bounds[out_h - 1].1;
            for b in &mut vert.bounds {
                b.0 -= first;
            }
            horizontal(src, in_w, first, last - first, &horiz)
        } else {
            src.clone()
        };
        if need_v {
            vertical(&tmp, out_w, &vert)
        } else {
            tmp
        }
    } else {
        let tmp = if need_v {
            vertical(src, in_w, &vert)
        } else {
            src.clone()
        };
        if need_h {
            horizontal(&tmp, in_w, 0, out_h, &horiz)
        } else {
            tmp
        }
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, pixels)
        .ok_or_else(|| Error::InvalidArgument("resize produced a buffer of the wrong size".into()))
}

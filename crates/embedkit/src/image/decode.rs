//! Image inputs decoded and converted to 8-bit RGB as Pillow's `Image.open(...)` then
//! `convert("RGB")` gives them to fastembed: grayscale replicated to three channels,
//! alpha dropped (not composited), palettes looked up, 16-bit grayscale clamped to 255
//! and other 16-bit samples cut to their high byte, the first frame of an animation, no
//! EXIF rotation (Pillow does not apply it). JPEGs go through libjpeg-turbo's decoder
//! (via `mozjpeg`), as in Pillow.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageReader, RgbImage};

use crate::error::{Error, Result};

/// One image to embed.
#[derive(Debug, Clone)]
pub enum ImageInput {
    /// A file: PNG, JPEG, WebP or GIF (first frame).
    Path(PathBuf),
    /// The bytes of such a file.
    Bytes(Vec<u8>),
    /// An image decoded already.
    Image(DynamicImage),
}

impl From<PathBuf> for ImageInput {
    fn from(p: PathBuf) -> Self {
        ImageInput::Path(p)
    }
}

impl From<&Path> for ImageInput {
    fn from(p: &Path) -> Self {
        ImageInput::Path(p.to_path_buf())
    }
}

impl From<&str> for ImageInput {
    fn from(p: &str) -> Self {
        ImageInput::Path(PathBuf::from(p))
    }
}

impl From<Vec<u8>> for ImageInput {
    fn from(b: Vec<u8>) -> Self {
        ImageInput::Bytes(b)
    }
}

impl From<DynamicImage> for ImageInput {
    fn from(i: DynamicImage) -> Self {
        ImageInput::Image(i)
    }
}

/// Largest decoded image accepted, in pixels (a decompression bomb guard, as Pillow's
/// `MAX_IMAGE_PIXELS` errors at twice its 89.5 Mpx default).
pub const MAX_PIXELS: u64 = 178_956_970;

fn decode_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Image {
        image: what.to_string(),
        reason: e.to_string(),
        input: None,
    }
}

/// Decodes an input to RGB as fastembed sees it.
pub fn to_rgb(input: &ImageInput) -> Result<RgbImage> {
    let image = match input {
        ImageInput::Path(p) => {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            decode_bytes(&bytes, &p.display().to_string())?
        }
        ImageInput::Bytes(b) => decode_bytes(b, "from bytes")?,
        ImageInput::Image(i) => i.clone(),
    };
    Ok(rgb_like_pillow(image))
}

fn decode_bytes(bytes: &[u8], what: &str) -> Result<DynamicImage> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return decode_jpeg(bytes, what).map(DynamicImage::ImageRgb8);
    }
    decode(ImageReader::new(std::io::Cursor::new(bytes)), what)
}

/// libjpeg reports errors by unwinding through the `mozjpeg` wrapper; they are caught
/// here and become errors that name the input.
fn decode_jpeg(bytes: &[u8], what: &str) -> Result<RgbImage> {
    let result = std::panic::catch_unwind(|| -> std::result::Result<RgbImage, String> {
        let d = mozjpeg::Decompress::new_mem(bytes).map_err(|e| e.to_string())?;
        let (w, h) = d.size();
        if w == 0 || h == 0 {
            return Err("the image is empty".into());
        }
        if (w as u64) * (h as u64) > MAX_PIXELS {
            return Err(format!("{w}x{h} is more than {MAX_PIXELS} pixels"));
        }
        if matches!(
            d.color_space(),
            mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK
        ) {
            return Err("CMYK JPEGs are not supported".into());
        }
        let mut img = d.rgb().map_err(|e| e.to_string())?;
        let pixels: Vec<[u8; 3]> = img.read_scanlines().map_err(|e| e.to_string())?;
        img.finish().map_err(|e| e.to_string())?;
        let flat: Vec<u8> = pixels.into_iter().flatten().collect();
        RgbImage::from_raw(w as u32, h as u32, flat).ok_or_else(|| "truncated image data".into())
    });
    match result {
        Ok(Ok(img)) => Ok(img),
        Ok(Err(reason)) => Err(decode_error(what, reason)),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "corrupt JPEG data".into());
            Err(decode_error(what, reason))
        }
    }
}

fn decode(
    reader: ImageReader<impl std::io::BufRead + std::io::Seek>,
    what: &str,
) -> Result<DynamicImage> {
    let mut reader = reader
        .with_guessed_format()
        .map_err(|e| decode_error(what, e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 16);
    limits.max_image_height = Some(1 << 16);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| decode_error(what, e))?;
    if u64::from(image.width()) * u64::from(image.height()) > MAX_PIXELS {
        return Err(decode_error(
            what,
            format!(
                "{}x{} is more than {MAX_PIXELS} pixels",
                image.width(),
                image.height()
            ),
        ));
    }
    if image.width() == 0 || image.height() == 0 {
        return Err(decode_error(what, "the image is empty"));
    }
    Ok(image)
}

/// Pillow's `convert("RGB")` of the decoded pixels.
fn rgb_like_pillow(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgb8(i) => i,
        DynamicImage::ImageRgba8(i) => drop_alpha(&i),
        DynamicImage::ImageLuma8(i) => RgbImage::from_fn(i.width(), i.height(), |x, y| {
            let l = i.get_pixel(x, y)[0];
            image::Rgb([l, l, l])
        }),
        // Pillow opens 16-bit grayscale as "I;16" and clamps it into 8 bits.
        DynamicImage::ImageLuma16(i) => RgbImage::from_fn(i.width(), i.height(), |x, y| {
            let l = i.get_pixel(x, y)[0].min(255) as u8;
            image::Rgb([l, l, l])
        }),
        DynamicImage::ImageLumaA8(i) => RgbImage::from_fn(i.width(), i.height(), |x, y| {
            let l = i.get_pixel(x, y)[0];
            image::Rgb([l, l, l])
        }),
        // 16-bit and float images: the high byte of each sample.
        other => {
            let rgba = other.to_rgba16();
            RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let p = rgba.get_pixel(x, y);
                image::Rgb([(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            })
        }
    }
}

fn drop_alpha(i: &image::RgbaImage) -> RgbImage {
    RgbImage::from_fn(i.width(), i.height(), |x, y| {
        let p = i.get_pixel(x, y);
        image::Rgb([p[0], p[1], p[2]])
    })
}

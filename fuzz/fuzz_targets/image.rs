//! Image bytes through decoding (PNG, JPEG, WebP, GIF, as Pillow) and each seeded
//! model's preprocessing, with the preprocessor config damaged one key at a time: an
//! error or finite `[3, h, w]` tensors, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use embedkit::image::{to_rgb, ImageInput, Preprocessor};
use embedkit_fuzz::{check_message, json_value, test_model, with_key};
use libfuzzer_sys::fuzz_target;

const MODELS: [&str; 6] = [
    "vision-clip-512",
    "vision-unicom-padcrop-512",
    "vision-unicom-lanczos-768",
    "vision-siglip-768",
    "colpali",
    "colmodernvbert",
];

/// Keys the preprocessor reads that a seeded config may not have.
const EXTRA_KEYS: [&str; 10] = [
    "size",
    "crop_size",
    "do_resize",
    "do_center_crop",
    "do_pad",
    "resample",
    "image_mean",
    "image_std",
    "max_image_size",
    "do_image_splitting",
];

static CONFIGS: LazyLock<Vec<(PathBuf, serde_json::Value)>> = LazyLock::new(|| {
    MODELS
        .iter()
        .map(|m| {
            let path = test_model(m).join("preprocessor_config.json");
            let text = std::fs::read_to_string(&path).expect("seeded config");
            (path, serde_json::from_str(&text).expect("valid JSON"))
        })
        .collect()
});

/// The layout of an input: `[model, change_config, key, value_len, value.., image..]`,
/// so a seed is four bytes and an image file.
struct Input<'a> {
    model: u8,
    change_config: bool,
    key: u8,
    value: &'a [u8],
    image: &'a [u8],
}

fn split(data: &[u8]) -> Option<Input<'_>> {
    let (&[model, change, key, len], rest) = data.split_first_chunk::<4>()?;
    let (value, image) = rest.split_at_checked(usize::from(len))?;
    Some(Input {
        model,
        change_config: change & 1 == 1,
        key,
        value,
        image,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = split(data) else {
        return;
    };
    let rgb = match to_rgb(&ImageInput::Bytes(input.image.to_vec())) {
        Ok(rgb) => rgb,
        Err(e) => return check_message(&e),
    };
    let (path, config) = &CONFIGS[usize::from(input.model) % MODELS.len()];
    let config = if input.change_config {
        with_key(config, input.key, &EXTRA_KEYS, json_value(input.value))
    } else {
        config.clone()
    };
    let pre = match Preprocessor::from_config(&config, path) {
        Ok(p) => p,
        Err(e) => return check_message(&e),
    };
    match pre.apply_tiles(rgb) {
        Ok((tiles, _grid)) => {
            assert!(!tiles.is_empty());
            for t in &tiles {
                assert_eq!(t.shape()[0], 3);
                assert!(t.iter().all(|x| x.is_finite()), "non-finite pixel value");
            }
        }
        Err(e) => check_message(&e),
    }
});

"""Writes the test images of tests/data/images: a real photo (Grace Hopper, public
domain, as matplotlib ships it) in JPEG, PNG and WebP, and edge cases made here: 1x1,
4000x100, grayscale, grayscale+alpha, palette with transparency, RGBA, 16-bit
grayscale, an EXIF-rotated JPEG, an animated GIF, a progressive JPEG.

usage: make_images.py --photo grace_hopper.jpg --out tests/data/images
(the photo is in the matplotlib wheel: matplotlib/mpl-data/sample_data/grace_hopper.jpg)
"""
import argparse
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.photo, out / "photo.jpg")
    photo = Image.open(args.photo).convert("RGB")
    photo.save(out / "photo.png")
    photo.resize((256, 300), Image.Resampling.BICUBIC).save(out / "photo_lossy.webp", quality=80)
    photo.crop((100, 100, 260, 300)).save(out / "photo_crop_lossless.webp", lossless=True)
    photo.save(out / "photo_progressive.jpg", quality=85, progressive=True, subsampling=2)
    photo.save(out / "photo_444.jpg", quality=92, subsampling=0)

    rng = np.random.RandomState(5)
    Image.new("RGB", (1, 1), (200, 30, 90)).save(out / "tiny_1x1.png")
    x = np.linspace(0, 255, 4000).astype(np.uint8)
    y = (np.sin(np.arange(100)[:, None] / 7.0 + np.arange(4000)[None, :] / 50.0) * 127 + 128).astype(np.uint8)
    wide = np.stack([np.tile(x, (100, 1)), np.tile(x[::-1], (100, 1)), y], axis=2)
    Image.fromarray(wide, "RGB").save(out / "wide_4000x100.png")
    gray = photo.convert("L").resize((150, 180))
    gray.save(out / "gray.png")
    la = Image.merge("LA", [gray, Image.fromarray((rng.rand(180, 150) * 255).astype(np.uint8), "L")])
    la.save(out / "gray_alpha.png")
    pal = photo.resize((120, 140)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.info["transparency"] = 3
    pal.save(out / "palette.png", transparency=3)
    rgba = photo.resize((130, 97)).convert("RGBA")
    alpha = (rng.rand(97, 130) * 255).astype(np.uint8)
    rgba.putalpha(Image.fromarray(alpha, "L"))
    rgba.save(out / "rgba.png")
    g16 = (np.asarray(gray).astype(np.uint16) * 257 + rng.randint(0, 200, (180, 150)).astype(np.uint16))
    Image.fromarray(g16).save(out / "gray16.png")
    # EXIF orientation 6 (rotate 90° CW to display): Pillow does not apply it.
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.resize((200, 160)).save(out / "exif_rotated.jpg", exif=exif.tobytes(), quality=90)
    frames = [photo.resize((90, 110)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32),
              photo.resize((90, 110)).rotate(90).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)]
    frames[0].save(out / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    print(f"wrote {len(list(out.iterdir()))} images to {out}")


if __name__ == "__main__":
    main()

"""Decoding a photo upright and reduced (JPEG draft, EXIF orientation, alpha on white), and its EXIF facts."""

from __future__ import annotations

import io

import numpy as np
from PIL import ExifTags, Image, ImageOps

from monitor.decisions.exif import read_exif_gps, read_exif_time


def read_exif_facts(image: Image.Image) -> tuple[str | None, tuple[float, float] | None, list[str]]:
    """DateTimeOriginal and the GPS position from a photo's EXIF, and notes on what was unreadable and ignored."""
    notes: list[str] = []
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF is absent evidence, noted
        return None, None, ["EXIF 信息损坏，已忽略"]
    try:
        raw = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    except Exception:  # noqa: BLE001
        raw, notes = None, ["EXIF 拍摄时间无法读取，已忽略"]
    when, note = read_exif_time(raw)
    notes += [note] if note else []
    gps = None
    try:
        info = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # noqa: BLE001
        info, notes = {}, [*notes, "EXIF 定位信息无法读取，已忽略"]
    if info and 2 in info and 4 in info:
        gps, note = read_exif_gps(info[2], info.get(1), info[4], info.get(3))
        notes += [note] if note else []
    return when, gps, notes


def to_8bit_grey(image: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit) greyscale image scaled to 8 bits; converting it directly would clip it to white."""
    values = np.asarray(image, dtype=np.float64)
    top = float(values.max()) if values.size else 0.0
    if top > 255:
        values = values * (255.0 / (65535.0 if top <= 65535 else top))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")


def count_few_colours(image: Image.Image, at_most: int) -> int | None:
    """How many distinct colours `image` has when at most `at_most` (None: more). Pillow stops counting at the limit,
    so a photo costs microseconds; a mode it cannot count (16-bit) says None."""
    try:
        found = image.getcolors(at_most)
    except (ValueError, OSError):
        return None
    return len(found) if found is not None else None


class UnreadablePhoto(Exception):
    """The stored photo cannot be decoded: no retry can change that (the upload ends as VERIFICATION_FAILED)."""


def shrink_early(image: Image.Image, max_side_px: int) -> Image.Image:
    """A PNG or WebP (no libjpeg draft) reduced towards `max_side_px` before any conversion: converting a 40 MP
    16-bit PNG first (to 8 bits, RGBA on white, RGB) took about 1 GB of memory for a 77 KB upload. Integer
    reduction (`reduce`, or a box resize for the modes it lacks) keeps at least `max_side_px` on the long side;
    palette images are reduced by nearest neighbour, which keeps their palette."""
    factor = max(image.size) // max_side_px
    if factor < 2:
        return image
    if image.mode in ("L", "LA", "RGB", "RGBA", "PA", "I", "F", "CMYK"):
        return image.reduce(factor)
    size = (max(1, image.width // factor), max(1, image.height // factor))
    if image.mode in ("P", "1"):
        return image.resize(size, Image.Resampling.NEAREST)
    return image.resize(size, Image.Resampling.BOX)


def decode_upright_rgb(data: bytes, max_side_px: int) -> tuple[np.ndarray, float, Image.Image]:
    """Decode `data` reduced (JPEG draft, other formats reduced before conversion), apply the EXIF orientation,
    composite alpha on white, RGB.

    Returns the array, the scale from it to the upright original (>= 1), and the opened image (for EXIF).
    """
    opened = Image.open(io.BytesIO(data))
    w, h = opened.size
    full_long = max(w, h)
    image: Image.Image = opened
    if image.format in ("JPEG", "MPO"):  # MPO: a JPEG with a Multi-Picture index (Ultra HDR, iPhone HDR)
        if full_long > max_side_px:
            # libjpeg decodes at 1/2, 1/4 or 1/8 directly: ask for the size that keeps max_side_px on the long side.
            image.draft("RGB", (max(1, w * max_side_px // full_long), max(1, h * max_side_px // full_long)))
        image = ImageOps.exif_transpose(image)
    else:
        opened.load()  # pixels that cannot be decoded raise here (a PNG's EXIF may follow its pixels: see below)
        try:
            method = EXIF_TRANSPOSE.get(opened.getexif().get(ExifTags.Base.Orientation, 1))
        except Exception:  # noqa: BLE001 - a broken EXIF turns nothing (read_exif_facts notes it); never a
            # decoding error: PNG's getexif loads the pixels, and a failed load leaves zeros that numpy reads quietly
            method = None
        image = shrink_early(image, max_side_px)  # palette and transparency info survive (nearest neighbour)
        image = image.transpose(method) if method is not None else image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = to_8bit_grey(image)
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = image.convert("RGB")
    if max(image.size) > max_side_px:
        image.thumbnail((max_side_px, max_side_px), Image.Resampling.BILINEAR)
    return np.asarray(image), full_long / max(image.size), opened


EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # as ImageOps.exif_transpose turns an image upright

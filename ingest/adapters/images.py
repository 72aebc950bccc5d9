"""Upload image validation without decoding: format, size, pixel limit (decompression bombs) and completeness.

Decoding a 12 MP photo costs about 70 ms; the API only reads the header and checks the file's structure is
whole (JPEG end-of-image after the scan, PNG IEND, WebP RIFF length). The worker decodes; a photo that still
cannot be decoded there ends as VERIFICATION_FAILED, never pending."""

from __future__ import annotations

import hashlib
import io
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from models.errors import ApiError

ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                   # A JPEG carrying a Multi-Picture (MPF) index: Android's Ultra HDR gain map, iPhone HDR, depth
                   # and burst shots. Pillow names it MPO; it is a JPEG whose first picture is the photo.
                   "MPO": "image/jpeg"}
JPEG_FORMATS = {"JPEG", "MPO"}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif"}
"""The ISO-BMFF brands of HEIF/HEIC and AVIF (an iPhone's default camera format, and its cousin): not decodable
here, and "not an image" would leave its sender guessing what to change."""


def is_heif(data: bytes) -> bool:
    """Whether `data` is a HEIF/HEIC or AVIF file, by its `ftyp` box's major brand."""
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


@dataclass(frozen=True)
class AcceptedImage:
    """An upload whose header and structure are sound: its bytes, SHA-256, media type and size in pixels."""

    data: bytes
    sha256: str
    media_type: str
    width: int
    height: int


def jpeg_scan_start(data: bytes) -> int | None:
    """Byte offset of the first start-of-scan marker, walking the segments (thumbnails inside them are skipped)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            return pos
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def png_damage(data: bytes) -> str | None:
    """How a PNG is damaged, read from its chunks walked from the signature without decoding (about 0.5 ms per MB):
    "cut" when they end before IEND (a file cut short), "changed" when a chunk's CRC-32 does not hold (bytes changed
    in transit or on a failing card); None when every chunk is whole up to IEND."""
    view = memoryview(data)
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 8 + length
        if end + 4 > len(data):
            return "cut"
        if zlib.crc32(view[pos + 4:end]) != int.from_bytes(view[end:end + 4], "big"):
            return "changed"
        if data[pos + 4:pos + 8] == b"IEND":
            return None
        pos = end + 4
    return "cut"


def damage_of(image: Image.Image, data: bytes) -> str | None:
    """Whether the file is whole, read from its structure without decoding: None, or "cut" (a JPEG without its
    end-of-image marker after its scan, a PNG without IEND, a WebP shorter than its RIFF length) or "changed" (a
    PNG chunk whose CRC-32 fails). Trailing bytes after the end, as some phones append, are allowed."""
    if image.format in JPEG_FORMATS:
        scan = jpeg_scan_start(data)
        return None if scan is not None and data.rfind(b"\xff\xd9") > scan else "cut"
    if image.format == "PNG":
        return png_damage(data)
    if image.format == "WEBP":
        return None if len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data) else "cut"
    return "cut"


JPEG_MAX_PIXELS = 89_000_000
"""A JPEG's own limit (under Pillow's decompression-bomb threshold, 89.5 MP): phones take 48, 50 and 64 MP photos,
and every JPEG is decoded reduced (`draft`, 1/2 to 1/8 of its size, `monitor/adapters/photo_decode.py`), so its
pixels cost little; PNG and WebP are decoded whole and keep `max_pixels`."""


def inspect_image(data: bytes, max_pixels: int) -> AcceptedImage:
    """Accept `data` only if it is a whole JPEG (up to JPEG_MAX_PIXELS, or `max_pixels` when larger), PNG or WebP of
    at most `max_pixels`; else ApiError."""
    if not data:
        raise ApiError(422, "EMPTY_FILE", "上传的照片文件为空")
    # face_recognition switches this on for the whole process when imported; a truncated upload must fail.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format or ""
            width, height = image.size
            if fmt not in ALLOWED_FORMATS:
                raise ApiError(
                    415, "UNSUPPORTED_IMAGE_FORMAT", f"不支持的图片格式（{fmt or '未知'}），仅接受 JPEG、PNG、WebP"
                )
            limit = max(max_pixels, JPEG_MAX_PIXELS) if ALLOWED_FORMATS[fmt] == "image/jpeg" else max_pixels
            if width * height > limit:
                raise ApiError(
                    413,
                    "IMAGE_TOO_MANY_PIXELS",
                    f"图片像素过多（{width}×{height}），上限为 {limit / 1e6:.0f} 百万像素：请把相机分辨率调低"
                    "（如 1200 万像素）或改用 JPEG 格式后重新拍摄",
                )
            if damage := damage_of(image, data):
                raise ApiError(422, "CORRUPT_IMAGE", "图片不完整（文件被截断），请重新拍摄上传" if damage == "cut"
                               else "图片数据已损坏（校验码不符，传输或存储中被改动），请重新拍摄上传")
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(413, "IMAGE_TOO_MANY_PIXELS",
                       f"图片像素过多（疑似解压炸弹），上限为 {max_pixels} 像素") from exc
    except UnidentifiedImageError as exc:
        if is_heif(data):
            raise ApiError(415, "UNSUPPORTED_IMAGE_FORMAT",
                           "不支持 HEIC/HEIF 格式的照片，仅接受 JPEG、PNG、WebP：iPhone 请在「设置 → 相机 → 格式」中"
                           "选择「兼容性最佳」后重新拍摄，或将照片导出为 JPEG") from exc
        raise ApiError(415, "NOT_AN_IMAGE", "文件不是可识别的图片（仅接受 JPEG、PNG、WebP）") from exc
    except ValueError as exc:
        if "too large" in str(exc).lower():  # Pillow's cap on a PNG's text or colour-profile chunk: the file may be
            # whole, and taking it again would not help (outside tester: a 5 MB ICC profile was "已损坏")
            raise ApiError(422, "IMAGE_METADATA_TOO_LARGE", "照片附带的元数据（如色彩配置文件、文字说明）过大，"
                           "无法读取：请用相机直接拍摄的 JPEG 上传，或去除元数据后重试") from exc
        raise ApiError(422, "CORRUPT_IMAGE", "图片已损坏或不完整，请重新拍摄上传") from exc
    except (OSError, SyntaxError, EOFError) as exc:
        raise ApiError(422, "CORRUPT_IMAGE", "图片已损坏或不完整，请重新拍摄上传") from exc
    return AcceptedImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=ALLOWED_FORMATS[fmt],
        width=width,
        height=height,
    )

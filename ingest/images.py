"""Upload image validation: format, size, pixel limit (decompression bombs) and integrity."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from models.errors import ApiError

ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class AcceptedImage:
    """An upload that decoded completely: its bytes, SHA-256, media type and size in pixels."""

    data: bytes
    sha256: str
    media_type: str
    width: int
    height: int


def inspect_image(data: bytes, max_pixels: int) -> AcceptedImage:
    """Accept `data` only if it is a whole JPEG, PNG or WebP of at most `max_pixels`; else ApiError."""
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
            if width * height > max_pixels:
                raise ApiError(
                    413,
                    "IMAGE_TOO_MANY_PIXELS",
                    f"图片像素过多（{width}×{height}），上限为 {max_pixels} 像素",
                )
            image.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(413, "IMAGE_TOO_MANY_PIXELS", f"图片像素过多，疑似解压炸弹：{exc}") from exc
    except UnidentifiedImageError as exc:
        raise ApiError(415, "NOT_AN_IMAGE", "文件不是可识别的图片（仅接受 JPEG、PNG、WebP）") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ApiError(422, "CORRUPT_IMAGE", "图片已损坏或不完整，请重新拍摄上传") from exc
    return AcceptedImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=ALLOWED_FORMATS[fmt],
        width=width,
        height=height,
    )

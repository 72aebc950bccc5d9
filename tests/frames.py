"""Liveness bursts made from the sample photos and video: blinks, head turns, stills, another person."""

import io
from functools import cache

import av
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from monitor.adapters.face_dlib import FaceEngine
from tests.helpers import FACES_DIR


def encode(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


@cache
def landmarks_of(rel: str) -> dict:
    scan = FaceEngine().scan((FACES_DIR / rel).read_bytes(), "frame")
    return {"marks": scan.faces[0].landmarks, "box": scan.faces[0].box}


def jitter(image: Image.Image, n: int) -> Image.Image:
    """The small differences between consecutive frames of a real burst (hand shake, exposure)."""
    w, h = image.size
    dx, dy = (n * 7) % 13, (n * 5) % 11
    return ImageEnhance.Brightness(image.crop((dx, dy, w - 13 + dx, h - 11 + dy))).enhance(1 + 0.03 * n)


def close_eyes(rel: str) -> Image.Image:
    """The photo with both eyes painted shut (skin colour from below the eye, a lash line)."""
    src = Image.open(FACES_DIR / rel).convert("RGB")
    marks = landmarks_of(rel)["marks"]
    image = src.copy()
    draw = ImageDraw.Draw(image)
    for key in ("left_eye", "right_eye"):
        pts = np.asarray(marks[key])
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        h = y1 - y0
        skin = src.getpixel((int(pts[:, 0].mean()), int(min(src.height - 1, y1 + 1.2 * h))))
        draw.ellipse([x0 - 10, y0 - h * 1.6, x1 + 10, y1 + h * 1.0], fill=skin)
        draw.line([(x0, (y0 + y1) / 2 + h * 0.3), (x1, (y0 + y1) / 2 + h * 0.3)], fill=(40, 30, 30), width=3)
    return image.filter(ImageFilter.GaussianBlur(1))


def turn_head(rel: str, amount: float) -> Image.Image:
    """Fake a head turn: stretch one side of the face and squeeze the other around the nose (amount of the
    face's width; positive moves the nose to the image's right, as when the trainee turns to their left)."""
    src = Image.open(FACES_DIR / rel).convert("RGB")
    info = landmarks_of(rel)
    w, h = src.size
    cx = int(np.asarray(info["marks"]["nose_tip"])[:, 0].mean())
    top, right, bottom, left = info["box"]
    shift = int(amount * (right - left))
    mesh = [((0, 0, cx + shift, h), (0, 0, 0, h, cx, h, cx, 0)),
            ((cx + shift, 0, w, h), (cx, 0, cx, h, w, h, w, 0))]
    return src.transform((w, h), Image.Transform.MESH, mesh, Image.Resampling.BILINEAR)


def blink_burst(rel: str) -> list[bytes]:
    src = Image.open(FACES_DIR / rel).convert("RGB")
    closed = close_eyes(rel)
    return [encode(jitter(im, n)) for n, im in enumerate([src, src, closed, src])]


def turn_burst(rel: str, direction: int) -> list[bytes]:
    return [encode(jitter(turn_head(rel, direction * k), n)) for n, k in enumerate((0.0, 0.12, 0.24, 0.36))]


def still_burst(rel: str) -> list[bytes]:
    frame = encode(Image.open(FACES_DIR / rel).convert("RGB"))
    return [frame] * 4


def burst_for(action: str, rel: str) -> list[bytes]:
    return blink_burst(rel) if action == "blink" else turn_burst(rel, 1 if action == "turn_left" else -1)


def video_frames(count: int = 4, step: int = 4) -> list[bytes]:
    """Frames of the sample stage clip (lin_manuel_miranda), cropped to his face and enlarged like a phone
    close-up (in the 640x360 clip his face is about 50 px, near x=541, y=75)."""
    frames = []
    with av.open(str(FACES_DIR / "video" / "short_hamilton_clip.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                close_up = frame.to_image().crop((441, 0, 641, 200)).resize((800, 800), Image.Resampling.BICUBIC)
                frames.append(encode(close_up))
            if len(frames) == count:
                break
    return frames

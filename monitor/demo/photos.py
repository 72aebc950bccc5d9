"""The simulator's photos: fresh variants of the sample faces, each far in pHash from every photo the server holds."""

from __future__ import annotations

import io
import logging
import random
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageOps

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # face_recognition_models imports pkg_resources
    import face_recognition

from monitor.demo.world import CHECKIN_PHOTOS, GROUPS, SAME_SITTING, DemoTrainee

log = logging.getLogger(__name__)

REPLAY_PHASH_MAX_DISTANCE = 10  # the server's PHOTO_REPLAY rule (MONITOR_REPLAY_PHASH_MAX_DISTANCE)
MIN_PHASH_DISTANCE = REPLAY_PHASH_MAX_DISTANCE + 3  # 2 bits of margin for the server's own decode path
DETECT_PX = {"checkin": 400, "snapshot": 1600, "enrolment": 1024}  # size the server hashes at (face_engine)


def server_phash(data: bytes, detect_px: int = 400) -> int:
    """The 64-bit pHash the server stores for `data`: upright RGB reduced to `detect_px` (bilinear), then pHash."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    factor = max(image.size) / detect_px
    if factor > 1:
        image = image.resize((round(image.width / factor), round(image.height / factor)),
                             Image.Resampling.BILINEAR)
    return int(str(imagehash.phash(image)), 16)


def _field(rng: random.Random, size: tuple[int, int], lo: int, hi: int, n: int, colour: bool) -> Image.Image:
    """A smooth random field (n x n random values, bicubic-upsampled): a backdrop or a fall of light."""
    grid = Image.new("RGB" if colour else "L", (n, n))
    values: list[Any] = [tuple(rng.randint(lo, hi) for _ in range(3)) if colour else rng.randint(lo, hi)
                         for _ in range(n * n)]
    grid.putdata(values)
    return grid.resize(size, Image.Resampling.BICUBIC)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _upright(data: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


def vary_image(image: Image.Image, rng: random.Random, max_side: int = 1000) -> Image.Image:
    """A freshly taken looking photo of the same scene: new framing, tilt, mirror, background and light.

    The face keeps its resolution (the result's long side is 850-`max_side` px, what the server decodes) and
    stays sharp and bright enough to judge; the background and the uneven light change the pHash.
    """
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    w, h = image.size
    keep = rng.uniform(0.8, 0.95)
    cw, ch = int(w * keep), int(h * keep)
    x, y = rng.randint(0, w - cw), rng.randint(0, max(0, int((h - ch) * 0.3)))
    image = image.crop((x, y, x + cw, y + ch))
    grow_short, grow_long = rng.uniform(1.1, 1.6), rng.uniform(1.0, 1.1)
    tall = image.height >= image.width
    canvas_w = image.width * (grow_short if tall else grow_long)
    canvas_h = image.height * (grow_long if tall else grow_short)
    scale = min(1.0, rng.uniform(0.85, 1.0) * max_side / max(canvas_w, canvas_h))
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.LANCZOS)
    size = (max(image.width, round(canvas_w * scale)), max(image.height, round(canvas_h * scale)))
    angle = rng.uniform(-12, 12)
    mask = Image.new("L", image.size, 255).rotate(angle, resample=Image.Resampling.BICUBIC)
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC)
    canvas = _field(rng, size, 20, 235, 4, colour=True)
    canvas.paste(image, (rng.randint(0, size[0] - image.width), rng.randint(0, size[1] - image.height)), mask)
    light = _field(rng, size, 140, 255, 4, colour=False)
    canvas = ImageChops.multiply(canvas, Image.merge("RGB", (light, light, light)))
    return ImageEnhance.Brightness(canvas).enhance(rng.uniform(1.05, 1.25))


def face_is_whole(data: bytes, detect_px: int = 400, margin_px: int = 4) -> bool:
    """Whether the photo's largest face (HOG on a `detect_px` copy) stands at least `margin_px` from every edge."""
    image = _upright(data)
    factor = max(image.size) / detect_px
    small = image.resize((max(1, round(image.width / factor)), max(1, round(image.height / factor))))
    boxes = face_recognition.face_locations(np.asarray(small.convert("RGB")))
    if not boxes:
        return False
    top, right, bottom, left = (int(v) for v in max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3])))
    return bool(top >= margin_px and left >= margin_px and small.height - bottom >= margin_px
            and small.width - right >= margin_px)


def vary_photo(data: bytes, rng: random.Random) -> bytes:
    """`vary_image` of the photo `data`, as JPEG bytes (no EXIF)."""
    return _jpeg(vary_image(_upright(data), rng), rng.randint(85, 94))


def faceless_photo(rng: random.Random) -> bytes:
    """A photo of a classroom wall (no face): what a phone sends when the camera pointed elsewhere."""
    w = rng.randint(640, 1000)
    image = _field(rng, (w, w * 3 // 4), 40, 220, 4, colour=True)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 4)):  # a board, a poster, a window, a door
        x, y = rng.randint(0, w - 60), rng.randint(0, w * 3 // 4 - 60)
        draw.rectangle((x, y, x + rng.randint(40, w // 2), y + rng.randint(40, w // 3)),
                       fill=tuple(rng.randint(30, 240) for _ in range(3)))
    return _jpeg(image, rng.randint(80, 92))


def make_near_copy(data: bytes) -> bytes:
    """A re-compressed, slightly resized copy: a different file, the same picture (pHash within a few bits)."""
    image = _upright(data)
    for scale, quality in ((0.93, 72), (0.97, 80), (1.0, 70)):
        copy = _jpeg(image.resize((round(image.width * scale), round(image.height * scale))), quality)
        if bin(server_phash(copy) ^ server_phash(data)).count("1") <= REPLAY_PHASH_MAX_DISTANCE - 6:
            return copy
    return _jpeg(image, 75)


class PhotoMaker:
    """Makes the photos the simulator sends and remembers the pHash of every photo the server holds."""

    def __init__(self, faces_dir: Path, rng: random.Random, known_phashes: Iterable[str | int] = ()) -> None:
        self.faces_dir = faces_dir
        self.rng = rng
        self._known = np.array([int(h, 16) if isinstance(h, str) else h for h in known_phashes], dtype=np.uint64)
        self._known_lock = threading.Lock()
        self._images: dict[tuple[str, ...], Image.Image] = {}

    def load_source(self, *parts: str) -> Image.Image:
        """A sample photo under the faces folder, upright (decoded once)."""
        if parts not in self._images:
            self._images[parts] = _upright((self.faces_dir.joinpath(*parts)).read_bytes())
        return self._images[parts]

    def measure_distance(self, phash: int) -> int:
        """Bits from `phash` to the nearest pHash the server holds (64 when it holds none)."""
        with self._known_lock:
            if not len(self._known):
                return 64
            return int(np.bitwise_count(self._known ^ np.uint64(phash)).min())

    def remember(self, data: bytes, what: str) -> None:
        """Record the pHash of a photo the server now holds."""
        phash = np.uint64(server_phash(data, DETECT_PX[what]))
        with self._known_lock:
            self._known = np.append(self._known, phash)

    def make_fresh(self, make: Callable[[], bytes], what: str = "checkin", tries: int = 60,
                   accept: Callable[[bytes], bool] | None = None) -> bytes | None:
        """A photo from `make` at least MIN_PHASH_DISTANCE bits from every photo the server holds (and that
        `accept` takes, when given)."""
        for _ in range(tries):
            data = make()
            if accept is not None and not accept(data):
                continue
            if self.measure_distance(server_phash(data, DETECT_PX[what])) >= MIN_PHASH_DISTANCE:
                return data
        log.warning("no %s photo far enough from the %d stored ones after %d tries", what, len(self._known), tries)
        return None

    def make_selfie(self, person: str, photo: str) -> bytes | None:
        """A fresh variant of a sample photo whose face the framing left whole: a genuine selfie a phone would
        take, never one the server must refuse as FACE_POOR (cut off by the edge)."""
        return self.make_fresh(lambda: _jpeg(vary_image(self.load_source("people", person, photo), self.rng),
                                             self.rng.randint(85, 94)), accept=face_is_whole)

    def make_genuine_photo(self, t: DemoTrainee, reliable: bool = False) -> bytes | None:
        """A fresh selfie of the trainee: any photo of the person; `reliable` keeps to the enrolled sitting."""
        same = SAME_SITTING.get((t.person, t.enrol_photo), [t.enrol_photo])
        if reliable:
            return self.make_selfie(t.person, self.rng.choice(same))
        return self.make_selfie(t.person, self.rng.choice(CHECKIN_PHOTOS[t.person] + same))

    def make_group_photo(self) -> bytes | None:
        """A fresh photo of two people (a selfie showing more than one face)."""
        rng = self.rng
        return self.make_fresh(lambda: _jpeg(vary_image(self.load_source("groups", rng.choice(GROUPS)), rng), 88))

    def make_faceless_photo(self) -> bytes | None:
        """A fresh photo of a classroom wall."""
        return self.make_fresh(lambda: faceless_photo(self.rng))

    def make_classroom(self, people: list[DemoTrainee]) -> bytes | None:
        """A classroom snapshot showing exactly these trainees, side by side."""
        def make() -> bytes:
            tiles = []
            for t in people:
                same = SAME_SITTING.get((t.person, t.enrol_photo), [t.enrol_photo])
                tile = vary_image(self.load_source("people", t.person, self.rng.choice(same)), self.rng, max_side=520)
                tiles.append(tile.resize((round(tile.width * 440 / tile.height), 440)))
            width = sum(t.width for t in tiles) + 40 * (len(tiles) + 1)
            canvas = _field(self.rng, (max(width, 800), 560), 30, 220, 5, colour=True)
            x = 40
            for tile in tiles:
                canvas.paste(tile, (x, self.rng.randint(20, 100)))
                x += tile.width + 40
            if canvas.width > 2400:
                canvas = canvas.resize((2400, round(canvas.height * 2400 / canvas.width)))
            return _jpeg(canvas, self.rng.randint(85, 92))
        return self.make_fresh(make, "snapshot")

"""The province simulator: registers demo classes over the real API and streams check-ins and snapshots.

Every kind of cheating the verification rules catch with an upload is played within the first two minutes
(`OPENING`), then at random among mostly genuine uploads. Genuine uploads never trip a rule by accident:
every photo the simulator sends is checked against the 64-bit pHash of every photo already stored (this
run's and, in the demo, the kept database's) and regenerated until it is at least `MIN_PHASH_DISTANCE` bits
from all of them, so PHOTO_REPLAY only fires on the deliberate replay.
"""

from __future__ import annotations

import io
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import imagehash
import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageOps

from models.clock import SHANGHAI
from models.domain import Datum
from models.identity import compute_check_char
from monitor.decisions.geodesy import convert_from_wgs84

log = logging.getLogger(__name__)

# The sample people. Each sitting (a set of photos taken at one time) can be enrolled for one trainee only:
# the 1:N search at enrolment refuses the same face under a second ID number, and photos of one sitting are
# 0.05-0.14 apart, different sittings of one person >= 0.30 (see shared/faces/README.md). So each sitting is
# one demo trainee with a name of its own; check-ins use any photo of the person (a fresh variant each time).
PEOPLE: dict[str, list[tuple[str, str]]] = {  # person folder -> [(enrolment photo, trainee name)], one per sitting
    "obama": [("obama.jpg", "欧建国"), ("obama1.jpg", "欧阳明"), ("obama2.jpg", "区志强"), ("obama3.jpg", "欧立新")],
    "biden": [("biden.jpg", "白德明"), ("biden2.jpg", "白永福")],
    "alex_lacamoire": [("alex_lacamoire1.jpg", "李晓刚"), ("img1.jpg", "黎文斌"), ("alex-lacamoire.png", "李卫东")],
    "kit_harington": [("john1.jpeg", "何志远"), ("johnsnow_test1.jpg", "贺国平"), ("john2.jpeg", "何建军")],
    "rose_leslie": [("img1.jpg", "罗晓燕"), ("img2.jpg", "骆丽华")],
}
# Photos of the same sitting as an enrolment photo (a selfie from them passes the strict 1:1 threshold).
SAME_SITTING = {("obama", "obama.jpg"): ["obama-720p.jpg", "obama-480p.jpg", "obama-1080p.jpg", "obama.jpg"]}
# Photos a trainee's selfie may be varied from (faces >= 100 px; obama-240p and obama_small are too small).
CHECKIN_PHOTOS = {
    "obama": ["obama.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg", "obama-480p.jpg", "obama-720p.jpg"],
    "biden": ["biden.jpg", "biden2.jpg"],
    "alex_lacamoire": ["alex_lacamoire1.jpg", "img1.jpg", "alex-lacamoire.png"],
    "kit_harington": ["john1.jpeg", "john2.jpeg", "johnsnow_test1.jpg"],
    "rose_leslie": ["img1.jpg", "img2.jpg"],
}
STRANGER = ("lin_manuel_miranda", "lin-manuel-miranda.png")  # enrolled nowhere: the wrong face
GROUPS = ["two_people.jpg", "obama_and_biden.jpg"]  # kit_with_rose.jpg often shows one face at selfie size

# (county code, county seat WGS-84, class name, institution, datum the venue was drawn in)
SITES = [
    ("530102", (25.0433, 102.7058), "中式烹调师（初级）第12期", "昆明五华职业技能培训学校", Datum.WGS84),
    ("532901", (25.6065, 100.2676), "电工（中级）第3期", "大理苍洱职业培训学校", Datum.GCJ02),
    ("532503", (23.3962, 103.3643), "育婴员（初级）第7期", "蒙自红河职业技能培训中心", Datum.BD09),
    ("530302", (25.4950, 103.8049), "焊工（初级）第5期", "曲靖麒麟技工培训学校", Datum.WGS84),
    ("532801", (22.0080, 100.7970), "茶艺师（初级）第2期", "西双版纳澜沧江职业培训学校", Datum.GCJ02),
    ("530602", (27.3370, 103.7170), "家政服务员（初级）第9期", "昭通昭阳职业技能培训学校", Datum.WGS84),
    ("532301", (25.0330, 101.5460), "农业经理人（初级）第1期", "楚雄彝州职业培训学校", Datum.GCJ02),
]
VENUE_RADIUS_M = 150.0
OCCUPATION = {"code": "DEMO-01", "name": "综合技能（演示）"}
CLASS_DAYS = 10
# A new class's daily session starts 5 minutes before it is registered (a class in session for longer with no
# upload would be CLASS_SILENT at once) and lasts until midnight; the simulator plays classes in session only.
SESSION_NAME = "演示课时"

REPLAY_PHASH_MAX_DISTANCE = 10  # the server's PHOTO_REPLAY rule (MONITOR_REPLAY_PHASH_MAX_DISTANCE)
MIN_PHASH_DISTANCE = REPLAY_PHASH_MAX_DISTANCE + 3  # 2 bits of margin for the server's own decode path
DETECT_PX = {"checkin": 400, "snapshot": 1600, "enrolment": 1024}  # size the server hashes at (face_engine)
FAR_FIX_COOLDOWN_S = 300.0  # 8 km at the 250 km/h plausibility limit takes 115 s: wait longer before the next fix
PROXIES_PER_CLASS_PER_DAY = 2

# Scenario -> the anomaly it is meant to raise. Other rules may join in on a cheat (an out-of-fence fix right
# after one at the venue is also GPS_IMPLAUSIBLE); a genuine upload must raise nothing.
INTENDED = {
    "wrong_face": "FACE_MISMATCH", "group": "FACE_MULTIPLE", "no_face": "FACE_MISSING",
    "out_of_fence": "OUT_OF_FENCE", "mock_gps": "GPS_IMPLAUSIBLE", "replay": "PHOTO_REPLAY",
    "proxy": "PROXY_SIGNIN", "headcount_gap": "HEADCOUNT_GAP",
}
# The first two minutes at the default interval (one entry per round; every fifth round is a snapshot).
OPENING = ["genuine", "genuine", "wrong_face", "genuine", "snapshot",
           "group", "genuine", "no_face", "mock_gps", "headcount_gap",
           "out_of_fence", "replay", "proxy", "genuine", "snapshot",
           "genuine", "genuine", "genuine", "genuine", "snapshot"]
CHEAT_WEIGHTS = {"genuine": 0.80, "wrong_face": 0.04, "out_of_fence": 0.04, "mock_gps": 0.03, "group": 0.02,
                 "no_face": 0.02, "replay": 0.025, "proxy": 0.025}


def make_id_number(county: str, birth: date, seq: int) -> str:
    """A well-formed (check digit valid) ID number for a demo person."""
    first17 = f"{county}{birth:%Y%m%d}{seq % 1000:03d}"
    return first17 + compute_check_char(first17)


def offset_point(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m`/`east_m` metres from (lat, lon) (small-distance approximation)."""
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


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
    grid.putdata([tuple(rng.randint(lo, hi) for _ in range(3)) if colour else rng.randint(lo, hi)
                  for _ in range(n * n)])
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


@dataclass
class DemoTrainee:
    id: int
    person: str  # folder under people/
    enrol_photo: str
    name: str
    last_passed_kind: str = ""  # the server counts a trainee present when his latest passed check-in is a sign-in
    last_sent: bytes = b""  # the last photo of him this run (a replay re-sends a near copy of it)
    quiet_until: float = 0.0  # after a far fix: no fix until the 250 km/h limit is respected (epoch seconds)
    signed_in_today: date | None = None

    @property
    def next_kind(self) -> str:
        return "sign_out" if self.last_passed_kind == "sign_in" else "sign_in"

    @property
    def present(self) -> bool:
        return self.last_passed_kind == "sign_in"


@dataclass
class DemoClass:
    id: int
    site_token: str
    venue_wgs84: tuple[float, float]
    trainees: dict[int, DemoTrainee]
    index: int = 0
    windows: list[tuple[str, str]] = field(default_factory=list)  # daily sessions, local "HH:MM"
    proxies: dict[date, int] = field(default_factory=dict)

    def in_session(self, now: datetime) -> bool:
        hhmm = now.astimezone(SHANGHAI).strftime("%H:%M")
        return any(start <= hhmm <= end for start, end in self.windows)


@dataclass
class DemoWorld:
    admin_token: str
    operator_token: str = ""
    inspector_token: str = ""
    classes: list[DemoClass] = field(default_factory=list)


@dataclass
class Upload:
    """One upload the simulator made: what it meant, what it got back."""
    round: int
    what: str  # checkin | snapshot
    scenario: str
    class_id: int
    trainee_id: int | None
    status_code: int
    status: str = ""
    codes: list[str] = field(default_factory=list)
    status_url: str = ""
    message: str = ""

    @property
    def genuine(self) -> bool:
        return self.scenario in ("genuine", "snapshot")

    @property
    def intended(self) -> str | None:
        return INTENDED.get(self.scenario)


def roster_plan(n_classes: int) -> list[list[tuple[str, str, str]]]:
    """Which sittings (person, enrolment photo, name) are trainees of which class.

    Class 1 has one trainee of each person (its first sitting, e.g. obama.jpg); the other sittings are spread
    over the other classes, never two of one person in a class (they would be each other's look-alikes).
    """
    plan: list[list[tuple[str, str, str]]] = [[] for _ in range(n_classes)]
    plan[0] = [(p, s[0][0], s[0][1]) for p, s in PEOPLE.items()]
    rest = [(p, photo, name) for k in range(1, 4) for p, s in PEOPLE.items() if k < len(s) for photo, name in [s[k]]]
    for person, photo, name in rest:
        options = [c for c in range(1, n_classes) if all(t[0] != person for t in plan[c])]
        if options:
            plan[min(options, key=lambda c: (len(plan[c]), c))].append((person, photo, name))
    return plan


class ProvinceSimulator:
    """Drives the running server through its public API, as training sites across Yunnan would."""

    def __init__(self, base_url: str, admin_token: str, faces_dir: Path, seed: int = 7,
                 http: httpx.Client | None = None, known_phashes: Iterable[str | int] = (),
                 clock: Callable[[], datetime] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.faces_dir = Path(faces_dir)
        self.seed = seed
        self.rng = random.Random(seed)
        self.world = DemoWorld(admin_token=admin_token)
        self.http = http or httpx.Client(base_url=self.base_url, timeout=30)  # uploads
        self.admin_http = http or httpx.Client(base_url=self.base_url, timeout=120)  # registration (own thread)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stats: dict[str, int] = {}
        self.uploads: list[Upload] = []
        self.rounds = 0
        self.registered = threading.Event()  # set once the first class can receive uploads
        self._known = np.array([int(h, 16) if isinstance(h, str) else h for h in known_phashes], dtype=np.uint64)
        self._known_lock = threading.Lock()
        self._images: dict[tuple[str, ...], Image.Image] = {}
        self._owed: list[str] = []

    # -- photos --------------------------------------------------------------------------
    def _source(self, *parts: str) -> Image.Image:
        if parts not in self._images:
            self._images[parts] = _upright((self.faces_dir.joinpath(*parts)).read_bytes())
        return self._images[parts]

    def _distance_to_known(self, phash: int) -> int:
        with self._known_lock:
            if not len(self._known):
                return 64
            return int(np.bitwise_count(self._known ^ np.uint64(phash)).min())

    def remember(self, data: bytes, what: str) -> None:
        """Record the pHash of a photo the server now holds."""
        phash = np.uint64(server_phash(data, DETECT_PX[what]))
        with self._known_lock:
            self._known = np.append(self._known, phash)

    def _fresh(self, make: Callable[[], bytes], what: str = "checkin", tries: int = 60) -> bytes | None:
        """A photo from `make` at least MIN_PHASH_DISTANCE bits from every photo the server holds."""
        for _ in range(tries):
            data = make()
            if self._distance_to_known(server_phash(data, DETECT_PX[what])) >= MIN_PHASH_DISTANCE:
                return data
        log.warning("no %s photo far enough from the %d stored ones after %d tries", what, len(self._known), tries)
        return None

    def _selfie(self, person: str, photo: str) -> bytes | None:
        return self._fresh(lambda: _jpeg(vary_image(self._source("people", person, photo), self.rng),
                                         self.rng.randint(85, 94)))

    def _genuine_photo(self, t: DemoTrainee, reliable: bool = False) -> bytes | None:
        """A fresh selfie of the trainee: any photo of the person; `reliable` keeps to the enrolled sitting."""
        same = SAME_SITTING.get((t.person, t.enrol_photo), [t.enrol_photo])
        if reliable:
            return self._selfie(t.person, self.rng.choice(same))
        return self._selfie(t.person, self.rng.choice(CHECKIN_PHOTOS[t.person] + same))

    def _near_copy(self, data: bytes) -> bytes:
        """A re-compressed, slightly resized copy: a different file, the same picture (pHash within a few bits)."""
        image = _upright(data)
        for scale, quality in ((0.93, 72), (0.97, 80), (1.0, 70)):
            copy = _jpeg(image.resize((round(image.width * scale), round(image.height * scale))), quality)
            if bin(server_phash(copy) ^ server_phash(data)).count("1") <= REPLAY_PHASH_MAX_DISTANCE - 6:
                return copy
        return _jpeg(image, 75)

    def _classroom(self, people: list[DemoTrainee]) -> bytes | None:
        """A classroom snapshot showing exactly these trainees, side by side."""
        def make() -> bytes:
            tiles = []
            for t in people:
                same = SAME_SITTING.get((t.person, t.enrol_photo), [t.enrol_photo])
                tile = vary_image(self._source("people", t.person, self.rng.choice(same)), self.rng, max_side=520)
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
        return self._fresh(make, "snapshot")

    # -- registration --------------------------------------------------------------------
    def _request(self, method: str, path: str, token: str, ok: tuple[int, ...] = (200, 201),
                 **kwargs: Any) -> httpx.Response:
        response = self.admin_http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code not in ok:
            raise RuntimeError(f"{method} {path} -> {response.status_code} {response.text}")
        return response

    def _post(self, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        return self._request("POST", path, token, **kwargs).json()

    def _get(self, path: str) -> Any:
        return self._request("GET", path, self.world.admin_token).json()

    def _create_person(self, kind: str, county: str, birth: date, seq: int, body: dict[str, Any]) -> int:
        """Create a trainee or teacher; an ID number taken by a record this run cannot see gets a new sequence."""
        for attempt in range(20):
            body["id_number"] = make_id_number(county, birth, seq + 37 * attempt)
            response = self._request("POST", f"/api/v1/{kind}", self.world.admin_token, ok=(201, 409), json=body)
            if response.status_code == 201:
                return response.json()["id"]
        raise RuntimeError(f"no free ID number for {body['name']}")

    def _enrol(self, trainee_id: int, person: str, photo: str) -> int:
        """Enrol the trainee's face unless he has one; returns the trainee who holds this face.

        If the face is already enrolled for another trainee (a record left by an interrupted earlier run),
        the server refuses it (409 DUPLICATE_IDENTITY) and names that trainee: he is the one to use.
        """
        if self._get(f"/api/v1/trainees/{trainee_id}")["face_templates"]:
            return trainee_id
        data = (self.faces_dir / "people" / person / photo).read_bytes()
        media = "image/png" if photo.endswith(".png") else "image/jpeg"
        response = self._request("POST", f"/api/v1/trainees/{trainee_id}/faces", self.world.admin_token,
                                 ok=(201, 409), files=[("photos", (photo, data, media))])
        if response.status_code == 409:
            other = response.json().get("other") or {}
            if other.get("kind") == "trainee" and other.get("id"):
                return int(other["id"])
            raise RuntimeError(f"enrolment of {person}/{photo} refused: {response.text}")
        return trainee_id

    def register(self, n_classes: int = 6, on_class: Callable[[DemoClass], None] | None = None) -> DemoWorld:
        """Register (or find, on a kept database) the occupation, institutions, venues, teachers, trainees with
        their faces and classes, by their natural keys; issue fresh site tokens. Classes become available to
        `step` one by one as they are ready (`on_class` is called for each)."""
        admin = self.world.admin_token
        local_now = self.clock().astimezone(SHANGHAI)
        today = local_now.date()
        session_start = max(local_now - timedelta(minutes=5), local_now.replace(hour=0, minute=0)).strftime("%H:%M")
        occupation = next((o for o in self._get("/api/v1/occupations") if o["code"] == OCCUPATION["code"]), None) \
            or self._post("/api/v1/occupations", admin, json=OCCUPATION)
        if not self.world.operator_token:
            self.world.operator_token = self._post(
                "/api/v1/tokens", admin, json={"role": "operator", "name": "省监控调度中心值班员"})["token"]
        if not self.world.inspector_token:
            self.world.inspector_token = self._post("/api/v1/tokens", admin, json={
                "role": "inspector", "name": "昆明市抽查员", "region_codes": ["530100"]})["token"]
        institutions = {i["licence_no"]: i for i in self._get("/api/v1/institutions")}
        venues = self._get("/api/v1/venues")
        all_classes = self._get("/api/v1/classes")
        for index, sittings in enumerate(roster_plan(n_classes)):
            county, (lat, lon), class_name, inst_name, datum = SITES[index]
            licence = f"YN-DEMO-{county}-{index}"
            inst = institutions.get(licence) or self._post("/api/v1/institutions", admin, json={
                "name": inst_name, "licence_no": licence, "region_code": county})
            venue = next((v for v in venues if v["institution_id"] == inst["id"] and v["name"] == f"{inst_name}教学楼"),
                         None)
            if venue is None:
                c_lat, c_lon = convert_from_wgs84(lat, lon, datum)
                venue = self._post("/api/v1/venues", admin, json={
                    "institution_id": inst["id"], "name": f"{inst_name}教学楼", "region_code": county,
                    "datum": datum.value,
                    "fence": {"shape": "circle", "center": {"lat": c_lat, "lon": c_lon}, "radius_m": VENUE_RADIUS_M},
                })
            mine = [c for c in all_classes if c["institution_id"] == inst["id"]]  # newest first
            current = next((c for c in mine if c["start_date"] <= today.isoformat() <= c["end_date"]), None)
            earlier = current or (mine[0] if mine else None)
            # The people of an earlier class of this institution are this class's people (natural key: the name).
            known: dict[str, int] = {}
            if earlier:
                for trainee_id in earlier["trainee_ids"]:
                    known[self._get(f"/api/v1/trainees/{trainee_id}")["name"]] = trainee_id
            trainees: dict[int, DemoTrainee] = {}
            for k, (person, photo, name) in enumerate(sittings):
                trainee_id = known.get(name) or self._create_person(
                    "trainees", county, date(1990, 1, 1) + timedelta(days=131 * (10 * index + k)),
                    100 + 10 * index + k, {"name": name})
                trainee_id = self._enrol(trainee_id, person, photo)
                self.remember((self.faces_dir / "people" / person / photo).read_bytes(), "enrolment")
                trainees[trainee_id] = DemoTrainee(trainee_id, person, photo, name)
            if current is None:
                if earlier:
                    teachers = [earlier["theory_teacher_id"], earlier["practical_teacher_id"]]
                else:
                    teachers = [self._create_person(
                        "teachers", county, date(1980, 1, 1) + timedelta(days=97 * (2 * index + k)), 2 * index + k,
                        {"name": f"{role}教师{2 * index + k + 1:02d}", "qualifications": [f"{role}教学资格"]})
                        for k, role in enumerate(("理论", "实操"))]
                current = self._post("/api/v1/classes", admin, json={
                    "code": f"YN{today:%Y%m%d}{index + 1:03d}", "name": class_name, "institution_id": inst["id"],
                    "venue_id": venue["id"], "occupation_id": occupation["id"], "mode": "offline",
                    "start_date": today.isoformat(), "end_date": (today + timedelta(days=CLASS_DAYS - 1)).isoformat(),
                    "theory_teacher_id": teachers[0], "practical_teacher_id": teachers[1],
                    "sessions": [{"name": SESSION_NAME, "start": session_start, "end": "23:59"}],
                    "trainee_ids": list(trainees),
                })
            elif missing := [t for t in trainees if t not in current["trainee_ids"]]:
                self._post(f"/api/v1/classes/{current['id']}/roster", admin, json={"trainee_ids": missing})
            site_token = self._post("/api/v1/tokens", admin, json={
                "role": "site", "name": f"{inst_name}签到终端", "institution_id": inst["id"]})["token"]
            demo = DemoClass(current["id"], site_token, (lat, lon), trainees, index,
                             [(w["start"], w["end"]) for w in current["sessions"]])
            self.world.classes.append(demo)
            self.registered.set()
            if on_class:
                on_class(demo)
        return self.world

    # -- uploads -------------------------------------------------------------------------
    def _record(self, upload: Upload, response: httpx.Response) -> Upload:
        try:
            body = response.json()
        except ValueError:
            body = {}
        upload.status = body.get("status", "")
        upload.codes = [r.get("code", "") for r in body.get("reasons") or []]
        upload.status_url = body.get("status_url", "")
        upload.message = body.get("message", "")
        self.uploads.append(upload)
        self.stats[upload.scenario] = self.stats.get(upload.scenario, 0) + 1
        return upload

    def _pick(self, demo: DemoClass, now: datetime, want: Callable[[DemoTrainee], bool] = lambda t: True,
              ) -> DemoTrainee | None:
        ready = [t for t in demo.trainees.values() if t.quiet_until <= now.timestamp() and want(t)]
        return self.rng.choice(ready) if ready else None

    def upload_checkin(self, demo: DemoClass, scenario: str, now: datetime | None = None) -> Upload | None:
        """One check-in of `scenario` (genuine or one kind of cheating); None when the class cannot play it now."""
        now = now or self.clock()
        rng = self.rng
        today = now.astimezone(SHANGHAI).date()
        device_of: DemoTrainee | None = None
        mock = False
        far = False
        if scenario == "genuine":  # in the opening, trainees sign in first (a classroom fills up)
            trainee = (self.rounds < len(OPENING) and self._pick(demo, now, lambda t: not t.present)) \
                or self._pick(demo, now)
            photo = self._genuine_photo(trainee, reliable=self.rounds < len(OPENING)) if trainee else None
        elif scenario == "wrong_face":  # a stranger's face; not near the obama trainee's (0.69), the others' >= 0.78
            trainee = self._pick(demo, now, lambda t: t.person != "obama") or self._pick(demo, now)
            photo = self._selfie(*STRANGER)
        elif scenario == "group":
            trainee = self._pick(demo, now)
            photo = self._fresh(lambda: _jpeg(vary_image(self._source("groups", rng.choice(GROUPS)), rng), 88))
        elif scenario == "no_face":
            trainee = self._pick(demo, now)
            photo = self._fresh(lambda: faceless_photo(rng))
        elif scenario in ("out_of_fence", "mock_gps"):
            trainee = self._pick(demo, now)
            photo = self._genuine_photo(trainee, reliable=True) if trainee else None
            far, mock = scenario == "out_of_fence", scenario == "mock_gps"
        elif scenario == "replay":  # a trainee sends an earlier selfie of his again (re-saved: a new file)
            trainee = self._pick(demo, now, lambda t: bool(t.last_sent))
            photo = self._near_copy(trainee.last_sent) if trainee else None
        elif scenario == "proxy":  # 代签: classmate X signs in for an absent trainee, with X's own face and photo
            if demo.proxies.get(today, 0) >= PROXIES_PER_CLASS_PER_DAY or len(demo.trainees) < 2:
                return None
            trainee = self._pick(demo, now, lambda t: not t.present)
            signers = [t for t in demo.trainees.values() if trainee and t.id != trainee.id]
            signer = (next((t for t in signers if t.signed_in_today == today and t.person == "obama"), None)
                      or next((t for t in signers if t.signed_in_today == today), None)
                      or (rng.choice(signers) if signers else None))
            photo = self._selfie(signer.person, signer.enrol_photo) if signer else None
            device_of = trainee  # the absent trainee's phone, handed to the classmate
        else:
            raise ValueError(f"unknown scenario {scenario}")
        if trainee is None or photo is None:
            return None
        device = device_of or trainee
        if far:
            bearing, distance = rng.uniform(0, 2 * math.pi), rng.uniform(3000, 8000)
            lat, lon = offset_point(*demo.venue_wgs84, distance * math.cos(bearing), distance * math.sin(bearing))
            trainee.quiet_until = now.timestamp() + FAR_FIX_COOLDOWN_S
        else:
            lat, lon = offset_point(*demo.venue_wgs84, rng.uniform(-50, 50), rng.uniform(-50, 50))
        kind = "sign_in" if scenario == "proxy" else trainee.next_kind
        data = {
            "trainee_id": str(trainee.id), "class_id": str(demo.id), "kind": kind,
            "captured_at": now.isoformat(), "latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
            "accuracy_m": f"{rng.uniform(8, 40):.1f}", "device_id": f"phone-{demo.id}-{device.id}",
            "mock_location": "true" if mock else "false",
        }
        headers = {"Authorization": f"Bearer {demo.site_token}", "Idempotency-Key": f"sim-{self.seed}-{time.time_ns()}"}
        response = self.http.post("/api/v1/check-ins", data=data, files={"photo": ("p.jpg", photo, "image/jpeg")},
                                  headers=headers)
        if response.status_code < 300:
            self.remember(photo, "checkin")
        if scenario == "proxy":
            demo.proxies[today] = demo.proxies.get(today, 0) + 1
        upload = self._record(Upload(self.rounds, "checkin", scenario, demo.id, trainee.id, response.status_code),
                              response)
        if upload.status == "passed":
            trainee.last_passed_kind = kind
            if kind == "sign_in":
                trainee.signed_in_today = today
        if scenario == "genuine":
            trainee.last_sent = photo
        return upload

    def upload_snapshot(self, demo: DemoClass, scenario: str = "snapshot", now: datetime | None = None
                        ) -> Upload | None:
        """A classroom snapshot showing who is present; `headcount_gap` shows one of >= 3 present."""
        now = now or self.clock()
        present = [t for t in demo.trainees.values() if t.present]
        if scenario == "headcount_gap":
            if len(present) < 3:
                return None
            people = [self.rng.choice(present)]
        else:
            # Everyone present is seen (nobody signed in yet: the whole roster, so never fewer than signed in).
            people = present or list(demo.trainees.values())
        photo = self._classroom(people)
        if photo is None:
            return None
        response = self.http.post(
            "/api/v1/snapshots",
            data={"class_id": str(demo.id), "camera_id": f"cam-{demo.id}-1", "captured_at": now.isoformat()},
            files={"photo": ("s.jpg", photo, "image/jpeg")},
            headers={"Authorization": f"Bearer {demo.site_token}"},
        )
        if response.status_code < 300:
            self.remember(photo, "snapshot")
        return self._record(Upload(self.rounds, "snapshot", scenario, demo.id, None, response.status_code), response)

    def step(self, now: datetime | None = None) -> Upload | None:
        """One round: the opening's scripted scenario, later a random one; every fifth round a snapshot.

        A cheat the classes cannot play yet (a replay needs an earlier selfie, a headcount gap three present)
        is owed and played at the next round of its type; meanwhile the round is a genuine upload.
        """
        now = now or self.clock()
        classes = [c for c in self.world.classes if c.in_session(now)]  # at night the classes are quiet
        if not classes:
            return None
        rng = self.rng
        is_snapshot = self.rounds % 5 == 4
        default = "snapshot" if is_snapshot else "genuine"
        if self.rounds < len(OPENING):
            scenario = OPENING[self.rounds]
            order = classes[:1] + rng.sample(classes[1:], len(classes) - 1)  # the opening plays in class 1
        else:
            scenario = ("headcount_gap" if rng.random() < 0.1 else "snapshot") if is_snapshot else rng.choices(
                list(CHEAT_WEIGHTS), weights=list(CHEAT_WEIGHTS.values()))[0]
            order = rng.sample(classes, len(classes))
        owed = [s for s in self._owed if (s == "headcount_gap") == is_snapshot]
        upload = None
        candidates = list(dict.fromkeys([*owed, scenario, default]))
        for candidate in candidates:
            for demo in order:
                upload = (self.upload_snapshot(demo, candidate, now) if is_snapshot
                          else self.upload_checkin(demo, candidate, now))
                if upload is not None:
                    break
            if upload is not None:
                if candidate in self._owed:
                    self._owed.remove(candidate)
                break
        for candidate in candidates:  # what this round meant to play and did not
            if candidate not in (default, getattr(upload, "scenario", None)) and candidate not in self._owed:
                self._owed.append(candidate)
        self.rounds += 1
        if upload is not None:
            log.info("simulated %s %s -> %s %s", upload.scenario, upload.what, upload.status_code, upload.message)
        return upload

    def settle(self, timeout_s: float = 30.0) -> None:
        """Poll the uploads still pending until the server has judged them (or `timeout_s` passed)."""
        deadline = time.monotonic() + timeout_s
        for upload in self.uploads:
            while upload.status == "pending" and upload.status_url and time.monotonic() < deadline:
                token = next(c.site_token for c in self.world.classes if c.id == upload.class_id)
                body = self.http.get(upload.status_url, headers={"Authorization": f"Bearer {token}"}).json()
                upload.status = body.get("status", "")
                upload.codes = [r.get("code", "") for r in body.get("reasons") or []]
                if upload.status == "pending":
                    time.sleep(0.2)

    def run(self, stop: threading.Event, interval_s: float = 2.0) -> None:
        """Upload until `stop` is set, one round every `interval_s` (starting once a class is registered)."""
        while not self.registered.wait(0.2):
            if stop.is_set():
                return
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                self.step()
            except (httpx.HTTPError, ValueError, OSError):
                log.warning("simulated upload failed", exc_info=True)
            next_at = max(next_at + interval_s, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))

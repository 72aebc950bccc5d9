"""The province simulator: registers demo classes over the real API and streams check-ins and snapshots."""

from __future__ import annotations

import io
import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageEnhance, ImageOps

from ingest.validation import SHANGHAI
from models.domain import Datum
from models.identity import compute_check_char
from monitor.geodesy import convert_from_wgs84

log = logging.getLogger(__name__)

# Sample faces: the first photo enrols, the others are used for check-ins (see shared/faces/README.md).
PEOPLE: dict[str, dict[str, Any]] = {
    "obama": {"name": "欧建国", "enrol": ["obama.jpg"],
              "checkin": ["obama1.jpg", "obama2.jpg", "obama3.jpg", "obama-480p.jpg", "obama-720p.jpg"]},
    "biden": {"name": "白德明", "enrol": ["biden.jpg"], "checkin": ["biden2.jpg"]},
    "alex_lacamoire": {"name": "李晓刚", "enrol": ["alex_lacamoire1.jpg"],
                       "checkin": ["img1.jpg", "alex-lacamoire.png"]},
    "kit_harington": {"name": "何志远", "enrol": ["john1.jpeg"], "checkin": ["john2.jpeg", "johnsnow_test1.jpg"]},
    "rose_leslie": {"name": "罗晓燕", "enrol": ["img1.jpg"], "checkin": ["img2.jpg"]},
}
GROUPS = ["two_people.jpg", "obama_and_biden.jpg", "kit_with_rose.jpg"]

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


def make_id_number(county: str, birth: date, seq: int) -> str:
    """A well-formed (check digit valid) ID number for a demo person."""
    first17 = f"{county}{birth:%Y%m%d}{seq % 1000:03d}"
    return first17 + compute_check_char(first17)


def offset_point(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m`/`east_m` metres from (lat, lon) (small-distance approximation)."""
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


def vary_photo(data: bytes, rng: random.Random) -> bytes:
    """A freshly taken looking photo of the same scene: new framing, tilt, mirror, exposure and encoding.

    The changes are large enough that the perceptual hash differs (no PHOTO_REPLAY), as a real new selfie would.
    """
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = image.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR, expand=False,
                         fillcolor=(rng.randint(0, 255),) * 3)
    w, h = image.size
    keep = rng.uniform(0.8, 0.95)
    cw, ch = int(w * keep), int(h * keep)
    x, y = rng.randint(0, w - cw), rng.randint(0, max(0, int((h - ch) * 0.3)))
    image = image.crop((x, y, x + cw, y + ch))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    # A different place behind the trainee each time: the photo sits on a new background, framed anew.
    canvas = Image.new("RGB", (int(image.width * rng.uniform(1.15, 1.4)), int(image.height * rng.uniform(1.05, 1.25))),
                       tuple(rng.randint(30, 225) for _ in range(3)))
    canvas.paste(image, (rng.randint(0, canvas.width - image.width), rng.randint(0, canvas.height - image.height)))
    image = canvas
    scale = rng.uniform(0.8, 1.0)
    image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=rng.randint(82, 93))
    return out.getvalue()


def faceless_photo(rng: random.Random) -> bytes:
    """A photo of a wall (no face): what a phone sends when the camera pointed elsewhere."""
    shade = rng.randint(90, 200)
    image = Image.new("RGB", (640, 480), (shade, shade - 20, shade - 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class DemoClass:
    id: int
    site_token: str
    venue_wgs84: tuple[float, float]
    trainees: dict[int, str]  # trainee id -> person folder
    signed_in: set[int] = field(default_factory=set)


@dataclass
class DemoWorld:
    admin_token: str
    operator_token: str = ""
    inspector_token: str = ""
    classes: list[DemoClass] = field(default_factory=list)


class ProvinceSimulator:
    """Drives the running server through its public API, as training sites across Yunnan would."""

    def __init__(self, base_url: str, admin_token: str, faces_dir: Path, seed: int = 7) -> None:
        self.base_url = base_url.rstrip("/")
        self.faces_dir = Path(faces_dir)
        self.rng = random.Random(seed)
        self.world = DemoWorld(admin_token=admin_token)
        self.http = httpx.Client(base_url=self.base_url, timeout=30)
        self.stats: dict[str, int] = {}

    def _photo(self, person: str, name: str) -> bytes:
        return (self.faces_dir / "people" / person / name).read_bytes()

    def _post(self, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.post(path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{path} -> {response.status_code} {response.text}")
        return response.json()

    def register(self, n_classes: int = 6) -> DemoWorld:
        """Register institutions, venues, teachers, trainees (with faces) and classes; issue tokens."""
        admin = self.world.admin_token
        now_local = datetime.now(UTC).astimezone(SHANGHAI)
        start = (now_local - timedelta(minutes=10)).strftime("%H:%M") if now_local.hour >= 1 else "00:00"
        end = (now_local + timedelta(hours=4)).strftime("%H:%M") if now_local.hour < 20 else "23:59"
        occupation = self._post("/api/v1/occupations", admin, json={"code": "DEMO-01", "name": "综合技能（演示）"})
        self.world.operator_token = self._post(
            "/api/v1/tokens", admin, json={"role": "operator", "name": "省监控调度中心值班员"})["token"]
        self.world.inspector_token = self._post(
            "/api/v1/tokens", admin, json={"role": "inspector", "name": "昆明市抽查员", "region_codes": ["530100"]}
        )["token"]
        seq = 0
        for index, (county, (lat, lon), class_name, inst_name, datum) in enumerate(SITES[:n_classes]):
            inst = self._post("/api/v1/institutions", admin, json={
                "name": inst_name, "licence_no": f"YN-DEMO-{county}-{index}", "region_code": county})
            c_lat, c_lon = convert_from_wgs84(lat, lon, datum)
            venue = self._post("/api/v1/venues", admin, json={
                "institution_id": inst["id"], "name": f"{inst_name}教学楼", "region_code": county,
                "datum": datum.value,
                "fence": {"shape": "circle", "center": {"lat": c_lat, "lon": c_lon}, "radius_m": VENUE_RADIUS_M},
            })
            teachers = []
            for role in ("理论", "实操"):
                seq += 1
                teachers.append(self._post("/api/v1/teachers", admin, json={
                    "id_number": make_id_number(county, date(1980, 1, 1) + timedelta(days=seq * 97), seq),
                    "name": f"{role}教师{seq:02d}", "qualifications": [f"{role}教学资格"]})["id"])
            trainees: dict[int, str] = {}
            for person, info in PEOPLE.items():
                seq += 1
                trainee = self._post("/api/v1/trainees", admin, json={
                    "id_number": make_id_number(county, date(1990, 1, 1) + timedelta(days=seq * 131), seq),
                    "name": info["name"]})
                files = [("photos", (n, self._photo(person, n), "image/jpeg")) for n in info["enrol"]]
                self._post(f"/api/v1/trainees/{trainee['id']}/faces", admin, files=files)
                trainees[trainee["id"]] = person
            cls = self._post("/api/v1/classes", admin, json={
                "code": f"YN{now_local:%Y%m%d}{index + 1:03d}", "name": class_name, "institution_id": inst["id"],
                "venue_id": venue["id"], "occupation_id": occupation["id"], "mode": "offline",
                "start_date": now_local.date().isoformat(),
                "end_date": (now_local.date() + timedelta(days=10)).isoformat(),
                "theory_teacher_id": teachers[0], "practical_teacher_id": teachers[1],
                "sessions": [{"name": "演示课时", "start": start, "end": end}],
                "trainee_ids": list(trainees),
            })
            site_token = self._post("/api/v1/tokens", admin, json={
                "role": "site", "name": f"{inst_name}签到终端", "institution_id": inst["id"]})["token"]
            self.world.classes.append(DemoClass(cls["id"], site_token, (lat, lon), trainees))
        return self.world

    def upload_checkin(self, demo: DemoClass) -> dict[str, Any]:
        """One check-in: mostly genuine, with a share of wrong faces, group photos and far-away fixes."""
        rng = self.rng
        trainee_id = rng.choice(list(demo.trainees))
        person = demo.trainees[trainee_id]
        roll = rng.random()
        scenario = ("genuine" if roll < 0.82 else "wrong_face" if roll < 0.9 else
                    "out_of_fence" if roll < 0.95 else "group" if roll < 0.98 else "no_face")
        if scenario == "wrong_face":
            other = rng.choice([p for p in PEOPLE if p != person])
            photo = vary_photo(self._photo(other, rng.choice(PEOPLE[other]["checkin"])), rng)
        elif scenario == "group":
            photo = vary_photo((self.faces_dir / "groups" / rng.choice(GROUPS)).read_bytes(), rng)
        elif scenario == "no_face":
            photo = faceless_photo(rng)
        else:
            photo = vary_photo(self._photo(person, rng.choice(PEOPLE[person]["checkin"])), rng)
        if scenario == "out_of_fence":
            bearing = rng.uniform(0, 2 * math.pi)
            distance = rng.uniform(3000, 8000)
            lat, lon = offset_point(*demo.venue_wgs84, distance * math.cos(bearing), distance * math.sin(bearing))
        else:
            lat, lon = offset_point(*demo.venue_wgs84, rng.uniform(-50, 50), rng.uniform(-50, 50))
        kind = "sign_out" if trainee_id in demo.signed_in else "sign_in"
        demo.signed_in.symmetric_difference_update({trainee_id})
        data = {
            "trainee_id": str(trainee_id), "class_id": str(demo.id), "kind": kind,
            "captured_at": datetime.now(UTC).isoformat(), "latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
            "accuracy_m": f"{rng.uniform(8, 40):.1f}", "device_id": f"phone-{demo.id}-{trainee_id}",
            "mock_location": "false",
        }
        headers = {"Authorization": f"Bearer {demo.site_token}", "Idempotency-Key": f"sim-{time.time_ns()}"}
        response = self.http.post("/api/v1/check-ins", data=data, files={"photo": ("p.jpg", photo, "image/jpeg")},
                                  headers=headers)
        self.stats[scenario] = self.stats.get(scenario, 0) + 1
        return {"scenario": scenario, "status_code": response.status_code, **response.json()}

    def upload_snapshot(self, demo: DemoClass) -> dict[str, Any]:
        photo = vary_photo((self.faces_dir / "groups" / self.rng.choice(GROUPS)).read_bytes(), self.rng)
        response = self.http.post(
            "/api/v1/snapshots",
            data={"class_id": str(demo.id), "camera_id": f"cam-{demo.id}-1",
                  "captured_at": datetime.now(UTC).isoformat()},
            files={"photo": ("s.jpg", photo, "image/jpeg")},
            headers={"Authorization": f"Bearer {demo.site_token}"},
        )
        return {"status_code": response.status_code, **response.json()}

    def run(self, stop: threading.Event, interval_s: float = 2.0) -> None:
        """Upload until `stop` is set: a check-in every `interval_s`, a snapshot every fifth round."""
        rounds = 0
        while not stop.is_set():
            demo = self.rng.choice(self.world.classes)
            try:
                if rounds % 5 == 4:
                    self.upload_snapshot(demo)
                else:
                    result = self.upload_checkin(demo)
                    log.info("simulated %s check-in -> %s %s", result["scenario"], result["status_code"],
                             result.get("message"))
            except (httpx.HTTPError, ValueError):
                log.warning("simulated upload failed", exc_info=True)
            rounds += 1
            stop.wait(interval_s)

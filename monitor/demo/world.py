"""The demo's world: its sample people and sites, and the institutions, classes and trainees made of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from models.clock import SHANGHAI
from models.domain import Datum
from models.identity import compute_check_char

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
# The demo's phone numbers. China reserves no block for fiction (nothing like the 555 of North America), so the demo
# takes 1740 0xxx, the satellite (天通) block that ordinary mobile subscribers are never given: valid in form, and a
# tap on one reaches no trainee. Trainees, institutions and inspectors all draw from it.
DEMO_PHONE_PREFIX = "1740"


def demo_phone(n: int) -> str:
    """The demo's `n`-th fictional mobile number (11 digits, valid in form)."""
    return f"{DEMO_PHONE_PREFIX}{n % 10_000_000:07d}"


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


def make_id_number(county: str, birth: date, seq: int) -> str:
    """A well-formed (check digit valid) ID number for a demo person."""
    first17 = f"{county}{birth:%Y%m%d}{seq % 1000:03d}"
    return first17 + compute_check_char(first17)


def offset_point(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m`/`east_m` metres from (lat, lon) (small-distance approximation)."""
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


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

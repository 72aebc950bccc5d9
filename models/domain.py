"""Enumerations and API shapes of the domain (pydantic): roles, fences, classes, check-ins, anomalies."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from models.identity import normalise_mobile

MAX_RECORD_ID = 2**31 - 1  # registration records (institutions, people, classes…) have 32-bit ids
SERVICE_AREA = (3.0, 54.0, 73.0, 136.0)  # China's extent (south, north, west, east; degrees): a fix outside it
# cannot be a class in Yunnan, nor an inspector at one, whatever the datum


def outside_service_area(lat: float, lon: float) -> str | None:
    """Why a fix cannot be where a class or an inspector is (zh-CN), or None."""
    south, north, west, east = SERVICE_AREA
    if south <= lat <= north and west <= lon <= east:
        return None
    return (f"定位（纬度 {lat:.4f}，经度 {lon:.4f}）不在中国境内，不是培训地点的有效定位："
            "请检查手机定位是否开启、是否开了模拟定位后重试")
MAX_UPLOAD_ID = 2**63 - 1  # uploads, anomalies, reviews and events have 64-bit ids
RecordId = Annotated[StrictInt, Field(ge=1, le=MAX_RECORD_ID, description="a record id (1 to 2^31-1)")]


def unique_in_order(ids: list[int]) -> list[int]:
    """The ids with repeats dropped, each kept where it first came: a list naming a record twice names it once."""
    return list(dict.fromkeys(ids))


Distinct = AfterValidator(unique_in_order)
"""On a list of ids: repeats are dropped (counted, inserted and looked up once)."""


FORBIDDEN_TEXT = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
"""Control characters but tab, line feed and carriage return; bidirectional embeddings, overrides and isolates."""


def visible_name(name: str) -> str:
    """A person's name as typed: no invisible character (zero-width space or joiner, soft hyphen, byte-order mark:
    Unicode's format characters), which would make two names read alike and compare unalike, and at least one letter
    or digit."""
    if any(unicodedata.category(c) == "Cf" for c in name):
        raise ValueError("姓名中不得包含零宽空格、软连字符等不可见字符，请只用可见字符")
    if not any(unicodedata.category(c)[0] in "LN" for c in name):
        raise ValueError("姓名须含有文字或数字")
    return name


PersonName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(visible_name)]
"""Who holds a token or is sent to inspect (`visible_name`)."""


def _find_text(value: object, bad: Callable[[str], bool], path: str = "") -> str | None:
    """The path (`items[2].note`, `<key>` for a key itself) of the first text in `value` that is `bad`, or None."""
    if isinstance(value, str):
        return (path or "正文") if bad(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and bad(k):
                return f"{where}（字段名）"
            if (found := _find_text(v, bad, where)) is not None:
                return found
    if isinstance(value, (list, tuple)):
        for n, v in enumerate(value):
            if (found := _find_text(v, bad, f"{path}[{n}]")) is not None:
                return found
    return None


class InputModel(BaseModel):
    """A request body: no text anywhere in it may hold a NUL character (PostgreSQL cannot store it), another control
    character (line breaks and tabs excepted) or a bidirectional override (which makes a record read otherwise than
    it is stored, on screen and on the printed form)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        if (where := _find_text(data, lambda text: "\x00" in text)) is not None:
            raise ValueError(f"{where} 中不得包含 NUL（\\x00）字符")
        if (where := _find_text(data, lambda text: FORBIDDEN_TEXT.search(text) is not None)) is not None:
            raise ValueError(f"{where} 中不得包含控制字符或文字方向控制符（换行、制表符除外），请只用可见字符")
        return data


class Role(StrEnum):
    SITE = "site"
    OPERATOR = "operator"
    INSPECTOR = "inspector"
    ADMIN = "admin"
    AUDITOR = "auditor"


ROLE_NAMES = {
    Role.SITE: "培训机构",
    Role.OPERATOR: "监控调度员",
    Role.INSPECTOR: "抽查人员",
    Role.ADMIN: "管理员",
    Role.AUDITOR: "审计人员",
}


# Liveness challenge actions and what the phone tells the trainee.
LIVENESS_ACTIONS = {"blink": "请眨眼", "turn_left": "请向左转头", "turn_right": "请向右转头"}
LIVENESS_MIN_FRAMES, LIVENESS_MAX_FRAMES = 3, 8


class Datum(StrEnum):
    WGS84 = "WGS-84"
    GCJ02 = "GCJ-02"
    BD09 = "BD-09"


class CheckKind(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"


class ClassMode(StrEnum):
    OFFLINE = "offline"
    ONLINE = "online"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0 for low up to 2 for high."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2}


class AnomalyCode(StrEnum):
    FACE_MISMATCH = "FACE_MISMATCH"
    FACE_MISSING = "FACE_MISSING"
    FACE_MULTIPLE = "FACE_MULTIPLE"
    FACE_POOR = "FACE_POOR"
    OUT_OF_FENCE = "OUT_OF_FENCE"
    GPS_IMPLAUSIBLE = "GPS_IMPLAUSIBLE"
    PHOTO_REPLAY = "PHOTO_REPLAY"
    PROXY_SIGNIN = "PROXY_SIGNIN"
    LIVENESS_FAILED = "LIVENESS_FAILED"
    HEADCOUNT_GAP = "HEADCOUNT_GAP"
    TEACHER_ABSENT = "TEACHER_ABSENT"
    TEACHER_MISMATCH = "TEACHER_MISMATCH"
    OUTSIDE_SESSION = "OUTSIDE_SESSION"
    MISSING_SIGNOUT = "MISSING_SIGNOUT"
    NO_SHOW = "NO_SHOW"
    CLASS_SILENT = "CLASS_SILENT"
    LOW_ATTENDANCE = "LOW_ATTENDANCE"
    ONLINE_OVER_8H = "ONLINE_OVER_8H"
    DOUBLE_ENROLMENT = "DOUBLE_ENROLMENT"
    BLACKLISTED = "BLACKLISTED"
    CLASS_NOT_ALLOWED = "CLASS_NOT_ALLOWED"
    SAME_TEACHER_BOTH = "SAME_TEACHER_BOTH"
    DUPLICATE_IDENTITY = "DUPLICATE_IDENTITY"
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    CAMERA_OFFLINE = "CAMERA_OFFLINE"
    FROZEN_FEED = "FROZEN_FEED"
    CATEGORY_CONTRADICTED = "CATEGORY_CONTRADICTED"
    REPEAT_SUBSIDY = "REPEAT_SUBSIDY"
    TEACHER_NOT_IN_POOL = "TEACHER_NOT_IN_POOL"
    TEACHER_CHECK_FAILED = "TEACHER_CHECK_FAILED"
    VOUCHER_INVALID = "VOUCHER_INVALID"
    EMPLOYED_ELSEWHERE = "EMPLOYED_ELSEWHERE"


# The cross-check rules (clause 八/九): raised from the province's other registers, not from an upload or the clock.
CROSSCHECK_RULES = frozenset({
    AnomalyCode.CATEGORY_CONTRADICTED, AnomalyCode.REPEAT_SUBSIDY, AnomalyCode.TEACHER_NOT_IN_POOL,
    AnomalyCode.TEACHER_CHECK_FAILED, AnomalyCode.VOUCHER_INVALID, AnomalyCode.EMPLOYED_ELSEWHERE})


class TraineeCategory(StrEnum):
    """The personnel category a trainee is enrolled under (人员类别), which decides the subsidy claimed."""

    UNEMPLOYED = "unemployed"  # 登记失业人员
    RURAL = "rural"  # 农村转移就业劳动者
    GRADUATE = "graduate"  # 毕业年度高校毕业生
    EMPLOYEE = "employee"  # 企业职工
    OTHER = "other"


class FenceResult(StrEnum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class Principal:
    """Who holds a token: a role and its scope (an institution for sites, regions for inspectors)."""

    token_id: int
    role: Role
    name: str
    institution_id: int | None = None
    region_codes: tuple[str, ...] = field(default_factory=tuple)
    staff_id: int | None = None  # the inspector (抽查人员) a token names
    recused_institutions: frozenset[int] = frozenset()  # the inspector's declared ties (clause 十六)


def _check_lat_lon(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("坐标必须是有限数值")
    if not -90 <= lat <= 90:
        raise ValueError("纬度必须在 -90 到 90 之间")
    if not -180 <= lon <= 180:
        raise ValueError("经度必须在 -180 到 180 之间")
    if lat == 0 and lon == 0:
        raise ValueError("坐标 (0,0) 无效")


class Point(InputModel):
    lat: float
    lon: float

    @model_validator(mode="after")
    def _valid(self) -> Point:
        _check_lat_lon(self.lat, self.lon)
        return self


class CircleFence(InputModel):
    shape: Literal["circle"] = "circle"
    center: Point
    radius_m: Annotated[float, Field(gt=5, le=5000, description="radius in metres")]


class PolygonFence(InputModel):
    shape: Literal["polygon"] = "polygon"
    points: Annotated[list[Point], Field(min_length=3, max_length=500)]


Fence = Annotated[CircleFence | PolygonFence, Field(discriminator="shape")]


class InstitutionIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    name: Annotated[str, Field(min_length=2, max_length=200)]
    licence_no: Annotated[str, Field(min_length=2, max_length=64)]
    region_code: Annotated[str, Field(pattern=r"^53\d{4}$")]
    contact_phone: Annotated[str, Field(pattern=r"^(|1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$", description="the "
                             "institution's contact phone (mobile, or landline with area code), shown to the "
                             "inspector sent there")] = ""


class BlacklistIn(InputModel):
    blacklisted: StrictBool
    reason: Annotated[str, Field(max_length=500)] = ""
    alert_ids: Annotated[list[Annotated[StrictInt, Field(ge=1, le=MAX_UPLOAD_ID)]], Field(max_length=50), Distinct] = []
    inspection_ids: Annotated[list[Annotated[StrictInt, Field(ge=1, le=MAX_UPLOAD_ID)]], Field(max_length=50),
                              Distinct] = []
    for_fraud: StrictBool = Field(default=False, description="a teacher banned for fraud is banned for life")


class VenueIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    institution_id: RecordId
    name: Annotated[str, Field(min_length=2, max_length=200)]
    address: Annotated[str, Field(max_length=300)] = ""
    region_code: Annotated[str, Field(pattern=r"^53\d{4}$")]
    datum: Datum = Datum.WGS84
    fence: Fence


class OccupationIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]*$",
                               description="the national classification's code (GB/T 6565, e.g. 4-03-02-01) or a "
                                           "local one: ASCII letters, digits, '-' and '.'")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    has_training_standard: StrictBool = True
    has_evaluation_standard: StrictBool = True
    has_evaluation_body: StrictBool = True


class PersonIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    id_number: Annotated[str, Field(min_length=15, max_length=18)]
    name: Annotated[str, Field(min_length=1, max_length=50)]
    phone: Annotated[str, Field(max_length=20)] = ""


class TraineeIn(PersonIn):
    """A trainee: the phone check calls the mobile number on the roster, so one given must be a mainland mobile."""

    phone: Annotated[str, Field(max_length=20, description="mainland mobile number (11 digits, +86 allowed); "
                                "empty if the trainee has none: a phone check cannot reach them")] = ""

    @field_validator("phone")
    @classmethod
    def _mobile(cls, value: str) -> str:
        if value == "":
            return value
        mobile = normalise_mobile(value)
        if mobile is None:
            raise ValueError("学员手机号须为有效的大陆手机号码（11 位，以 13–19 开头）")
        return mobile


class TeacherIn(PersonIn):
    qualifications: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=20)] = []


class SessionIn(InputModel):
    name: Annotated[str, Field(min_length=1, max_length=20)]
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> SessionIn:
        if self.end <= self.start:
            raise ValueError("课时结束时间必须晚于开始时间")
        return self


class DeclarationIn(InputModel):
    """What the site declares for one trainee's enrolment: the personnel category the subsidy is claimed under and
    the training voucher used, both cross-checked against the registers (clause 八)."""

    model_config = ConfigDict(str_strip_whitespace=True)
    trainee_id: RecordId
    category: TraineeCategory | None = None
    voucher_no: Annotated[str, Field(min_length=4, max_length=60, pattern=r"^[0-9A-Za-z-]+$")] | None = None


def check_declarations(trainee_ids: list[int], declarations: list[DeclarationIn]) -> None:
    """Each declaration names a trainee of the roster, once."""
    named = [d.trainee_id for d in declarations]
    if len(set(named)) != len(named):
        raise ValueError("同一学员的申报信息重复")
    if stray := sorted(set(named) - set(trainee_ids)):
        raise ValueError(f"申报信息中的学员不在花名册中：{', '.join(map(str, stray))}")


class ClassIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    code: Annotated[str, Field(min_length=2, max_length=64)]
    name: Annotated[str, Field(min_length=2, max_length=200)]
    institution_id: RecordId
    venue_id: RecordId
    occupation_id: RecordId
    mode: ClassMode = ClassMode.OFFLINE
    start_date: Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]
    end_date: Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]
    theory_teacher_id: RecordId
    practical_teacher_id: RecordId
    sessions: Annotated[list[SessionIn], Field(min_length=1, max_length=6)]
    trainee_ids: Annotated[list[RecordId], Field(max_length=500), Distinct] = []
    liveness_required: StrictBool = False
    level: Annotated[int, Field(ge=1, le=5, description="the skill level trained for: 1 (一级/高级技师) … "
                                "5 (五级/初级工); none for 专项能力 training")] | None = None
    declarations: Annotated[list[DeclarationIn], Field(max_length=500)] = []

    @model_validator(mode="after")
    def _dates(self) -> ClassIn:
        if self.end_date < self.start_date:
            raise ValueError("结束日期不能早于开始日期")
        check_declarations(self.trainee_ids, self.declarations)
        return self

    @field_validator("trainee_ids")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("花名册中有重复学员")
        return value


class TraineeInClassIn(InputModel):
    """A trainee of a class: for a liveness challenge or an online study session."""

    class_id: RecordId
    trainee_id: RecordId
    device_id: Annotated[str | None, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$",
                                           description="the phone's id: requests are rate-limited per device")] = None


class LivenessSettingIn(InputModel):
    required: StrictBool


class ReviewDecisionIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    decision: Literal["confirmed", "rejected"]
    note: Annotated[str, Field(min_length=2, max_length=1000)]


class ReviewBatchIn(InputModel):
    """One decision for several check-in or heartbeat reviews (each decided on its own)."""

    model_config = ConfigDict(str_strip_whitespace=True)
    review_ids: Annotated[list[RecordId], Field(min_length=1, max_length=200), Distinct]
    decision: Literal["confirmed", "rejected"]
    note: Annotated[str, Field(min_length=2, max_length=1000)]


class IdentityReviewIn(InputModel):
    """An operator's finding on a look-alike found at enrolment: distinct people, or the same person."""

    model_config = ConfigDict(str_strip_whitespace=True)
    decision: Literal["distinct", "same_person"]
    note: Annotated[str, Field(min_length=2, max_length=1000)]


class RosterIn(InputModel):
    trainee_ids: Annotated[list[RecordId], Field(min_length=1, max_length=500), Distinct]
    declarations: Annotated[list[DeclarationIn], Field(max_length=500)] = []

    @model_validator(mode="after")
    def _declared(self) -> RosterIn:
        check_declarations(self.trainee_ids, self.declarations)
        return self


class TokenRevokeIn(InputModel):
    reason: Annotated[str, Field(min_length=1, max_length=200, description="why, e.g. 手机遗失、人员离岗")]


class TokenIn(InputModel):
    role: Role
    name: PersonName
    institution_id: RecordId | None = None
    region_codes: Annotated[list[Annotated[str, Field(pattern=r"^53\d{4}$")]], Field(max_length=200)] = []
    staff_id: RecordId | None = None  # an inspector's token names the staff member (and covers their region)

"""Enumerations and API shapes of the domain (pydantic): roles, fences, classes, check-ins, anomalies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


def _check_lat_lon(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("坐标必须是有限数值")
    if not -90 <= lat <= 90:
        raise ValueError("纬度必须在 -90 到 90 之间")
    if not -180 <= lon <= 180:
        raise ValueError("经度必须在 -180 到 180 之间")
    if lat == 0 and lon == 0:
        raise ValueError("坐标 (0,0) 无效")


class Point(BaseModel):
    lat: float
    lon: float

    @model_validator(mode="after")
    def _valid(self) -> Point:
        _check_lat_lon(self.lat, self.lon)
        return self


class CircleFence(BaseModel):
    shape: Literal["circle"] = "circle"
    center: Point
    radius_m: Annotated[float, Field(gt=5, le=5000, description="radius in metres")]


class PolygonFence(BaseModel):
    shape: Literal["polygon"] = "polygon"
    points: Annotated[list[Point], Field(min_length=3, max_length=500)]


Fence = Annotated[CircleFence | PolygonFence, Field(discriminator="shape")]


class InstitutionIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    name: Annotated[str, Field(min_length=2, max_length=200)]
    licence_no: Annotated[str, Field(min_length=2, max_length=64)]
    region_code: Annotated[str, Field(pattern=r"^53\d{4}$")]


class BlacklistIn(BaseModel):
    blacklisted: bool
    reason: Annotated[str, Field(max_length=500)] = ""


class VenueIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    institution_id: int
    name: Annotated[str, Field(min_length=2, max_length=200)]
    address: Annotated[str, Field(max_length=300)] = ""
    region_code: Annotated[str, Field(pattern=r"^53\d{4}$")]
    datum: Datum = Datum.WGS84
    fence: Fence


class OccupationIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    code: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    has_training_standard: bool = True
    has_evaluation_standard: bool = True
    has_evaluation_body: bool = True


class PersonIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    id_number: Annotated[str, Field(min_length=15, max_length=18)]
    name: Annotated[str, Field(min_length=1, max_length=50)]
    phone: Annotated[str, Field(max_length=20)] = ""


class TeacherIn(PersonIn):
    qualifications: list[str] = []


class SessionIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=20)]
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> SessionIn:
        if self.end <= self.start:
            raise ValueError("课时结束时间必须晚于开始时间")
        return self


class ClassIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    code: Annotated[str, Field(min_length=2, max_length=64)]
    name: Annotated[str, Field(min_length=2, max_length=200)]
    institution_id: int
    venue_id: int
    occupation_id: int
    mode: ClassMode = ClassMode.OFFLINE
    start_date: date
    end_date: date
    theory_teacher_id: int
    practical_teacher_id: int
    sessions: Annotated[list[SessionIn], Field(min_length=1, max_length=6)]
    trainee_ids: Annotated[list[int], Field(max_length=500)] = []
    liveness_required: bool = False

    @model_validator(mode="after")
    def _dates(self) -> ClassIn:
        if self.end_date < self.start_date:
            raise ValueError("结束日期不能早于开始日期")
        return self

    @field_validator("trainee_ids")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("花名册中有重复学员")
        return value


class TraineeInClassIn(BaseModel):
    """A trainee of a class: for a liveness challenge or an online study session."""

    class_id: int
    trainee_id: int


class LivenessSettingIn(BaseModel):
    required: bool


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    decision: Literal["confirmed", "rejected"]
    note: Annotated[str, Field(min_length=2, max_length=1000)]


class RosterIn(BaseModel):
    trainee_ids: Annotated[list[int], Field(min_length=1, max_length=500)]


class TokenIn(BaseModel):
    role: Role
    name: Annotated[str, Field(min_length=1, max_length=100)]
    institution_id: int | None = None
    region_codes: list[str] = []

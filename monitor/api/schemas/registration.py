"""Response shapes of registration: regions, institutions, venues, occupations, people, classes, tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from monitor.api.schemas.dispatch import AuditCheckOut


class CountyOut(BaseModel):
    code: str = Field(description="GB/T 2260 county code")
    name: str


class RegionOut(BaseModel):
    """A prefecture (州市) with its counties (县区)."""

    code: str = Field(description="GB/T 2260 prefecture code")
    name: str
    counties: list[CountyOut]


class InstitutionCreatedOut(BaseModel):
    """A training institution as just registered."""

    id: int
    name: str
    licence_no: str
    region_code: str
    contact_phone: str = ""
    blacklisted: bool


class InstitutionOut(InstitutionCreatedOut):
    """A training institution (培训机构) with its blacklist state."""

    blacklist_reason: str


class InstitutionBlacklistOut(BaseModel):
    """An institution's blacklist state after the change."""

    id: int
    blacklisted: bool
    blacklist_reason: str


class LatLonOut(BaseModel):
    lat: float
    lon: float


class VenueOut(BaseModel):
    """A venue (培训场地) and its fence in WGS-84; `original` is the geometry as submitted, in its datum."""

    id: int
    institution_id: int
    name: str
    address: str
    region_code: str
    datum: str = Field(description="the datum the fence was drawn in: WGS-84, GCJ-02 or BD-09")
    shape: str = Field(description="circle | polygon")
    center_wgs84: LatLonOut
    radius_m: float | None = Field(description="circle radius in metres; null for a polygon")
    polygon_wgs84: list[list[float]] | None = Field(description="[[lat, lon], ...] in WGS-84; null for a circle")
    original: dict[str, Any] = Field(description="the datum and fence as submitted")


class OccupationOut(BaseModel):
    """An occupation (职业/工种) and whether it may be trained (clause 十三)."""

    id: int
    code: str
    name: str
    has_training_standard: bool
    has_evaluation_standard: bool
    has_evaluation_body: bool


class TraineeOut(BaseModel):
    """A trainee; the ID number is only ever shown masked."""

    id: int
    name: str
    id_number_masked: str
    face_templates: int = Field(description="enrolled face templates")
    phone_masked: str | None = Field(default=None, description="the trainee's mobile, masked (138****5678); null "
                                     "when none is on file")


class TeacherOut(TraineeOut):
    """A teacher, with qualifications and blacklist state."""

    qualifications: list[str]
    blacklisted: bool


class ClassSessionOut(BaseModel):
    """A daily session window, local (Asia/Shanghai) wall-clock times."""

    id: int
    name: str
    start: str = Field(description="HH:MM")
    end: str = Field(description="HH:MM")


class DeclarationOut(BaseModel):
    trainee_id: int
    category: str | None = Field(description="unemployed | rural | graduate | employee | other")
    voucher_no: str | None


class ClassOut(BaseModel):
    """A class (培训班次) with its sessions and roster."""

    id: int
    code: str
    name: str
    institution_id: int
    venue_id: int
    occupation_id: int
    mode: str = Field(description="offline | online")
    start_date: str = Field(description="YYYY-MM-DD")
    end_date: str = Field(description="YYYY-MM-DD")
    theory_teacher_id: int
    practical_teacher_id: int
    status: str
    liveness_required: bool
    sessions: list[ClassSessionOut]
    level: int | None = Field(description="the skill level trained for (1–5), none for 专项能力")
    trainee_ids: list[int]
    declarations: list[DeclarationOut] = Field(description="what the site declared per enrolment (category, "
                                               "voucher), for those it declared anything")


class TokenOut(BaseModel):
    """A bearer token, shown this once (only its hash is stored)."""

    id: int = Field(description="the token's record id (to list or revoke it; not a secret)")
    token: str
    role: str
    name: str


class MeOut(BaseModel):
    """Who the caller's token says it is: what a page needs to show only the controls its role may use."""

    role: str
    role_name: str = Field(description="the role in zh-CN")
    name: str = Field(description="who holds the token")
    institution_id: int | None
    region_codes: list[str]
    staff_id: int | None
    may: list[str] = Field(description="what the role may do on the desk pages: read_reports, decide_reviews, "
                           "mark_payable (the routes admit exactly these roles)")
    capability_roles: dict[str, list[str]] = Field(description="for each capability, the roles (zh-CN) that have it")


class TokenInfoOut(BaseModel):
    """A token as an admin manages it: its holder and scope, never the token or its hash."""

    id: int
    role: str
    name: str = Field(description="who holds it")
    institution_id: int | None
    region_codes: list[str]
    staff_id: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None
    active: bool = Field(description="neither revoked nor expired")


class StorageOut(BaseModel):
    """The evidence store's filesystem."""

    state: str = Field(description="ok | STORAGE_LOW (free space under MONITOR_STORAGE_LOW_FREE_MB)")
    free_bytes: int
    total_bytes: int
    low_below_bytes: int
    message: str = Field(description="zh-CN, when low")
    evidence_faults: str = Field(default="", description="zh-CN, while a stored file is altered or missing "
                                                         "(EVIDENCE_ALTERED on the wall); empty otherwise")


class AuditHealthOut(BaseModel):
    """Entries the sealer chained without believing them: no valid writer signature (put in at the database)."""

    untrusted: int = Field(description="how many (0: none)")
    untrusted_seq: int | None = Field(description="the last one's place in the chain")
    message: str = Field(description="zh-CN, when there are any")
    last_check: AuditCheckOut | None = Field(description="the scheduler's latest verification of the chain and the "
                                             "records (None before the first)")
    check_doubt: str = Field(default="", description="zh-CN, when the latest check's own record is not to be "
                             "believed (its seal does not hold, or a later check the chain notes is gone): degraded")


class HealthOut(BaseModel):
    """Whether the center is up: the database answered, which bus, whether this process runs the worker. A training
    site's token reads `status` alone (its page needs only to know the center answers; the center's storage, audit
    and processes are not an institution's to see)."""

    status: str = Field(description="ok | degraded (STORAGE_LOW, audit entries the product did not write, a failed "
                                    "audit check, an evidence file altered or missing, or the bus unreachable); "
                                    "`ok` for a site whenever the center answers")
    database: str | None = Field(default=None, description="the database dialect, e.g. sqlite or postgresql")
    bus: str | None = Field(default=None, description="in-process | redis-streams")
    bus_reachable: bool | None = Field(default=None, description="the bus answers now (Redis PING within a second); "
                                       "while it does not, uploads are still accepted and kept, and verified once "
                                       "it is back")
    worker: bool | None = None
    storage: StorageOut | None = None
    pid: int | None = Field(default=None, description="the answering process (several API processes may share one "
                                                      "port)")
    audit: AuditHealthOut | None = None

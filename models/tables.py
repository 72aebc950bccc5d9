"""The database schema (SQLAlchemy 2): registration, uploads, verification, anomalies, events, tokens, dispatch."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC and read back as aware UTC, on SQLite (no zone support) as on PostgreSQL.

    A naive value is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class shanghai_date(FunctionElement[Any]):  # noqa: N801 (an SQL function, named as one)
    """The Asia/Shanghai calendar day of a UTC timestamp column, computed by the database (for grouping by day).

    China has kept UTC+8 all year since 1991, so SQLite adds 8 hours; PostgreSQL converts by the zone's name. Only
    compare or group its values: SQLite returns the day as 'YYYY-MM-DD' text, PostgreSQL as a date."""

    inherit_cache = True


@compiles(shanghai_date, "sqlite")
def _shanghai_date_sqlite(element: shanghai_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"


@compiles(shanghai_date, "postgresql")
def _shanghai_date_postgresql(element: shanghai_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'Asia/Shanghai' AS DATE)"


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Region(Base):
    """A prefecture (州市) or county (县区) of Yunnan with its GB/T 2260 code."""

    __tablename__ = "regions"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    level: Mapped[str] = mapped_column(String(12))  # prefecture | county
    parent_code: Mapped[str | None] = mapped_column(String(6), ForeignKey("regions.code"), index=True)


class Institution(Base):
    __tablename__ = "institutions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    licence_no: Mapped[str] = mapped_column(String(64), unique=True)
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("regions.code"))
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    blacklist_reason: Mapped[str] = mapped_column(String(500), default="")
    contact_phone: Mapped[str] = mapped_column(String(20), default="")  # shown to the inspector sent there
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Venue(Base):
    """A training site's fence, stored in WGS-84; `original` keeps the geometry as submitted."""

    __tablename__ = "venues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("regions.code"))
    datum: Mapped[str] = mapped_column(String(8))
    shape: Mapped[str] = mapped_column(String(8))  # circle | polygon
    center_lat: Mapped[float] = mapped_column(Float)
    center_lon: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float | None] = mapped_column(Float)
    polygon: Mapped[list[Any] | None] = mapped_column(JSON)  # [[lat, lon], ...] in WGS-84
    original: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Occupation(Base):
    __tablename__ = "occupations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    has_training_standard: Mapped[bool] = mapped_column(Boolean, default=True)
    has_evaluation_standard: Mapped[bool] = mapped_column(Boolean, default=True)
    has_evaluation_body: Mapped[bool] = mapped_column(Boolean, default=True)


class Teacher(Base):
    __tablename__ = "teachers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20), default="")
    qualifications: Mapped[list[Any]] = mapped_column(JSON, default=list)
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Trainee(Base):
    __tablename__ = "trainees"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FaceTemplate(Base):
    """One enrolled face vector of a trainee or teacher, from one enrolment photo, made with one face model."""

    __tablename__ = "face_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_kind: Mapped[str] = mapped_column(String(10))  # trainee | teacher
    person_id: Mapped[int] = mapped_column(Integer, index=True)
    encoding: Mapped[list[Any]] = mapped_column(JSON)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"))
    model_version: Mapped[str] = mapped_column(String(64))  # manifest name @ weights' SHA-256 prefix
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_face_templates_person_model", "person_kind", "person_id", "model_version"),)


class TrainingClass(Base):
    __tablename__ = "classes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    occupation_id: Mapped[int] = mapped_column(ForeignKey("occupations.id"))
    mode: Mapped[str] = mapped_column(String(8))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    theory_teacher_id: Mapped[int] = mapped_column(ForeignKey("teachers.id"))
    practical_teacher_id: Mapped[int] = mapped_column(ForeignKey("teachers.id"))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    liveness_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    level: Mapped[int | None] = mapped_column(Integer, nullable=True)  # skill level trained for: 1 (一级) … 5 (五级)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClassSession(Base):
    """A daily time window of a class (local Asia/Shanghai wall-clock times, 'HH:MM')."""

    __tablename__ = "class_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    name: Mapped[str] = mapped_column(String(20))
    start_local: Mapped[str] = mapped_column(String(5))
    end_local: Mapped[str] = mapped_column(String(5))


class RosterEntry(Base):
    """A trainee on a class's roster, with what the site declared for the enrolment: the personnel category the
    subsidy is claimed under and the training voucher used (both cross-checked against the registers, clause 八)."""

    __tablename__ = "roster"
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), primary_key=True)
    trainee_id: Mapped[int] = mapped_column(ForeignKey("trainees.id"), primary_key=True, index=True)
    category: Mapped[str | None] = mapped_column(String(20), nullable=True)  # models.domain.TraineeCategory
    voucher_no: Mapped[str | None] = mapped_column(String(60), nullable=True)


class Evidence(Base):
    """A stored photo, addressed by the SHA-256 of its bytes; the file lives in the evidence store."""

    __tablename__ = "evidence"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckIn(Base):
    __tablename__ = "checkins"
    __table_args__ = (UniqueConstraint("institution_id", "idempotency_key"),
                      Index("ix_checkins_device_received", "device_id", "received_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trainee_id: Mapped[int] = mapped_column(ForeignKey("trainees.id"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("class_sessions.id"))
    kind: Mapped[str] = mapped_column(String(10))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float] = mapped_column(Float)
    device_id: Mapped[str] = mapped_column(String(100))
    mock_location: Mapped[bool] = mapped_column(Boolean, default=False)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|passed|failed|review
    liveness_challenge_id: Mapped[str | None] = mapped_column(ForeignKey("liveness_challenges.id"))


class LivenessChallenge(Base):
    """A random, short-lived, single-use action a trainee must perform on camera (blink, turn left/right)."""

    __tablename__ = "liveness_challenges"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"))
    trainee_id: Mapped[int] = mapped_column(ForeignKey("trainees.id"))
    action: Mapped[str] = mapped_column(String(12))  # blink | turn_left | turn_right
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_by_checkin_id: Mapped[int | None] = mapped_column(BigInteger)
    device_id: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ix_liveness_challenges_institution_issued", "institution_id", "issued_at"),)


class CheckInFrame(Base):
    """One frame of the burst a check-in sent to answer its liveness challenge."""

    __tablename__ = "checkin_frames"
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkins.id"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"))


class OnlineSession(Base):
    """One online-course study session of a trainee (clause 六): started, kept alive by face heartbeats, ended."""

    __tablename__ = "online_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    trainee_id: Mapped[int] = mapped_column(ForeignKey("trainees.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    device_id: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ix_online_sessions_institution_started", "institution_id", "started_at"),
                      Index("uq_online_sessions_open_trainee", "trainee_id", unique=True,  # one open session each
                            postgresql_where=text("ended_at IS NULL"), sqlite_where=text("ended_at IS NULL")))


class OnlineHeartbeat(Base):
    """A face photo taken at a random moment of an online session; verified like a check-in."""

    __tablename__ = "online_heartbeats"
    __table_args__ = (UniqueConstraint("session_id", "idempotency_key", name="uq_online_heartbeats_session_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("online_sessions.id"), index=True)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | passed | failed | review
    face_distance: Mapped[float | None] = mapped_column(Float)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))


class Snapshot(Base):
    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("institution_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    camera_id: Mapped[str] = mapped_column(String(100))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12), default="pending")


class OutboxMessage(Base):
    """A message accepted with its upload; relayed to the bus until a worker has processed it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times published to the bus
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # times its handler raised
    last_error: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (Index("ix_outbox_topic_subject", "topic", "subject_id"),)


class Verification(Base):
    """What the worker measured for one upload, with the thresholds and model version it used."""

    __tablename__ = "verifications"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(10))  # checkin | snapshot
    subject_id: Mapped[int] = mapped_column(BigInteger)
    passed: Mapped[bool] = mapped_column(Boolean)
    face_count: Mapped[int | None] = mapped_column(Integer)
    face_distance: Mapped[float | None] = mapped_column(Float)
    fence_result: Mapped[str | None] = mapped_column(String(10))
    fence_distance_m: Mapped[float | None] = mapped_column(Float)
    measured: Mapped[dict[str, Any]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(64))
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    face_encoding: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))  # no face: SQL NULL, not 'null'
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PhotoHash(Base):
    """The perceptual hash (64-bit pHash, hex) of every stored photo, for near-copy search."""

    __tablename__ = "photo_hashes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), index=True)
    phash: Mapped[str] = mapped_column(String(16))
    subject_kind: Mapped[str] = mapped_column(String(10))  # checkin | snapshot | enrolment
    subject_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewItem(Base):
    """A verdict the machine will not make (face distance in the grey zone): an operator decides."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_id", "reason_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    trainee_id: Mapped[int | None] = mapped_column(ForeignKey("trainees.id"))
    reason_code: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    measured: Mapped[dict[str, Any]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default="open")  # open | confirmed | rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class Anomaly(Base):
    __tablename__ = "anomalies"
    __table_args__ = (UniqueConstraint("rule", "subject_kind", "subject_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    trainee_id: Mapped[int | None] = mapped_column(ForeignKey("trainees.id"))
    subject_kind: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    region_code: Mapped[str] = mapped_column(String(6), index=True)  # prefecture
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default="open")  # open | resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_note: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """Repeats of one rule on one class within a window, grouped: what the dispatch center acts on."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    count: Mapped[int] = mapped_column(Integer)
    open_count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[str] = mapped_column(String(12), default="open")  # monitor.decisions.alert_lifecycle.AlertState
    resolved_note: Mapped[str | None] = mapped_column(Text)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"))
    outcome: Mapped[str | None] = mapped_column(String(24))
    assignee_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RuleSubject(Base):
    """The natural key of what a clock rule judged (e.g. NO_SHOW:class:session:day:trainee), so it fires once."""

    __tablename__ = "rule_subjects"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """One live-feed event; `id` is the increasing cursor a reconnecting client resumes from."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # anomaly | verdict | class_status
    region_code: Mapped[str | None] = mapped_column(String(6))
    class_id: Mapped[int | None] = mapped_column(Integer)
    institution_id: Mapped[int | None] = mapped_column(Integer)  # so a recused inspector is never shown it
    staff_id: Mapped[int | None] = mapped_column(Integer)  # an event for one inspector only (a page)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionReview(Base):
    """One class session of one day, judged once after it ended (teacher presence across its snapshots)."""

    __tablename__ = "session_reviews"
    __table_args__ = (UniqueConstraint("class_id", "session_id", "day"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id"))
    day: Mapped[date] = mapped_column(Date)
    snapshots: Mapped[int] = mapped_column(Integer)
    teachers_seen: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClassStatus(Base):
    """The last published state of a class (scheduled | in_session | between | finished)."""

    __tablename__ = "class_status"
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token, stored as its SHA-256 only, with the role and scope it grants."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(100))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"))
    region_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(200))  # the admin's reason (who: the audit chain)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # session tokens from a sign-in link


class SignInLink(Base):
    """A one-time sign-in link an admin issues to a staff member: stored as the code's SHA-256, valid once and
    briefly; redeeming it issues a session token bound to that person that expires after a working day."""

    __tablename__ = "sign_in_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    issued_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))


# -- the dispatch wing: staff, their duty and ties, alert transitions and pages -------------------------------
class Staff(Base):
    """A spot-check inspector (抽查人员): level, region, phone; their tokens name them (`api_tokens.staff_id`)."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(12))  # county | prefecture | province
    region_code: Mapped[str] = mapped_column(String(6))  # a county, a prefecture, or 530000 for the province
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffDuty(Base):
    """One on-duty period of an inspector (UTC); only inspectors on duty are paged."""

    __tablename__ = "staff_duty"
    __table_args__ = (Index("ix_staff_duty_staff_end", "staff_id", "ends_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffTie(Base):
    """A declared tie to an institution (clause 十六: own, spouse's, child's or child's spouse's): recusal."""

    __tablename__ = "staff_ties"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    relation: Mapped[str] = mapped_column(String(16))  # self | spouse | child | child_spouse
    note: Mapped[str | None] = mapped_column(Text)
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertTransition(Base):
    """One step of an alert's life: who, when, why (全程留痕)."""

    __tablename__ = "alert_transitions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    action: Mapped[str] = mapped_column(String(12))
    from_state: Mapped[str] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(100))  # a token's name, or "系统" for the router
    actor_role: Mapped[str] = mapped_column(String(12))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    outcome: Mapped[str | None] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The inspector's fix at arrival and how it lies against the venue's fence (inside | outside | uncertain).
    fix: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AlertPage(Base):
    """An alert sent to one inspector, with the time by which it must be accepted (survives restarts)."""

    __tablename__ = "alert_pages"
    __table_args__ = (Index("ix_alert_pages_state_deadline", "state", "deadline"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    level: Mapped[str] = mapped_column(String(12))
    round: Mapped[int] = mapped_column(Integer)
    paged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12))  # paged | accepted | expired | withdrawn
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PhoneCheck(Base):
    """A phone spot check of one class (电话抽查): the trainees drawn from a recorded seed, and its state."""

    __tablename__ = "phone_checks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # the caller: the alert's assignee
    inspector: Mapped[str] = mapped_column(String(100))  # the caller's registered name
    drawn_by: Mapped[str | None] = mapped_column(String(100))  # who drew it (None: before 0037)
    drawn_by_token_id: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(64))
    drawn: Mapped[list[Any]] = mapped_column(JSON)  # trainee ids in call order
    state: Mapped[str] = mapped_column(String(12))  # open | done | abandoned (its alert ended first)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PhoneCall(Base):
    """One call of a phone check: reached or not, whether the trainee confirmed being in class, what was said."""

    __tablename__ = "phone_calls"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("phone_checks.id"), index=True)
    trainee_id: Mapped[int] = mapped_column(ForeignKey("trainees.id"))
    reached: Mapped[bool] = mapped_column(Boolean)
    present: Mapped[bool | None] = mapped_column(Boolean)
    answers: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[int] = mapped_column(Integer)  # ended_at - started_at, from the page's own events
    called_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the server recorded it
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the page opened the tel: link
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the page came back from the call
    timing: Mapped[str] = mapped_column(String(12), default="page")  # page | typed (rows before 0019)
    callee: Mapped[str] = mapped_column(String(20), default="")  # the number dialled (the roster's, at the time)
    cdr_state: Mapped[str] = mapped_column(String(12), default="unchecked")  # unchecked | confirmed | unconfirmed
    cdr_ref: Mapped[str | None] = mapped_column(String(200))  # the matching CDR row: import id, caller, start
    recorded_by: Mapped[str | None] = mapped_column(String(100))  # who recorded it (None: before 0037)
    recorded_by_token_id: Mapped[int | None] = mapped_column(Integer)


class CdrImport(Base):
    """One call-detail-record file imported from a call center: its digest, format and what it confirmed."""

    __tablename__ = "cdr_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(20))
    rows: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer)
    unconfirmed: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- register extracts (issue 20 item 1, clause 八/九): imports and their rows, ID numbers as keyed hashes -------------
class RegisterImport(Base):
    """One register extract delivered by another department: its file's digest, source, period, counts, the first
    row errors and a masked sample, its author and state. `preview` (rows staged, not counted), `committed` (the
    source's active extract), `replaced` (a newer or corrected period of the same source was committed; its rows
    are deleted), `refused` (a preview with bad rows: nothing staged). Audited: the row tables are not, row by
    row; this record is."""

    __tablename__ = "register_imports"
    __table_args__ = (Index("ix_register_imports_source_state", "source", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    file_kind: Mapped[str] = mapped_column(String(8))  # xlsx | csv
    rows_accepted: Mapped[int] = mapped_column(Integer)
    rows_refused: Mapped[int] = mapped_column(Integer)
    errors: Mapped[list[Any]] = mapped_column(JSON)  # the first 50: {"row": n, "reason": "…"}
    sample: Mapped[list[Any]] = mapped_column(JSON)  # the first accepted rows, ID numbers masked
    key_id: Mapped[str] = mapped_column(String(40))  # the hashing key's id (a key change makes old hashes unusable)
    state: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    committed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replaced_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the staged rows' digest (models/audit_rows.py ExtractDigest): the row tables are not audited row by row, so the
    # audit check holds a preview's or the active extract's rows to this, recorded in the chain with the import
    rows_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RegisterRow:
    """What every register extract's row has: its import, its row number in the file (for the error report), and
    the keyed hash of the person's ID number (monitor/adapters/register_keys.py; never the number)."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("register_imports.id", ondelete="CASCADE"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    id_hash: Mapped[str] = mapped_column(String(64), index=True)


class RegisterInsurance(RegisterRow, Base):
    """社会保险参保缴费: who was insured by which employer, where, over which months."""

    __tablename__ = "register_insurance"
    employer: Mapped[str] = mapped_column(String(200))
    county_code: Mapped[str] = mapped_column(String(6))
    month_from: Mapped[str] = mapped_column(String(7))
    month_to: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str | None] = mapped_column(String(40), nullable=True)


class RegisterEmployment(RegisterRow, Base):
    """就业失业登记: a registration's state, date and place."""

    __tablename__ = "register_employment"
    state: Mapped[str] = mapped_column(String(20))
    registered_on: Mapped[date] = mapped_column(Date)
    county_code: Mapped[str] = mapped_column(String(6))


class RegisterCertificate(RegisterRow, Base):
    """职业技能等级证书: occupation, level (1 = 一级/高级技师 … 5 = 五级/初级工), number and date."""

    __tablename__ = "register_certificates"
    occupation_code: Mapped[str] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(Integer)
    certificate_no: Mapped[str] = mapped_column(String(60))
    issued_on: Mapped[date] = mapped_column(Date)


class RegisterTeacher(RegisterRow, Base):
    """师资库: a teacher's qualifications and annual check (clause 九)."""

    __tablename__ = "register_teachers"
    qualifications: Mapped[str] = mapped_column(String(200))
    check_result: Mapped[str] = mapped_column(String(20))
    check_year: Mapped[int] = mapped_column(Integer)


class RegisterVoucher(RegisterRow, Base):
    """培训券: a voucher, its holder, occupation, state and dates."""

    __tablename__ = "register_vouchers"
    voucher_no: Mapped[str] = mapped_column(String(60), index=True)
    occupation_code: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    issued_on: Mapped[date] = mapped_column(Date)
    used_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class CrossCheckRun(Base):
    """One cross-check of one class against the registers (clause 八/九): when, which extracts (source → import id,
    period, SHA-256) it relied on, and what it found, raised and resolved. The payment list cites the latest."""

    __tablename__ = "crosscheck_runs"
    __table_args__ = (Index("ix_crosscheck_runs_class_at", "class_id", "ran_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"))
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imports: Mapped[dict[str, Any]] = mapped_column(JSON)
    trainees: Mapped[int] = mapped_column(Integer)
    findings: Mapped[int] = mapped_column(Integer)
    raised: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)


class ClassPayment(Base):
    """A class marked payable (可拨付): by whom and when, the trainees found eligible, and the cross-check and
    register periods the decision relied on (stated on the payment list). One per class; audited."""

    __tablename__ = "class_payments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), unique=True)
    marked_by: Mapped[str] = mapped_column(String(100))
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(500), default="")
    eligible_trainee_ids: Mapped[list[Any]] = mapped_column(JSON)
    crosscheck_run_id: Mapped[int] = mapped_column(BigInteger)
    crosscheck_at: Mapped[datetime] = mapped_column(UTCDateTime)
    register_periods: Mapped[dict[str, Any]] = mapped_column(JSON)  # source → period of the extract relied on
    ledger_sha256: Mapped[str] = mapped_column(String(64))  # the ledger rows the decision was made on


class InstitutionEmployment(Base):
    """An institution's post-training employment (clause 八): completed trainees whose six months after the class the
    insurance extract covers, those insured as employees within them, against the provincial median; computed with
    each cross-check and read by the draw's risk weight and the institution's figures."""

    __tablename__ = "institution_employment"
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), primary_key=True)
    insurance_period: Mapped[str] = mapped_column(String(7))
    completed: Mapped[int] = mapped_column(Integer)
    employed: Mapped[int] = mapped_column(Integer)
    median_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    shortfall: Mapped[float] = mapped_column(Float)  # below the median as a share of it (0: at or above, or too few)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotentRequest(Base):
    """A creating POST made with an `Idempotency-Key`: who (the SHA-256 of the caller's token), where, the key and the
    request's SHA-256, and the first answer (kept once it succeeded), so a repeated submission gets the first record
    back and never makes a second (monitor/api/idempotency.py). Kept for a day."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("caller_sha256", "path", "key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    caller_sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(100))
    request_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))  # running | committed (wrote, not yet answered) | lost | done
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    seal: Mapped[str | None] = mapped_column(String(200))  # HMAC of the kept answer with the audit key


class Lease(Base):
    """A named lease one process holds at a time (the scheduler's: monitor/services/leader.py)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)



class PublicNotice(Base):
    """The public notice (公示) as last built, shared by every API process (monitor/services/ledger.py NoticeCache):
    the database version it was built at, and the claim of the one process building the next (none while idle).
    Derived from audited rows, so not audited itself."""

    __tablename__ = "public_notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    version: Mapped[str] = mapped_column(String(200))
    built_at: Mapped[datetime] = mapped_column(UTCDateTime)
    classes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    building_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # `key_id:mac`, an HMAC with the audit key over version, time and classes (monitor/services/ledger.py
    # `notice_seal`): a notice rewritten at the database is not served but built again
    seal: Mapped[str | None] = mapped_column(String(200), nullable=True)


SEALER_FINDINGS = ("audit.untrusted", "audit.rolled_back")
"""The sealer's own entries when it chains an entry it does not believe, or finds the chain rolled back."""
SEALER_FINDINGS_WHERE = "action IN (" + ", ".join(f"'{action}'" for action in SEALER_FINDINGS) + ")"
"""The same as SQL text with literal values: a partial index is used only when a query's condition is the index's."""
CHECKS_WHERE = "action = 'audit.checked'"
"""The chain's notes of periodic checks (`latest_check` compares the latest with the checks' table)."""


# -- the audit chain (全程留痕): every state change, hash-chained -----------------------------------------------------
class AuditEntry(Base):
    """One state change, written in the change's own transaction, then sealed into the chain (its `seq` and hash,
    which covers the hash before it) by the worker within seconds: changing, deleting or reordering a sealed entry
    breaks the chain at that entry (`monitor audit verify`)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_actor_seq", "actor", "seq"),  # one actor's entries, a page at a time
                      Index("ix_audit_entries_at", "at"),  # a time window (GET /audit?since=&until=)
                      Index("ix_audit_entries_signature", "signature", unique=True),  # a copied entry is refused
                      Index("ix_audit_entries_sealer_findings", "seq", postgresql_where=text(SEALER_FINDINGS_WHERE),
                            sqlite_where=text(SEALER_FINDINGS_WHERE)),  # the wall's alarm counts them
                      Index("ix_audit_entries_checks", "id", postgresql_where=text(CHECKS_WHERE),
                            sqlite_where=text(CHECKS_WHERE)))  # the latest periodic check the chain notes
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # None until sealed
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(12))
    token_id: Mapped[int | None] = mapped_column(Integer)  # the token a write was made with (None: the system)
    action: Mapped[str] = mapped_column(String(60))  # e.g. trainees.insert, alert_transitions.insert, export
    subject_kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(80))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))  # the audit key its HMAC was made with (None: SHA-256)
    # The writer's signature, `key_id:nonce:hmac` (models/audit_chain.sign_entry), made with the audit key in the
    # change's own transaction; unique, so a copied entry cannot be inserted. None only on entries written before
    # signatures (migration 0029): after the first signed entry, verification flags an unsigned one.
    signature: Mapped[str | None] = mapped_column(String(120))


class AuditCheckRow(Base):
    """One verification the scheduler ran on its own (every `audit_check_interval_seconds`): the chain with its keys,
    signatures and anchors, and every audited row against it. The latest one not intact is an alarm on the wall;
    each is also noted in the chain (`audit.checked`)."""

    __tablename__ = "audit_checks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    intact: Mapped[bool] = mapped_column(Boolean)
    entries_checked: Mapped[int] = mapped_column(BigInteger)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    broken_seq: Mapped[int | None] = mapped_column(BigInteger)
    broken_kind: Mapped[str | None] = mapped_column(String(20))
    rows_checked: Mapped[int] = mapped_column(BigInteger)
    row_findings: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(1000))
    seal: Mapped[str | None] = mapped_column(String(200))  # HMAC of the result with the audit key (`check_fields`)


class AuditCheckRequest(Base):
    """An auditor's request for a whole check now, run by the scheduler rather than inside an HTTP request (at
    province size a check takes minutes to hours). One check answers every request waiting when it started
    (`check_id`); who asked is the insert's audit entry."""

    __tablename__ = "audit_check_requests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_id: Mapped[int | None] = mapped_column(ForeignKey("audit_checks.id"))


class EvidenceFaultRow(Base):
    """An evidence file found not to be what its name says (`altered`: its bytes hash to `found_sha256`; `missing`),
    and where it was found (serve, form_pdf, worker, verify, sweep). Open until a later check finds the genuine
    bytes again (`restored_at`); while open it is the wall's EVIDENCE_ALTERED alarm. Audited: a fault cannot be
    deleted or closed behind the chain's back."""

    __tablename__ = "evidence_faults"
    __table_args__ = (Index("ix_evidence_faults_open", "restored_at", "sha256"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    found_sha256: Mapped[str | None] = mapped_column(String(64))
    detected_by: Mapped[str] = mapped_column(String(20))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    restored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditHead(Base):
    """The chain's last sequence number and hash (one row): the sealer locks it, so entries are chained one at a
    time, and a deleted last entry shows."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # Entries the sealer chained without believing them (no valid writer signature: put in by someone at the
    # database), how many and the last one's seq: the wall's and /health's alarm. The sealer's own entry
    # (`audit.untrusted`) records each in the chain as well, where resetting these does not reach.
    untrusted: Mapped[int | None] = mapped_column(Integer)
    untrusted_seq: Mapped[int | None] = mapped_column(BigInteger)


class Inspection(Base):
    """A filed 《职业技能培训班检查表》 (clause 十四): the checklist, findings, photos, the inspected unit's responsible
    person and signature, and the PDF of the filled form with its SHA-256 (all in the evidence store)."""

    __tablename__ = "inspections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    inspector: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(12))  # on_site | phone
    items: Mapped[dict[str, Any]] = mapped_column(JSON)  # checklist item -> {result, note}
    headcount_registered: Mapped[int] = mapped_column(Integer)
    headcount_present: Mapped[int | None] = mapped_column(Integer)
    findings: Mapped[str] = mapped_column(Text)
    responsible_name: Mapped[str] = mapped_column(String(50))
    signature_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"))
    photo_sha256s: Mapped[list[Any]] = mapped_column(JSON)  # also rows of inspection_photos (for authorisation)
    pdf_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), index=True)
    inspected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The inspector's fix when filing, judged against the venue's fence (fence_result unproven without one).
    fix: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The inspector's own signature (forms filed before 0020 have none), and the SHA-256 of the form's record (its
    # canonical JSON: monitor.decisions.form_record), which the printed QR code carries and /verify recomputes.
    inspector_signature_sha256: Mapped[str | None] = mapped_column(String(64))
    record_sha256: Mapped[str | None] = mapped_column(String(64), index=True)


class InspectionPhoto(Base):
    """A photo taken during an inspection (in the evidence store), so that its viewers can be authorised."""

    __tablename__ = "inspection_photos"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), index=True)
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the page took it (its own clock)
    fix: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the phone's fix then, judged against the fence
    exif_taken_at: Mapped[str | None] = mapped_column(String(19))  # EXIF DateTimeOriginal (camera local, no zone)


class Draw(Base):
    """A day's 双随机 draw (the daily one, then supplementary ones for classes registered later): the candidates with
    their risk, the seed, the classes and inspectors drawn; kept from sites and published (seed and algorithm
    version included, so anyone can re-run it) once its inspection window has passed."""

    __tablename__ = "draws"
    __table_args__ = (UniqueConstraint("day", "seq", name="uq_draws_day_seq"),)  # one winner per day and number
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16), default="daily")  # daily (seq 1) | supplementary (seq 2, 3, …)
    seq: Mapped[int] = mapped_column(Integer, default=1)
    algorithm: Mapped[str] = mapped_column(String(40), default="yn-draw/1")  # the version a re-run must use
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # how many it takes: rate, at_most, take_all
    seed: Mapped[str] = mapped_column(String(64))
    candidates: Mapped[list[Any]] = mapped_column(JSON)
    classes: Mapped[list[Any]] = mapped_column(JSON)  # drawn class ids, in drawn order
    inspectors: Mapped[dict[str, Any]] = mapped_column(JSON)  # class id -> staff id (or null)
    roster: Mapped[list[Any]] = mapped_column(JSON)  # the inspectors it drew from: id, level, region, ties
    window_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BlacklistDecision(Base):
    """Who put an institution or teacher on the blacklist, or took it off, when, why and on what evidence (alerts,
    inspections); a teacher banned for fraud is banned for life (clause 九)."""

    __tablename__ = "blacklist_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(12))  # institution | teacher
    subject_id: Mapped[int] = mapped_column(Integer, index=True)
    blacklisted: Mapped[bool] = mapped_column(Boolean)
    lifetime: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(500))
    alert_ids: Mapped[list[Any]] = mapped_column(JSON)
    inspection_ids: Mapped[list[Any]] = mapped_column(JSON)
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Objection(Base):
    """An institution's objection (异议) to an alert of its class closed against it (a confirmed violation, or "could
    not verify"): its reason, the deadline for the center's decision, and the decision by a second person (never
    the one who closed the alert nor anyone who acted on it). Upheld, the alert goes back to the center (reopened,
    `reopen_transition_id`); rejected, the finding stands."""

    __tablename__ = "objections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    # The closing objected to (its transition): one objection per closing, however many requests race.
    closing_transition_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("alert_transitions.id"), unique=True)
    alert_outcome: Mapped[str] = mapped_column(String(24))  # the outcome objected to
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default="submitted")  # submitted | upheld | rejected
    submitted_by: Mapped[str] = mapped_column(String(100))  # the site token's name
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    decide_by: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_role: Mapped[str | None] = mapped_column(String(12))
    decided_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    reopen_transition_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("alert_transitions.id"))


class Camera(Base):
    """A classroom camera of a venue (issue 19): its stream without credentials, the credentials encrypted with a
    key kept outside the database (monitor/adapters/camera_keys.py), and how often a frame is taken."""

    __tablename__ = "cameras"
    __table_args__ = (UniqueConstraint("venue_id", "name", name="uq_cameras_venue_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    stream_url: Mapped[str] = mapped_column(String(500))  # never with a user or password in it
    kind: Mapped[str] = mapped_column(String(8))  # rtsp | http | hls | file
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)  # Fernet token of {"username", "password"}
    key_id: Mapped[str | None] = mapped_column(String(40))  # which camera key encrypted them
    interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CameraHealth(Base):
    """What the pullers know of one camera: its state (ok | offline | frozen | idle) since when, its last frame and
    error, and the lease that lets one puller at a time take it (not audited: it changes with every pull)."""

    __tablename__ = "camera_health"
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(8), default="idle")
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive pulls that gave no usable frame
    same_frames: Mapped[int] = mapped_column(Integer, default=0)  # consecutive pulls showing the previous frame
    last_snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    next_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

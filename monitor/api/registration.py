"""The office's registration API: regions, institutions, venues, occupations, people, classes, tokens.

Every face enrolment is searched 1:N against all enrolled trainees and teachers of the province
(`monitor.adapters.face_index`, decided by `monitor.decisions.identity_match`): one face under another ID number is
refused as DUPLICATE_IDENTITY (the admin is shown the other record, ID number masked), a look-alike
is accepted with a medium DUPLICATE_IDENTITY anomaly for an operator to review.
"""

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, UploadFile, params
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.adapters.evidence import EvidenceStore
from ingest.adapters.images import inspect_image
from models.clock import utc_now
from models.domain import (
    AnomalyCode,
    BlacklistIn,
    CircleFence,
    ClassIn,
    Datum,
    InstitutionIn,
    LivenessSettingIn,
    OccupationIn,
    PersonIn,
    Principal,
    Role,
    RosterIn,
    Severity,
    TeacherIn,
    TokenIn,
    VenueIn,
)
from models.errors import ApiError, errors
from models.identity import explain_id_number_problem, mask_id_number, normalise_id_number
from models.params import Limit, RecordIdPath
from models.scope import (
    CENTER_ROLES,
    Scope,
    ensure_class,
    institution_clause,
    refuse_missing,
    trainee_visible,
    venue_clause,
)
from models.tables import (
    ClassSession,
    Evidence,
    FaceTemplate,
    Institution,
    Occupation,
    PhotoHash,
    Region,
    RosterEntry,
    Teacher,
    Trainee,
    TrainingClass,
    Venue,
)
from monitor.adapters.face_engine import FaceEngine, ProcessFaceEngine
from monitor.adapters.face_index import (
    FaceIndex,
    FaceVector,
    IdentityMatch,
    lock_enrolments,
    nearest_templates,
    vector_bytes,
)
from monitor.adapters.storage import Database
from monitor.adapters.tokens import issue_token
from monitor.decisions.faces import explain_enrolment_problem
from monitor.decisions.geodesy import convert_to_wgs84
from monitor.decisions.identity_match import REASON_TEXT, DuplicateThresholds, IdentityDecision, PersonRef, decide
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import add_anomaly, class_context
from monitor.settings import Settings

T = TypeVar("T")
KIND_NAMES = {"trainee": "学员", "teacher": "教师"}
CONFIRM_DISTINCT = ("true after checking the papers that the person is not the one the 1:N search cites "
                    "(e.g. twins): the enrolment is stored, the match kept with the admin's name")
log = logging.getLogger(__name__)


def get_or_404(session: Session, model: type[T], key: Any, code: str, label: str) -> T:
    row = session.get(model, key)
    if row is None:
        raise ApiError(404, code, f"{label} {key} 不存在")
    return row


def check_region(session: Session, code: str, level: str | None = None) -> Region:
    region = session.get(Region, code)
    if region is None or (level and region.level != level):
        raise ApiError(422, "UNKNOWN_REGION", f"未知的{'县区' if level == 'county' else '行政区划'}代码 {code}")
    return region


def check_class_rules(
    cls: ClassIn, institution: Institution, venue: Venue, occupation: Occupation, theory: Teacher, practical: Teacher
) -> None:
    """The registration rules of the notice: clauses 九 (teachers), 十三 (occupation), 十九 (blacklist)."""
    if cls.theory_teacher_id == cls.practical_teacher_id or theory.id_number == practical.id_number:
        raise ApiError(422, "SAME_TEACHER_BOTH", "理论教师与实操教师不得由同一人担任（通知第九条）")
    if institution.blacklisted:
        raise ApiError(
            422, "INSTITUTION_BLACKLISTED", f"培训机构“{institution.name}”已列入黑名单，不得开班（通知第十九条）"
        )
    for teacher in (theory, practical):
        if teacher.blacklisted:
            raise ApiError(422, "TEACHER_BLACKLISTED", f"教师“{teacher.name}”已列入黑名单，不得授课（通知第九条）")
    if venue.institution_id != institution.id:
        raise ApiError(422, "VENUE_NOT_OF_INSTITUTION", "培训场地不属于该培训机构")
    missing = [
        name
        for ok, name in (
            (occupation.has_training_standard, "培训标准"),
            (occupation.has_evaluation_standard, "评价标准"),
            (occupation.has_evaluation_body, "评价考核机构"),
        )
        if not ok
    ]
    if missing:
        raise ApiError(
            422,
            "CLASS_NOT_ALLOWED",
            f"职业（工种）“{occupation.name}”无{'、'.join(missing)}，不得批准开班（通知第十三条）",
        )


def venue_out(v: Venue) -> dict[str, Any]:
    return {"id": v.id, "institution_id": v.institution_id, "name": v.name, "address": v.address,
            "region_code": v.region_code, "datum": v.datum, "shape": v.shape,
            "center_wgs84": {"lat": v.center_lat, "lon": v.center_lon}, "radius_m": v.radius_m,
            "polygon_wgs84": v.polygon, "original": v.original}


def person_out(p: Trainee | Teacher, templates: int) -> dict[str, Any]:
    out = {"id": p.id, "name": p.name, "id_number_masked": mask_id_number(p.id_number), "face_templates": templates}
    if isinstance(p, Teacher):
        out |= {"qualifications": p.qualifications, "blacklisted": p.blacklisted}
    return out


def class_out(session: Session, c: TrainingClass) -> dict[str, Any]:
    sessions = session.scalars(select(ClassSession).where(ClassSession.class_id == c.id)).all()
    roster = session.scalars(select(RosterEntry.trainee_id).where(RosterEntry.class_id == c.id)).all()
    return {"id": c.id, "code": c.code, "name": c.name, "institution_id": c.institution_id, "venue_id": c.venue_id,
            "occupation_id": c.occupation_id, "mode": c.mode, "start_date": c.start_date.isoformat(),
            "end_date": c.end_date.isoformat(), "theory_teacher_id": c.theory_teacher_id,
            "practical_teacher_id": c.practical_teacher_id, "status": c.status,
            "liveness_required": c.liveness_required,
            "sessions": [{"id": s.id, "name": s.name, "start": s.start_local, "end": s.end_local} for s in sessions],
            "trainee_ids": sorted(roster)}


# -- 1:N duplicate identity ------------------------------------------------------------------
def duplicate_thresholds(settings: Settings) -> DuplicateThresholds:
    return DuplicateThresholds(max_distance=settings.duplicate_max_distance,
                               review_distance=settings.duplicate_review_distance,
                               margin=settings.duplicate_margin, neighbours=settings.duplicate_neighbours)


def person_row(session: Session, kind: str, person_id: int) -> Trainee | Teacher | None:
    return session.get(Trainee if kind == "trainee" else Teacher, person_id)


def cited_person(session: Session, kind: str, person_id: int) -> dict[str, Any]:
    """Whom a match cites, as an authorised role may see it (ID number masked)."""
    row = person_row(session, kind, person_id)
    return {"kind": kind, "kind_name": KIND_NAMES[kind], "id": person_id, "name": row.name if row else "",
            "id_number_masked": mask_id_number(row.id_number) if row else ""}


def describe(person: dict[str, Any]) -> str:
    return f"{person['kind_name']}{person['name']}（身份证号 {person['id_number_masked']}）"


def classes_of(session: Session, kind: str, person_id: int) -> list[TrainingClass]:
    if kind == "trainee":
        query = select(TrainingClass).join(RosterEntry, RosterEntry.class_id == TrainingClass.id).where(
            RosterEntry.trainee_id == person_id)
    else:
        query = select(TrainingClass).where(or_(TrainingClass.theory_teacher_id == person_id,
                                                TrainingClass.practical_teacher_id == person_id))
    return list(session.scalars(query))


def match_message(session: Session, match: IdentityMatch) -> str:
    person = describe(cited_person(session, match.person_kind, match.person_id))
    other = describe(cited_person(session, match.other_kind, match.other_id))
    t = match.thresholds
    nxt = match.measured.get("next_person_distance")
    nxt_text = f"，次近人员 {nxt:.2f}" if nxt is not None else ""
    if match.outcome == "duplicate":
        text = (f"{person}的登记照片与{other}已登记的人脸为同一人（相似距离 {match.distance:.2f}，"
                f"阈值 {t['max_distance']:.2f}{nxt_text}）：疑似一人多证/冒名（通知第八条）")
        if match.state == "refused":
            return text + "，登记已拒绝"
        return text + f"，管理员“{match.decided_by}”确认为不同人员后予以登记"
    reasons = "；".join(REASON_TEXT.get(r, r) for r in match.reasons)
    return (f"{person}的登记照片与{other}相貌相近（相似距离 {match.distance:.2f}，复核阈值 "
            f"{t['review_distance']:.2f}{nxt_text}）：{reasons}，请人工核验是否同一人")


def raise_identity_anomaly(session: Session, match: IdentityMatch) -> bool:
    """Put a match on the wall screen as a DUPLICATE_IDENTITY anomaly of a class of either person.

    A person on no class yet has nowhere to show: the match waits (anomaly_id empty) until either joins a class.
    """
    if match.anomaly_id is not None:
        return False
    today = datetime.now(UTC).date()
    classes = {c.id: c for c in classes_of(session, match.person_kind, match.person_id)
               + classes_of(session, match.other_kind, match.other_id)}
    if not classes:
        return False
    cls = max(classes.values(), key=lambda c: (c.end_date >= today, c.id))
    severity = Severity.HIGH if match.outcome == "duplicate" and match.state == "refused" else Severity.MEDIUM
    person = cited_person(session, match.person_kind, match.person_id)
    other = cited_person(session, match.other_kind, match.other_id)
    trainee = next((p for p in (person, other) if p["kind"] == "trainee"), None)
    finding = Finding(
        code=AnomalyCode.DUPLICATE_IDENTITY, severity=severity, message=match_message(session, match),
        evidence={**match.measured, "outcome": match.outcome, "state": match.state, "distance": match.distance,
                  "person": person, "other": other, "other_template_id": match.other_template_id},
        thresholds=match.thresholds,
    )
    anomaly = add_anomaly(
        session, class_context(session, cls), finding, "identity", match.id,
        {"trainee_id": trainee["id"] if trainee else None, "trainee_name": trainee["name"] if trainee else None},
        {"photo_sha256": match.photo_sha256, "enrolled_photo_sha256": match.other_photo_sha256,
         "identity_match_id": match.id}, {})
    match.anomaly_id = anomaly.id
    return True


def raise_pending_identity_anomalies(session: Session, people: list[tuple[str, int]]) -> int:
    """Matches of these people that had no class to show on (they just joined one)."""
    if not people:
        return 0
    conditions = [((IdentityMatch.person_kind == k) & (IdentityMatch.person_id == i))
                  | ((IdentityMatch.other_kind == k) & (IdentityMatch.other_id == i)) for k, i in people]
    pending = session.scalars(select(IdentityMatch).where(IdentityMatch.anomaly_id.is_(None), or_(*conditions))
                              .order_by(IdentityMatch.id)).all()
    return sum(raise_identity_anomaly(session, m) for m in pending)


def identity_match_out(session: Session, m: IdentityMatch) -> dict[str, Any]:
    return {"id": m.id, "outcome": m.outcome, "state": m.state, "distance": m.distance,
            "person": cited_person(session, m.person_kind, m.person_id),
            "other": cited_person(session, m.other_kind, m.other_id), "reasons": m.reasons,
            "message": match_message(session, m), "measured": m.measured, "thresholds": m.thresholds,
            "photo_sha256": m.photo_sha256, "other_photo_sha256": m.other_photo_sha256,
            "anomaly_id": m.anomaly_id, "decided_by": m.decided_by, "created_at": m.created_at.isoformat()}


def build_registration_router(
    settings: Settings, db: Database, evidence: EvidenceStore, engine: FaceEngine | ProcessFaceEngine,
    access: Callable[..., params.Depends],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["registration"])
    admin = Annotated[Scope, access(Role.ADMIN)]
    reader = Annotated[Scope, access(*CENTER_ROLES)]
    anyone = Annotated[Scope, access()]
    face_index = FaceIndex()
    enrol_lock = threading.Lock()
    thresholds = duplicate_thresholds(settings)

    def warm_face_index() -> None:
        try:
            with db.session() as session:
                loaded = face_index.refresh(session)
            log.info("face index: %d templates loaded", loaded)
        except Exception:  # noqa: BLE001 - the first enrolment loads it again
            log.exception("face index warm-up failed")

    threading.Thread(target=warm_face_index, name="face-index-warm-up", daemon=True).start()

    def insert(session: Session, row: T, conflict_code: str, conflict_message: str) -> T:
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError as exc:
            raise ApiError(409, conflict_code, conflict_message) from exc
        return row

    # -- regions -------------------------------------------------------------------------
    @router.get("/regions", summary="Yunnan's prefectures with their counties (GB/T 2260)")
    def list_regions(scope: anyone) -> list[dict[str, Any]]:
        with db.session() as session:
            rows = session.scalars(select(Region).order_by(Region.code)).all()
        prefectures = [r for r in rows if r.level == "prefecture"]
        return [
            {"code": p.code, "name": p.name,
             "counties": [{"code": c.code, "name": c.name} for c in rows if c.parent_code == p.code]}
            for p in prefectures
        ]

    # -- institutions --------------------------------------------------------------------
    @router.post("/institutions", status_code=201, responses=errors(409))
    def create_institution(body: InstitutionIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            check_region(session, body.region_code)
            row = insert(session, Institution(**body.model_dump(), blacklisted=False, blacklist_reason="",
                                              created_at=utc_now()),
                         "DUPLICATE_LICENCE", f"办学许可证号 {body.licence_no} 已登记")
            return {"id": row.id, **body.model_dump(), "blacklisted": False}

    @router.get("/institutions")
    def list_institutions(scope: reader) -> list[dict[str, Any]]:
        with db.session() as session:
            return [{"id": i.id, "name": i.name, "licence_no": i.licence_no, "region_code": i.region_code,
                     "blacklisted": i.blacklisted, "blacklist_reason": i.blacklist_reason}
                    for i in session.scalars(select(Institution).where(institution_clause(scope))
                                             .order_by(Institution.id))]

    @router.put("/institutions/{institution_id}/blacklist")
    def set_institution_blacklist(institution_id: RecordIdPath, body: BlacklistIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            row = get_or_404(session, Institution, institution_id, "UNKNOWN_INSTITUTION", "培训机构")
            row.blacklisted, row.blacklist_reason = body.blacklisted, body.reason
            return {"id": row.id, "blacklisted": row.blacklisted, "blacklist_reason": row.blacklist_reason}

    # -- venues --------------------------------------------------------------------------
    @router.post("/venues", status_code=201, responses=errors(404, 409))
    def create_venue(body: VenueIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            get_or_404(session, Institution, body.institution_id, "UNKNOWN_INSTITUTION", "培训机构")
            check_region(session, body.region_code, "county")
            datum = Datum(body.datum)
            fence = body.fence
            if isinstance(fence, CircleFence):
                lat, lon = convert_to_wgs84(fence.center.lat, fence.center.lon, datum)
                radius, polygon = fence.radius_m, None
            else:
                polygon = [list(convert_to_wgs84(p.lat, p.lon, datum)) for p in fence.points]
                lat = sum(p[0] for p in polygon) / len(polygon)
                lon = sum(p[1] for p in polygon) / len(polygon)
                radius = None
            row = insert(session, Venue(
                institution_id=body.institution_id, name=body.name, address=body.address,
                region_code=body.region_code, datum=datum.value, shape=fence.shape, center_lat=lat,
                center_lon=lon, radius_m=radius, polygon=polygon,
                original={"datum": datum.value, "fence": fence.model_dump()}, created_at=utc_now(),
            ), "DUPLICATE_VENUE", "场地已存在")
            return venue_out(row)

    @router.get("/venues")
    def list_venues(scope: reader) -> list[dict[str, Any]]:
        with db.session() as session:
            return [venue_out(v) for v in session.scalars(select(Venue).where(venue_clause(scope)).order_by(Venue.id))]

    # -- occupations ---------------------------------------------------------------------
    @router.post("/occupations", status_code=201, responses=errors(409))
    def create_occupation(body: OccupationIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            row = insert(session, Occupation(**body.model_dump()), "DUPLICATE_OCCUPATION",
                         f"职业（工种）代码 {body.code} 已登记")
            return {"id": row.id, **body.model_dump()}

    @router.get("/occupations")
    def list_occupations(scope: reader) -> list[dict[str, Any]]:
        with db.session() as session:
            return [{"id": o.id, "code": o.code, "name": o.name,
                     "has_training_standard": o.has_training_standard,
                     "has_evaluation_standard": o.has_evaluation_standard,
                     "has_evaluation_body": o.has_evaluation_body}
                    for o in session.scalars(select(Occupation).order_by(Occupation.id))]

    # -- people --------------------------------------------------------------------------
    def validated_id_number(raw: str) -> str:
        problem = explain_id_number_problem(raw)
        if problem:
            raise ApiError(422, "INVALID_ID_NUMBER", problem)
        return normalise_id_number(raw)

    def count_templates(session: Session, kind: str, person_id: int) -> int:
        return len(session.scalars(select(FaceTemplate.id).where(
            FaceTemplate.person_kind == kind, FaceTemplate.person_id == person_id)).all())

    @router.post("/trainees", status_code=201, responses=errors(409))
    def create_trainee(body: PersonIn, scope: admin) -> dict[str, Any]:
        id_number = validated_id_number(body.id_number)
        with db.session() as session:
            row = insert(session, Trainee(id_number=id_number, name=body.name, phone=body.phone,
                                          created_at=utc_now()),
                         "DUPLICATE_ID_NUMBER", f"身份证号 {mask_id_number(id_number)} 的学员已登记")
            return person_out(row, 0)

    @router.get("/trainees/{trainee_id}")
    def get_trainee(trainee_id: RecordIdPath, scope: reader) -> dict[str, Any]:
        with db.session() as session:
            row = session.get(Trainee, trainee_id)
            if row is None or not trainee_visible(session, scope, trainee_id):
                raise refuse_missing("UNKNOWN_TRAINEE", "学员", trainee_id)
            return person_out(row, count_templates(session, "trainee", row.id))

    @router.post("/teachers", status_code=201, responses=errors(409))
    def create_teacher(body: TeacherIn, scope: admin) -> dict[str, Any]:
        id_number = validated_id_number(body.id_number)
        with db.session() as session:
            row = insert(session, Teacher(id_number=id_number, name=body.name, phone=body.phone,
                                          qualifications=body.qualifications, blacklisted=False,
                                          created_at=utc_now()),
                         "DUPLICATE_ID_NUMBER", f"身份证号 {mask_id_number(id_number)} 的教师已登记")
            return person_out(row, 0)

    @router.put("/teachers/{teacher_id}/blacklist")
    def set_teacher_blacklist(teacher_id: RecordIdPath, body: BlacklistIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            row = get_or_404(session, Teacher, teacher_id, "UNKNOWN_TEACHER", "教师")
            row.blacklisted = body.blacklisted
            return person_out(row, count_templates(session, "teacher", row.id))

    def store_evidence(session: Session, image: Any) -> None:
        evidence.put(image.sha256, image.data)
        if session.get(Evidence, image.sha256) is None:
            session.add(Evidence(sha256=image.sha256, size_bytes=len(image.data), media_type=image.media_type,
                                 width=image.width, height=image.height, created_at=utc_now()))
            session.flush()

    def record_match(session: Session, own: PersonRef, decision: IdentityDecision, photo_sha: str, state: str,
                     principal: Principal) -> IdentityMatch:
        assert decision.other is not None and decision.distance is not None
        match = IdentityMatch(
            person_kind=own.kind, person_id=own.id, other_kind=decision.other.kind, other_id=decision.other.id,
            outcome=decision.outcome, state=state, distance=decision.distance, photo_sha256=photo_sha,
            other_photo_sha256=decision.other_photo_sha256, other_template_id=decision.other_template_id,
            reasons=list(decision.reasons), measured=decision.measured, thresholds=decision.thresholds,
            decided_by=principal.name, created_at=utc_now())
        session.add(match)
        session.flush()
        raise_identity_anomaly(session, match)
        return match

    def enrol(kind: str, person_id: int, photos: list[UploadFile], principal: Principal,
              confirm_distinct: bool) -> dict[str, Any]:
        """Store a face template per photo; refuse all if any photo lacks exactly one large-enough face.

        Before storing, the photos are searched 1:N against every other person of the province: the same
        face under another ID number is refused (409 DUPLICATE_IDENTITY, citing the other record) unless
        the admin has checked the papers and sends `confirm_distinct=true` (twins); a look-alike is stored
        and raised as a medium DUPLICATE_IDENTITY anomaly for review.
        """
        model = Trainee if kind == "trainee" else Teacher
        with db.session() as session:
            person = get_or_404(session, model, person_id, f"UNKNOWN_{kind.upper()}", KIND_NAMES[kind])
            own = PersonRef(kind, person.id, person.id_number)
        if not photos:
            raise ApiError(422, "MISSING_FIELD", "至少需要一张登记照片（photos）")
        if len(photos) > 10:
            raise ApiError(422, "TOO_MANY_PHOTOS", "一次最多登记 10 张照片")
        accepted = []
        problems = []
        for index, upload in enumerate(photos):
            image = inspect_image(upload.file.read(), settings.max_image_pixels)
            scan = engine.scan(image.data, "enrolment")
            problem = explain_enrolment_problem(scan.boxes, settings.enrol_min_face_px)
            if problem:
                problems.append({"index": index, "filename": upload.filename, "reason": problem})
            else:
                accepted.append((image, scan))
        if problems:
            reasons = "；".join(f"第 {p['index'] + 1} 张：{p['reason']}" for p in problems)
            raise ApiError(422, "ENROLMENT_PHOTO_REFUSED", f"登记照片不合格：{reasons}", photos=problems)
        encodings = [scan.encodings[0] for _, scan in accepted]
        refusal: ApiError | None = None
        with enrol_lock, db.session() as session:
            lock_enrolments(session)  # from search to commit: no two enrolments miss each other
            hits = nearest_templates(session, face_index, encodings, own, thresholds.neighbours)
            decision = decide(own, hits, thresholds, face_index.stats().templates)
            for image, _scan in accepted:
                store_evidence(session, image)
            identity: dict[str, Any] = {"outcome": decision.outcome, "thresholds": decision.thresholds,
                                        "measured": decision.measured}
            if decision.outcome != "none":
                per_photo = [d if d is not None else 9.0 for d in decision.measured["distance_per_photo"]]
                photo_sha = accepted[per_photo.index(min(per_photo))][0].sha256
                state = ("refused" if decision.is_duplicate and not confirm_distinct
                         else "overridden" if decision.is_duplicate else "accepted")
                match = record_match(session, own, decision, photo_sha, state, principal)
                other = cited_person(session, match.other_kind, match.other_id)
                identity |= {"identity_match_id": match.id, "other": other, "distance": match.distance,
                             "state": state, "message": match_message(session, match),
                             "anomaly_id": match.anomaly_id}
                if state == "refused":
                    detail = {k: v for k, v in identity.items() if k != "message"}
                    refusal = ApiError(409, "DUPLICATE_IDENTITY", identity["message"], **detail)
            if refusal is None:
                for image, scan in accepted:
                    template = FaceTemplate(person_kind=kind, person_id=person_id, encoding=scan.encodings[0],
                                            photo_sha256=image.sha256, model_version=engine.model_version,
                                            created_at=utc_now())
                    session.add(template)
                    session.flush()
                    session.add(FaceVector(template_id=template.id, vector=vector_bytes(scan.encodings[0])))
                    session.add(PhotoHash(sha256=image.sha256, phash=scan.phash, subject_kind="enrolment",
                                          subject_id=template.id, created_at=utc_now()))
                session.flush()
                result = {"person_id": person_id, "added": len(accepted),
                          "face_templates": count_templates(session, kind, person_id),
                          "model_version": engine.model_version, "identity_check": identity}
        if refusal is not None:  # the match, the photos and the anomaly are kept; the templates are not
            raise refusal
        return result

    @router.post("/trainees/{trainee_id}/faces", status_code=201, summary="Enrol one or more face photos",
                 responses=errors(409))
    def enrol_trainee(trainee_id: RecordIdPath, scope: admin, photos: Annotated[list[UploadFile], File()],
                      confirm_distinct: Annotated[bool, Form(description=CONFIRM_DISTINCT)] = False) -> dict[str, Any]:
        return enrol("trainee", trainee_id, photos, scope.principal, confirm_distinct)

    @router.post("/teachers/{teacher_id}/faces", status_code=201, responses=errors(409))
    def enrol_teacher(teacher_id: RecordIdPath, scope: admin, photos: Annotated[list[UploadFile], File()],
                      confirm_distinct: Annotated[bool, Form(description=CONFIRM_DISTINCT)] = False) -> dict[str, Any]:
        return enrol("teacher", teacher_id, photos, scope.principal, confirm_distinct)

    @router.get("/identity-matches", summary="1:N hits at enrolment (DUPLICATE_IDENTITY), newest first")
    def list_identity_matches(scope: Annotated[Scope, access(Role.ADMIN, Role.OPERATOR, Role.AUDITOR)],
                              limit: Limit = 100) -> list[dict[str, Any]]:
        with db.session() as session:
            rows = session.scalars(select(IdentityMatch).order_by(IdentityMatch.id.desc()).limit(limit)).all()
            return [identity_match_out(session, m) for m in rows]

    @router.get("/face-index", summary="The 1:N face index of this process: size, kind, bytes")
    def face_index_stats(scope: admin) -> dict[str, Any]:
        with db.session() as session:
            face_index.refresh(session)
        stats = face_index.stats()
        return {"templates": stats.templates, "kind": stats.kind, "index_bytes": stats.index_bytes,
                "last_template_id": stats.last_id, "thresholds": thresholds.as_dict()}

    # -- classes -------------------------------------------------------------------------
    def check_trainees(session: Session, ids: list[int]) -> None:
        if not ids:
            return
        known = set(session.scalars(select(Trainee.id).where(Trainee.id.in_(ids))))
        if unknown := [i for i in ids if i not in known]:
            raise ApiError(422, "UNKNOWN_TRAINEE", f"花名册中的学员不存在：{', '.join(map(str, unknown))}")

    @router.post("/classes", status_code=201, responses=errors(404, 409))
    def create_class(body: ClassIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            institution = get_or_404(session, Institution, body.institution_id, "UNKNOWN_INSTITUTION", "培训机构")
            venue = get_or_404(session, Venue, body.venue_id, "UNKNOWN_VENUE", "培训场地")
            occupation = get_or_404(session, Occupation, body.occupation_id, "UNKNOWN_OCCUPATION", "职业（工种）")
            theory = get_or_404(session, Teacher, body.theory_teacher_id, "UNKNOWN_TEACHER", "教师")
            practical = get_or_404(session, Teacher, body.practical_teacher_id, "UNKNOWN_TEACHER", "教师")
            check_class_rules(body, institution, venue, occupation, theory, practical)
            check_trainees(session, body.trainee_ids)
            windows = sorted((s.start, s.end) for s in body.sessions)
            if any(a[1] > b[0] for a, b in zip(windows, windows[1:], strict=False)):
                raise ApiError(422, "SESSIONS_OVERLAP", "同一天的课时时间段不能重叠")
            row = insert(session, TrainingClass(
                code=body.code, name=body.name, institution_id=body.institution_id, venue_id=body.venue_id,
                occupation_id=body.occupation_id, mode=body.mode.value, start_date=body.start_date,
                end_date=body.end_date, theory_teacher_id=body.theory_teacher_id,
                practical_teacher_id=body.practical_teacher_id, status="scheduled",
                liveness_required=body.liveness_required, created_at=utc_now(),
            ), "DUPLICATE_CLASS", f"班次编号 {body.code} 已登记")
            for s in body.sessions:
                session.add(ClassSession(class_id=row.id, name=s.name, start_local=s.start.strftime("%H:%M"),
                                         end_local=s.end.strftime("%H:%M")))
            for trainee_id in body.trainee_ids:
                session.add(RosterEntry(class_id=row.id, trainee_id=trainee_id))
            session.flush()
            raise_pending_identity_anomalies(session, [("teacher", body.theory_teacher_id),
                                                       ("teacher", body.practical_teacher_id)]
                                             + [("trainee", t) for t in body.trainee_ids])
            return class_out(session, row)

    @router.post("/classes/{class_id}/roster", summary="Add trainees to a class roster")
    def add_to_roster(class_id: RecordIdPath, body: RosterIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            row = get_or_404(session, TrainingClass, class_id, "UNKNOWN_CLASS", "班次")
            check_trainees(session, body.trainee_ids)
            for trainee_id in body.trainee_ids:
                if session.get(RosterEntry, (class_id, trainee_id)) is None:
                    session.add(RosterEntry(class_id=class_id, trainee_id=trainee_id))
            session.flush()
            raise_pending_identity_anomalies(session, [("trainee", t) for t in body.trainee_ids])
            return class_out(session, row)

    @router.put("/classes/{class_id}/liveness", summary="Whether sign-in requires the liveness challenge")
    def set_liveness(class_id: RecordIdPath, body: LivenessSettingIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            row = get_or_404(session, TrainingClass, class_id, "UNKNOWN_CLASS", "班次")
            row.liveness_required = body.required
            return class_out(session, row)

    @router.get("/classes", summary="Classes, newest first (sites see their own)")
    def list_classes(scope: anyone) -> list[dict[str, Any]]:
        with db.session() as session:
            query = select(TrainingClass).where(scope.class_clause()).order_by(TrainingClass.id.desc())
            return [class_out(session, c) for c in session.scalars(query)]

    @router.get("/classes/{class_id}")
    def get_class(class_id: RecordIdPath, scope: anyone) -> dict[str, Any]:
        with db.session() as session:
            return class_out(session, ensure_class(session, scope, class_id))

    # -- tokens --------------------------------------------------------------------------
    @router.post("/tokens", status_code=201, summary="Issue a bearer token (shown once)")
    def create_token(body: TokenIn, scope: admin) -> dict[str, Any]:
        with db.session() as session:
            token = issue_token(session, body.role, body.name, body.institution_id, body.region_codes)
        return {"token": token, "role": body.role.value, "name": body.name}

    return router

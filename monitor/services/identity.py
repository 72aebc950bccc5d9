"""One face, two identities (DUPLICATE_IDENTITY, 冒名 / 多领): every enrolment searched 1:N against all enrolled
trainees and teachers (`monitor.adapters.face_index`), decided by `monitor.decisions.identity_match`; a duplicate
is refused citing the other record (ID number masked), a look-alike is stored and raised for an operator."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ingest.acceptance import store_evidence
from ingest.adapters.evidence import EvidenceStore
from ingest.adapters.images import inspect_image
from models.clock import utc_now
from models.domain import AnomalyCode, Principal, Severity
from models.errors import ApiError
from models.identity import mask_id_number
from models.tables import FaceTemplate, PhotoHash, RosterEntry, Teacher, Trainee, TrainingClass
from models.terms import SubjectKind
from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_index import FaceIndex, lock_enrolments, nearest_templates, of_model
from monitor.adapters.face_pool import ProcessFaceEngine
from monitor.adapters.face_tables import FaceVector, IdentityMatch, vector_bytes
from monitor.adapters.photo_decode import UnreadablePhoto
from monitor.adapters.storage import Database
from monitor.decisions.faces import explain_enrolment_problem, explain_photo_defect
from monitor.decisions.identity_match import REASON_TEXT, IdentityDecision, PersonRef, decide
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import add_anomaly
from monitor.services.events import class_context
from monitor.settings import Settings

log = logging.getLogger(__name__)

KIND_NAMES = {"trainee": "学员", "teacher": "教师"}


def person_row(session: Session, kind: str, person_id: int) -> Trainee | Teacher | None:
    return session.get(Trainee, person_id) if kind == "trainee" else session.get(Teacher, person_id)


def cited_person(session: Session, kind: str, person_id: int) -> dict[str, Any]:
    """Whom a match cites, as an authorised role may see it (ID number masked)."""
    row = person_row(session, kind, person_id)
    return {"kind": kind, "kind_name": KIND_NAMES[kind], "id": person_id, "name": row.name if row else "",
            "id_number_masked": mask_id_number(row.id_number) if row else ""}


def describe(person: dict[str, Any]) -> str:
    if not person["name"]:  # cited without naming (see `unnamed`)
        return f"本班次以外的一名{person['kind_name']}（记录编号 {person['id']}）"
    return f"{person['kind_name']}{person['name']}（身份证号 {person['id_number_masked']}）"


def unnamed(person: dict[str, Any]) -> dict[str, Any]:
    """A cited person without name or ID number: how an anomaly shown with one class cites someone not on that class
    (whoever may read the class, a site or a region's staff, may not read them; the province reads the match)."""
    return {**person, "name": "", "id_number_masked": ""}


def people_on_class(session: Session, cls: TrainingClass) -> set[tuple[str, int]]:
    """The (kind, id) of the class's trainees and its two teachers."""
    trainees = session.scalars(select(RosterEntry.trainee_id).where(RosterEntry.class_id == cls.id))
    return {("trainee", t) for t in trainees} | {("teacher", cls.theory_teacher_id),
                                                  ("teacher", cls.practical_teacher_id)}


def classes_of(session: Session, kind: str, person_id: int) -> list[TrainingClass]:
    if kind == "trainee":
        query = select(TrainingClass).join(RosterEntry, RosterEntry.class_id == TrainingClass.id).where(
            RosterEntry.trainee_id == person_id)
    else:
        query = select(TrainingClass).where(or_(TrainingClass.theory_teacher_id == person_id,
                                                TrainingClass.practical_teacher_id == person_id))
    return list(session.scalars(query))


def match_message(session: Session, match: IdentityMatch, cited: tuple[dict[str, Any], dict[str, Any]] | None = None
                  ) -> str:
    """The match in words; `cited` as the reader may see the two people (default: both named)."""
    first, second = cited or (cited_person(session, match.person_kind, match.person_id),
                              cited_person(session, match.other_kind, match.other_id))
    person, other = describe(first), describe(second)
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


def raise_identity_anomaly(session: Session, match: IdentityMatch,
                           kind: SubjectKind = SubjectKind.IDENTITY) -> bool:
    """Put a match on the wall screen as a DUPLICATE_IDENTITY anomaly of a class of either person; `kind` is
    IDENTITY_REVIEW for an operator's finding of the same person, a record of its own beside the index's (resolved).

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
    on_class = people_on_class(session, cls)
    person, other = ((p if (p["kind"], p["id"]) in on_class else unnamed(p))
                     for p in (cited_person(session, match.person_kind, match.person_id),
                               cited_person(session, match.other_kind, match.other_id)))
    trainee = next((p for p in (person, other) if p["kind"] == "trainee" and p["name"]), None)
    finding = Finding(
        code=AnomalyCode.DUPLICATE_IDENTITY, severity=severity, message=match_message(session, match, (person, other)),
        evidence={**match.measured, "outcome": match.outcome, "state": match.state, "distance": match.distance,
                  "person": person, "other": other, "other_template_id": match.other_template_id},
        thresholds=match.thresholds,
    )
    anomaly = add_anomaly(
        session, class_context(session, cls), finding, kind.value, match.id,
        {"trainee_id": trainee["id"] if trainee else None, "trainee_name": trainee["name"] if trainee else None},
        {"photo_sha256": match.photo_sha256, "enrolled_photo_sha256": match.other_photo_sha256,
         "identity_match_id": match.id}, {})
    match.anomaly_id = anomaly.id
    return True


def raise_pending_identity_anomalies(session: Session, people: list[tuple[str, int]]) -> int:
    """Matches of these people that had no class to show on (they just joined one)."""
    if not people:
        return 0
    ids: dict[str, set[int]] = {}
    for kind, person_id in people:
        ids.setdefault(kind, set()).add(person_id)
    conditions = [((IdentityMatch.person_kind == k) & IdentityMatch.person_id.in_(sorted(v)))
                  | ((IdentityMatch.other_kind == k) & IdentityMatch.other_id.in_(sorted(v))) for k, v in ids.items()]
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


def count_templates(session: Session, kind: str, person_id: int, model_version: str | None = None) -> int:
    """A person's face templates (of one model when `model_version` is given)."""
    return len(session.scalars(select(FaceTemplate.id).where(
        FaceTemplate.person_kind == kind, FaceTemplate.person_id == person_id, *of_model(model_version))).all())


class Enrolment:
    """Face enrolment with its 1:N check: the face index of this process and the lock that, with the database's,
    keeps two enrolments from missing each other between search and commit."""

    def __init__(self, settings: Settings, db: Database, evidence: EvidenceStore,
                 engine: FaceEngine | ProcessFaceEngine) -> None:
        self.settings, self.db, self.evidence, self.engine = settings, db, evidence, engine
        self.face_index = FaceIndex(model_version=engine.model_version, dim=engine.model.manifest.dimension)
        self.lock = threading.Lock()
        self.thresholds = settings.duplicate_thresholds(engine.model.manifest)

    def start(self) -> None:
        threading.Thread(target=self.warm_up, name="face-index-warm-up", daemon=True).start()

    def warm_up(self) -> None:
        """Load the 1:N index from the database now (in a background thread at start-up)."""
        try:
            with self.db.session() as session:
                loaded = self.face_index.refresh(session)
            log.info("face index: %d templates loaded", loaded)
        except Exception:  # noqa: BLE001 - the first enrolment loads it again
            log.exception("face index warm-up failed")

    def record_match(self, session: Session, own: PersonRef, decision: IdentityDecision, photo_sha: str, state: str,
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

    def enrol(self, kind: str, person_id: int, photos: list[tuple[str | None, bytes]], principal: Principal,
              confirm_distinct: bool) -> dict[str, Any]:
        """Store a face template per photo; refuse all if any photo lacks exactly one large-enough face.

        Before storing, the photos are searched 1:N against every other person of the province: the same
        face under another ID number is refused (409 DUPLICATE_IDENTITY, citing the other record) unless
        the admin has checked the papers and sends `confirm_distinct=true` (twins); a look-alike is stored
        and raised as a medium DUPLICATE_IDENTITY anomaly for review.
        """
        with self.db.session() as session:
            person = person_row(session, kind, person_id)
            if person is None:
                raise ApiError(404, f"UNKNOWN_{kind.upper()}", f"{KIND_NAMES[kind]} {person_id} 不存在")
            own = PersonRef(kind, person.id, person.id_number)
        if not photos:
            raise ApiError(422, "MISSING_FIELD", "至少需要一张登记照片（photos）")
        if len(photos) > 10:
            raise ApiError(422, "TOO_MANY_PHOTOS", "一次最多登记 10 张照片")
        accepted = []
        problems: list[dict[str, Any]] = []
        for index, (filename, data) in enumerate(photos):
            image = inspect_image(data, self.settings.max_image_pixels)
            try:
                scan = self.engine.scan(image.data, "enrolment")
            except UnreadablePhoto as unreadable:  # its header is sound, its pixels are not: name the photo
                log.info("enrolment photo %d of %s %d unreadable: %s", index + 1, kind, person_id, unreadable)
                problems.append({"index": index, "filename": filename, "reason": "照片无法解码（文件内容已损坏）"})
                continue
            defect = explain_photo_defect(scan.shape, len(scan.boxes))  # a face no camera took is no template
            problem = explain_enrolment_problem(scan.boxes, self.settings.enrol_min_face_px) or (
                defect[0] if defect else None)
            if problem:
                problems.append({"index": index, "filename": filename, "reason": problem})
            else:
                accepted.append((image, scan))
        if problems:
            reasons = "；".join(f"第 {p['index'] + 1} 张：{p['reason']}" for p in problems)
            raise ApiError(422, "ENROLMENT_PHOTO_REFUSED", f"登记照片不合格：{reasons}", photos=problems)
        encodings = [scan.encodings[0] for _, scan in accepted]
        refusal: ApiError | None = None
        with self.lock, self.db.session() as session:
            lock_enrolments(session)  # from search to commit: no two enrolments miss each other
            hits = nearest_templates(session, self.face_index, encodings, own, self.thresholds.neighbours,
                                     self.engine.metric)
            decision = decide(own, hits, self.thresholds, self.face_index.size)
            for image, _scan in accepted:
                store_evidence(session, self.evidence, image, utc_now())
            identity: dict[str, Any] = {"outcome": decision.outcome, "thresholds": decision.thresholds,
                                        "measured": decision.measured}
            if decision.outcome != "none":
                per_photo = [d if d is not None else 9.0 for d in decision.measured["distance_per_photo"]]
                photo_sha = accepted[per_photo.index(min(per_photo))][0].sha256
                state = ("refused" if decision.is_duplicate and not confirm_distinct
                         else "overridden" if decision.is_duplicate else "accepted")
                match = self.record_match(session, own, decision, photo_sha, state, principal)
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
                                            photo_sha256=image.sha256, model_version=self.engine.model_version,
                                            created_at=utc_now())
                    session.add(template)
                    session.flush()
                    session.add(FaceVector(template_id=template.id, vector=vector_bytes(scan.encodings[0])))
                    session.add(PhotoHash(sha256=image.sha256, phash=scan.phash, subject_kind=SubjectKind.ENROLMENT,
                                          subject_id=template.id, created_at=utc_now()))
                session.flush()
                result = {"person_id": person_id, "added": len(accepted),
                          "face_templates": count_templates(session, kind, person_id, self.engine.model_version),
                          "model_version": self.engine.model_version, "identity_check": identity}
        if refusal is not None:  # the match, the photos and the anomaly are kept; the templates are not
            raise refusal
        return result

"""A classroom snapshot's verification: load its facts (all queries here), judge them with the declared rules
(monitor/decisions/snapshot_rules.py), record the outcome (monitor/services/recorder.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from models.clock import local_day_start, utc_now
from models.tables import CheckIn, FaceTemplate, RosterEntry, Snapshot, TrainingClass, Verification
from models.terms import SubjectKind, UploadStatus
from monitor.adapters.template_cache import TeacherTemplates, parse_vectors
from monitor.decisions.classroom import Candidate, identify_faces
from monitor.decisions.snapshot_rules import SnapshotFacts, judge_snapshot
from monitor.services.checkins import exif_time_utc, face_measures
from monitor.services.context import WorkerContext
from monitor.services.photo_hashes import earlier_near_copies, reserve_photo_hash
from monitor.services.recorder import Outcome, already_verified, mark_processed, record_outcome

log = logging.getLogger(__name__)


def verify_snapshot(ctx: WorkerContext, snapshot_id: int) -> None:
    """Count the faces in one classroom snapshot, say whose they are, and check it is not a replay; idempotent."""
    t = ctx.thresholds
    with ctx.db.session() as session:
        snapshot = session.get(Snapshot, snapshot_id)
        if snapshot is None:
            log.warning("snapshot %s not found; dropping message", snapshot_id)
            return
        if already_verified(session, SubjectKind.SNAPSHOT, snapshot_id):
            mark_processed(session, SubjectKind.SNAPSHOT, snapshot_id)
            return
        photo_sha, received_at, camera_id = snapshot.photo_sha256, snapshot.received_at, snapshot.camera_id
        cls = session.get(TrainingClass, snapshot.class_id)
        assert cls is not None
        class_id, teachers = cls.id, [cls.theory_teacher_id, cls.practical_teacher_id]
        roster = list(session.scalars(select(RosterEntry.trainee_id).where(RosterEntry.class_id == cls.id)))
        mv = ctx.engine.model_version
        candidates = templates_of(session, "trainee", roster, mv) + teacher_candidates(
            session, ctx.teacher_templates, teachers, mv)
        signed_in = count_signed_in(session, cls.id, local_day_start(received_at))
    scan = ctx.engine.scan(ctx.evidence.get(photo_sha), "classroom")
    own_hash = reserve_photo_hash(ctx.db, photo_sha, scan.phash, SubjectKind.SNAPSHOT, snapshot_id)
    near = earlier_near_copies(ctx.db, ctx.photo_index, own_hash, scan.phash, t.replay_phash_max_distance)
    if near and camera_id.startswith(CAMERA_PREFIX):
        with ctx.db.session() as session:
            near = not_from_same_camera(session, near, camera_id)
    facts = SnapshotFacts(snapshot_id, class_id, received_at, len(scan.faces), signed_in, near,
                          exif_time_utc(scan.exif_time))
    findings = judge_snapshot(facts, t)
    who = identify_faces(scan.encodings, candidates, t.face_match, t.metric)
    seen = {kind: sorted({w.person_id for w in who if w and w.kind == kind})
            for kind in ("trainee", "teacher", "other_teacher")}
    unknown = sum(1 for w in who if w is None)
    record_outcome(ctx.db, Outcome(
        kind=SubjectKind.SNAPSHOT, subject_id=snapshot_id, findings=findings, review=None,
        verification=Verification(
            subject_kind=SubjectKind.SNAPSHOT, subject_id=snapshot_id, passed=not findings,
            face_count=len(scan.faces), face_distance=None, fence_result=None, fence_distance_m=None,
            measured={"face_count": len(scan.faces), "faces": [face_measures(f) for f in scan.faces],
                      "image_size": [scan.width, scan.height], "phash": scan.phash,
                      "exif_time": scan.exif_time, "exif_notes": scan.exif_notes, "near_copies": len(near),
                      "turned_deg": scan.extra.get("turned_deg") or None,
                      "signed_in": signed_in, "trainees_seen": seen["trainee"], "teachers_seen": seen["teacher"],
                      "other_teachers_seen": seen["other_teacher"], "unknown_faces": unknown},
            thresholds=t.as_dict(), model_version=ctx.engine.model_version,
            reasons=[f.as_reason() for f in findings], created_at=utc_now(),
        ),
        photo=(photo_sha, scan.phash),
        extra={"photo_sha256": photo_sha, "face_count": len(scan.faces), "signed_in": signed_in,
               "teachers_seen": seen["teacher"], "unknown_faces": unknown},
    ))


CAMERA_PREFIX = "camera:"  # a registered camera's frames (monitor/services/cameras.py); sites may not use it


def not_from_same_camera(session: Session, near: list[tuple[str, int, int]], camera_id: str
                         ) -> list[tuple[str, int, int]]:
    """Near copies other than the same registered camera's earlier frames: a fixed camera's view of a classroom is
    always close to its previous one (a feed that shows the very same picture is FROZEN_FEED's business)."""
    ids = [ident for kind, ident, _ in near if kind == SubjectKind.SNAPSHOT]
    same = set(session.scalars(select(Snapshot.id).where(Snapshot.id.in_(ids), Snapshot.camera_id == camera_id))
               ) if ids else set()
    return [n for n in near if not (n[0] == SubjectKind.SNAPSHOT and n[1] in same)]


def templates_of(session: Session, kind: str, person_ids: Sequence[int], model_version: str) -> list[Candidate]:
    """The people's templates made with the engine's model (never another model's vectors)."""
    if not person_ids:
        return []
    rows = session.execute(select(FaceTemplate.person_id, cast(FaceTemplate.encoding, Text)).where(
        FaceTemplate.person_kind == kind, FaceTemplate.person_id.in_(person_ids),
        FaceTemplate.model_version == model_version).order_by(FaceTemplate.id)).all()
    return [Candidate(kind, person_id, encoding)
            for (person_id, _), encoding in zip(rows, parse_vectors([text for _, text in rows]), strict=True)]


def teacher_candidates(session: Session, cache: TeacherTemplates, teachers: Sequence[int], model_version: str
                       ) -> list[Candidate]:
    """The class's teachers' templates, then every other teacher's of the province (from the process's cache, which
    reads the table's version first: one indexed count instead of every teacher's template parsed per snapshot)."""
    people, encodings = cache.get(session, model_version)
    mine = set(teachers)
    return ([Candidate("teacher", p, encodings[i]) for i, p in enumerate(people) if p in mine]
            + [Candidate("other_teacher", p, encodings[i]) for i, p in enumerate(people) if p not in mine])


def count_signed_in(session: Session, class_id: int, since: datetime) -> int:
    """Trainees whose latest accepted check-in today is a sign-in (present, not yet signed out)."""
    latest: dict[int, str] = {}
    for trainee_id, kind in session.execute(
        select(CheckIn.trainee_id, CheckIn.kind).where(
            CheckIn.class_id == class_id, CheckIn.received_at >= since, CheckIn.status == UploadStatus.PASSED)
        .order_by(CheckIn.captured_at)
    ):
        latest[trainee_id] = kind
    return sum(1 for kind in latest.values() if kind == "sign_in")

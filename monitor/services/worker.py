"""The worker: verifies check-ins and snapshots from the bus, relays the outbox, and runs the clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.adapters.evidence import EvidenceStore
from ingest.outbox import CHECKIN_TOPIC, HEARTBEAT_TOPIC, SNAPSHOT_TOPIC, iter_pending_outbox
from models.clock import SHANGHAI, local_day_start, utc_now
from models.domain import AnomalyCode, FenceResult, Severity
from models.tables import (
    CheckIn,
    CheckInFrame,
    ClassSession,
    ClassStatus,
    FaceTemplate,
    LivenessChallenge,
    OnlineHeartbeat,
    OnlineSession,
    OutboxMessage,
    PhotoHash,
    ReviewItem,
    RosterEntry,
    Snapshot,
    Trainee,
    TrainingClass,
    Venue,
    Verification,
)
from monitor.adapters.bus import Bus
from monitor.adapters.face_engine import FaceEngine, FaceFound, ProcessFaceEngine, UnreadablePhoto
from monitor.adapters.photo_index import PhotoHashIndex
from monitor.adapters.storage import Database
from monitor.decisions.classroom import Candidate, identify_faces, judge_headcount
from monitor.decisions.faces import FaceQuality, match_face, rank_other_people
from monitor.decisions.geodesy import circle_signed_distance_m, classify_fix, distance_m, polygon_signed_distance_m
from monitor.decisions.liveness import ChallengeFacts, FrameFacts, LivenessThresholds, judge_liveness
from monitor.decisions.online import judge_online_day
from monitor.decisions.rules import judge_session_time, judge_two_places
from monitor.decisions.schedule import STATUS_NAMES, class_status_at
from monitor.decisions.verdicts import (
    Finding,
    PriorCheckIn,
    Review,
    judge_checkin_face,
    judge_fence,
    judge_gps,
    judge_proxy,
    judge_replay,
    judge_snapshot_faces,
    merge_findings,
)
from monitor.services.alerts import add_anomaly, add_event, class_context
from monitor.services.clock import PolicyClock, claim_subject, resolve_attendance
from monitor.services.ledger import online_day
from monitor.settings import Settings

log = logging.getLogger(__name__)




def venue_signed_distance_m(venue: Venue, lat: float, lon: float) -> float:
    """Metres from a WGS-84 fix to the venue fence's edge: negative inside."""
    if venue.shape == "circle":
        assert venue.radius_m is not None
        return circle_signed_distance_m((lat, lon), (venue.center_lat, venue.center_lon), venue.radius_m)
    assert venue.polygon is not None
    return polygon_signed_distance_m((lat, lon), venue.polygon)






def quality_of(face: FaceFound | None) -> FaceQuality | None:
    if face is None:
        return None
    return FaceQuality(side_px=face.side_px, sharpness=face.sharpness, brightness=face.brightness,
                       cut_off=face.cut_off)


def face_measures(face: FaceFound) -> dict[str, Any]:
    return {"box": list(face.box), "side_px": face.side_px, "sharpness": round(face.sharpness, 1),
            "brightness": round(face.brightness, 1), "cut_off": face.cut_off,
            "detection_score": face.detection_score}


def exif_time_utc(exif_time: str | None) -> datetime | None:
    """An EXIF capture time (camera local time, no zone) read as Asia/Shanghai; None when absent or impossible."""
    if not exif_time:
        return None
    try:
        return datetime.fromisoformat(exif_time).replace(tzinfo=SHANGHAI).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _prior(c: CheckIn) -> PriorCheckIn:
    return PriorCheckIn(checkin_id=c.id, trainee_id=c.trainee_id, captured_at=c.captured_at, lat=c.lat,
                        lon=c.lon, device_id=c.device_id)


def count_uncertain_fixes(session: Session, trainee_id: int, since: datetime) -> int:
    return int(session.scalar(
        select(func.count()).select_from(Verification)
        .join(CheckIn, (Verification.subject_kind == "checkin") & (Verification.subject_id == CheckIn.id))
        .where(CheckIn.trainee_id == trainee_id, CheckIn.received_at >= since,
               Verification.fence_result == FenceResult.UNCERTAIN.value)
    ) or 0)


def prior_checkin_of_trainee(session: Session, checkin: CheckIn) -> PriorCheckIn | None:
    prior = session.scalar(
        select(CheckIn).where(CheckIn.trainee_id == checkin.trainee_id, CheckIn.id != checkin.id,
                              CheckIn.captured_at <= checkin.captured_at)
        .order_by(CheckIn.captured_at.desc()).limit(1))
    return _prior(prior) if prior else None


def same_coordinates_other_devices(session: Session, checkin: CheckIn, limit: int = 20) -> list[int]:
    return list(session.scalars(
        select(CheckIn.id).where(CheckIn.lat == checkin.lat, CheckIn.lon == checkin.lon,
                                 CheckIn.device_id != checkin.device_id, CheckIn.id != checkin.id)
        .order_by(CheckIn.id.desc()).limit(limit)))


def classmates_evidence(session: Session, checkin: CheckIn, since: datetime
                        ) -> dict[int, list[tuple[list[float], int | None]]]:
    """Each other rostered trainee's face evidence: enrolled templates and check-ins passed since `since`.

    Failed or doubtful check-ins are not evidence of whose face is whose.
    """
    evidence: dict[int, list[tuple[list[float], int | None]]] = {}
    roster = select(RosterEntry.trainee_id).where(RosterEntry.class_id == checkin.class_id,
                                                  RosterEntry.trainee_id != checkin.trainee_id)
    for person_id, encoding in session.execute(
            select(FaceTemplate.person_id, FaceTemplate.encoding)
            .where(FaceTemplate.person_kind == "trainee", FaceTemplate.person_id.in_(roster))):
        evidence.setdefault(person_id, []).append((encoding, None))
    for checkin_id, trainee_id, encoding in session.execute(
            select(CheckIn.id, CheckIn.trainee_id, Verification.face_encoding)
            .join(Verification, (Verification.subject_kind == "checkin") & (Verification.subject_id == CheckIn.id))
            .where(CheckIn.class_id == checkin.class_id, CheckIn.received_at >= since, CheckIn.id != checkin.id,
                   CheckIn.trainee_id != checkin.trainee_id, CheckIn.status == "passed",
                   Verification.face_encoding.is_not(None))):
        evidence.setdefault(trainee_id, []).append((encoding, checkin_id))
    return evidence


def device_checkins_since(session: Session, device_id: str, since: datetime, exclude_id: int) -> list[PriorCheckIn]:
    return [_prior(c) for c in session.scalars(
        select(CheckIn).where(CheckIn.device_id == device_id, CheckIn.received_at >= since,
                              CheckIn.id != exclude_id))]




def templates_of(session: Session, kind: str, person_ids: Sequence[int]) -> list[Candidate]:
    if not person_ids:
        return []
    return [Candidate(kind, t.person_id, t.encoding) for t in session.scalars(
        select(FaceTemplate).where(FaceTemplate.person_kind == kind, FaceTemplate.person_id.in_(person_ids)))]


def other_teacher_templates(session: Session, exclude: Sequence[int]) -> list[Candidate]:
    return [Candidate("other_teacher", t.person_id, t.encoding) for t in session.scalars(
        select(FaceTemplate).where(FaceTemplate.person_kind == "teacher", FaceTemplate.person_id.not_in(exclude)))]


def count_signed_in(session: Session, class_id: int, since: datetime) -> int:
    """Trainees whose latest accepted check-in today is a sign-in (present, not yet signed out)."""
    latest: dict[int, str] = {}
    for trainee_id, kind in session.execute(
        select(CheckIn.trainee_id, CheckIn.kind).where(
            CheckIn.class_id == class_id, CheckIn.received_at >= since, CheckIn.status == "passed")
        .order_by(CheckIn.captured_at)
    ):
        latest[trainee_id] = kind
    return sum(1 for kind in latest.values() if kind == "sign_in")


class Worker:
    """Handlers for the bus topics plus two background loops (outbox relay, class clock)."""

    def __init__(self, settings: Settings, db: Database, bus: Bus, evidence: EvidenceStore,
                 engine: FaceEngine | ProcessFaceEngine):
        self.settings = settings
        self.thresholds = settings.thresholds()
        self.policy = PolicyClock(settings, db)
        self.photo_index = PhotoHashIndex()
        self.db = db
        self.bus = bus
        self.evidence = evidence
        self.engine = engine
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.bus.subscribe(CHECKIN_TOPIC, self.guarded(CHECKIN_TOPIC, "checkin_id", self.handle_checkin))
        self.bus.subscribe(SNAPSHOT_TOPIC, self.guarded(SNAPSHOT_TOPIC, "snapshot_id", self.handle_snapshot))
        self.bus.subscribe(HEARTBEAT_TOPIC, self.guarded(HEARTBEAT_TOPIC, "heartbeat_id", self.handle_heartbeat))
        self.engine.warm_up()  # the first seconds' uploads must not wait for the face processes to start
        self.bus.start(concurrency=self.engine.processes)
        self._stop.clear()
        for name, target in (("relay", self._relay_loop), ("clock", self._clock_loop)):
            thread = threading.Thread(target=target, name=f"worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.bus.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def _relay_loop(self) -> None:
        while not self._stop.wait(self.settings.relay_interval_seconds):
            try:
                self.relay_outbox()
            except Exception:  # noqa: BLE001 - keep relaying after a transient database/bus error
                log.exception("outbox relay failed")

    def _clock_loop(self) -> None:
        while True:
            try:
                self.tick_clock()
                if self.settings.clock_rules:
                    self.policy.run()
            except Exception:  # noqa: BLE001
                log.exception("clock tick failed")
            if self._stop.wait(self.settings.clock_interval_seconds):
                return

    # -- outbox relay ----------------------------------------------------------------------
    def relay_outbox(self) -> int:
        """Publish accepted uploads no worker has processed yet (never sent, or sent long ago)."""
        now = utc_now()
        sent = 0
        with self.db.session() as session:
            messages = list(
                iter_pending_outbox(
                    session,
                    # Leave the API time to publish what it has just committed (under load that can take
                    # more than a second); the relay is for what it could not publish.
                    created_before=now - timedelta(seconds=min(5.0, self.settings.redeliver_after_seconds)),
                    older_than=now - timedelta(seconds=self.settings.redeliver_after_seconds),
                )
            )
            exhausted = [m for m in messages if m.attempts >= self.settings.max_publish_attempts]
            messages = [m for m in messages if m.attempts < self.settings.max_publish_attempts]
            for msg in messages:
                try:
                    self.bus.publish(msg.topic, msg.payload)
                except Exception:  # noqa: BLE001 - bus down: try again next round
                    log.warning("relay could not publish outbox %s", msg.id, exc_info=True)
                    break
                msg.published_at = now
                msg.attempts += 1
                sent += 1
        for msg in exhausted:  # delivered again and again, never processed: it kills or hangs its worker
            log.error("%s %s was published %d times and never processed; giving up", msg.topic, msg.subject_id,
                      msg.attempts)
            self.give_up(msg.topic, msg.subject_id, f"已投递 {msg.attempts} 次仍未完成核验")
        if sent:
            log.info("outbox relay re-sent %d message(s)", sent)
        return sent

    # -- failures ----------------------------------------------------------------------------
    def guarded(self, topic: str, key: str, handler: Callable[[dict[str, Any]], None]
                ) -> Callable[[dict[str, Any]], None]:
        """`handler` with a final status for every message: a photo that cannot be decoded, or a handler that
        keeps failing (`max_verification_attempts`), ends as VERIFICATION_FAILED instead of retrying forever."""

        def run(message: dict[str, Any]) -> None:
            try:
                subject_id = int(message[key])
            except (KeyError, TypeError, ValueError):
                log.error("malformed %s message dropped: %r", topic, sorted(message)[:5])
                return
            try:
                handler(message)
            except UnreadablePhoto as exc:
                self.give_up(topic, subject_id, f"照片无法解码（{exc}）")
            except Exception as exc:
                failures = self.note_failure(topic, subject_id, exc)
                if failures < self.settings.max_verification_attempts:
                    raise  # the bus (or the outbox relay) delivers it again
                log.exception("%s %s failed %d times; giving up", topic, subject_id, failures)
                self.give_up(topic, subject_id, f"核验连续 {failures} 次出错（{type(exc).__name__}）")

        return run

    def note_failure(self, topic: str, subject_id: int, exc: Exception) -> int:
        """Count one more failure of the message's handler; returns how many there have been."""
        with self.db.session() as session:
            rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic,
                                                                    OutboxMessage.subject_id == subject_id)))
            for row in rows:
                row.failures = (row.failures or 0) + 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:300]
            return max((row.failures for row in rows), default=self.settings.max_verification_attempts)

    def give_up(self, topic: str, subject_id: int, reason: str) -> None:
        """Record the upload as not verifiable (status failed, VERIFICATION_FAILED for operators), so it never stays
        pending and is never sent again."""
        finding = Finding(AnomalyCode.VERIFICATION_FAILED, Severity.MEDIUM,
                          f"系统无法完成该上传的核验：{reason}；请重新拍摄上传，或由监控中心人工核实",
                          {"reason": reason}, {"max_verification_attempts": self.settings.max_verification_attempts,
                                               "max_publish_attempts": self.settings.max_publish_attempts})
        if topic == HEARTBEAT_TOPIC:
            self._give_up_heartbeat(subject_id, finding)
            return
        kind = "checkin" if topic == CHECKIN_TOPIC else "snapshot"
        with self.db.session() as session:
            subject = session.get(CheckIn if topic == CHECKIN_TOPIC else Snapshot, subject_id)
            photo_sha = subject.photo_sha256 if subject is not None else None
        if photo_sha is None:
            with self.db.session() as session:
                self._mark_processed(session, topic, subject_id)
            return
        self._record(
            kind=kind, topic=topic, subject_id=subject_id, findings=[finding], review=None,
            verification=Verification(
                subject_kind=kind, subject_id=subject_id, passed=False, face_count=None, face_distance=None,
                fence_result=None, fence_distance_m=None, measured={"verification_failed": reason},
                thresholds=self.thresholds.as_dict(), model_version=self.engine.model_version,
                reasons=[finding.as_reason()], created_at=utc_now()),
            photo=None, extra={"photo_sha256": photo_sha})

    def _give_up_heartbeat(self, beat_id: int, finding: Finding) -> None:
        with self.db.session() as session:
            beat = session.get(OnlineHeartbeat, beat_id)
            if beat is not None and beat.status == "pending":
                beat.status = "failed"
                online = session.get(OnlineSession, beat.session_id)
                cls = session.get(TrainingClass, online.class_id) if online else None
                if online is not None and cls is not None:
                    context = class_context(session, cls)
                    trainee = session.get(Trainee, online.trainee_id)
                    people = {"trainee_id": online.trainee_id, "trainee_name": trainee.name if trainee else None}
                    add_anomaly(session, context, finding, "heartbeat", beat_id, people,
                                {"photo_sha256": beat.photo_sha256, "online_session_id": online.id}, {})
                    add_event(session, "verdict", context, {
                        "subject_kind": "heartbeat", "subject_id": beat_id, "status": "failed", "kind": "heartbeat",
                        "reasons": [finding.as_reason()], "at": utc_now().isoformat(),
                        "photo_sha256": beat.photo_sha256, **people})
            self._mark_processed(session, HEARTBEAT_TOPIC, beat_id)

    # -- handlers --------------------------------------------------------------------------
    def _already_verified(self, session: Session, kind: str, subject_id: int) -> bool:
        return (
            session.scalar(
                select(Verification.id).where(
                    Verification.subject_kind == kind, Verification.subject_id == subject_id
                )
            )
            is not None
        )

    def _mark_processed(self, session: Session, topic: str, subject_id: int) -> None:
        for msg in session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == topic, OutboxMessage.subject_id == subject_id)
        ):
            msg.processed_at = msg.processed_at or utc_now()

    def _load_unverified(self, session: Session, model: type[CheckIn] | type[Snapshot], subject_id: int,
                         topic: str) -> CheckIn | Snapshot | None:
        """The upload a message names, or None when it is unknown or already verified (a redelivery)."""
        subject = session.get(model, subject_id)
        if subject is None:
            log.warning("%s %s not found; dropping message", topic, subject_id)
            return None
        if self._already_verified(session, topic, subject_id):
            self._mark_processed(session, topic, subject_id)
            return None
        return subject

    def handle_checkin(self, message: dict[str, Any]) -> None:
        """Verify one check-in against every rule of the verification catalogue; idempotent."""
        checkin_id = int(message["checkin_id"])
        t = self.thresholds
        with self.db.session() as session:
            checkin = self._load_unverified(session, CheckIn, checkin_id, CHECKIN_TOPIC)
            if not isinstance(checkin, CheckIn):
                return
            templates = session.scalars(
                select(FaceTemplate).where(
                    FaceTemplate.person_kind == "trainee", FaceTemplate.person_id == checkin.trainee_id
                ).order_by(FaceTemplate.id)
            ).all()
            cls = session.get(TrainingClass, checkin.class_id)
            venue = session.get(Venue, cls.venue_id) if cls else None
            assert cls is not None and venue is not None
            challenge = session.get(LivenessChallenge, checkin.liveness_challenge_id) \
                if checkin.liveness_challenge_id else None
            window = session.get(ClassSession, checkin.session_id) if checkin.session_id else None
            frame_shas = list(session.scalars(select(CheckInFrame.sha256).where(CheckInFrame.checkin_id == checkin_id)
                                              .order_by(CheckInFrame.index)))
            session.expunge_all()
        fix = (checkin.lat, checkin.lon)

        scan = self.engine.scan(self.evidence.get(checkin.photo_sha256), "selfie")
        face = scan.faces[0] if len(scan.faces) == 1 else None
        match = match_face(face.encoding, [tp.encoding for tp in templates], t.face_match) \
            if face and templates else None
        signed = venue_signed_distance_m(venue, *fix)
        fence = classify_fix(signed, checkin.accuracy_m)

        day_start = local_day_start(checkin.received_at)
        with self.db.session() as session:
            uncertain_today = count_uncertain_fixes(session, checkin.trainee_id, day_start) + (
                fence is FenceResult.UNCERTAIN)
            previous = prior_checkin_of_trainee(session, checkin)
            same_coords = same_coordinates_other_devices(session, checkin)
            classmates = classmates_evidence(session, checkin, day_start) if match else {}
            elsewhere = session.scalars(select(CheckIn).where(
                CheckIn.trainee_id == checkin.trainee_id, CheckIn.class_id != checkin.class_id,
                CheckIn.status == "passed",
                CheckIn.captured_at >= checkin.captured_at - timedelta(minutes=30),
                CheckIn.captured_at <= checkin.captured_at + timedelta(minutes=30)).limit(1)).first()
            device_recent = device_checkins_since(
                session, checkin.device_id, checkin.received_at - timedelta(seconds=t.proxy_device_window_s),
                exclude_id=checkin.id)
            self.photo_index.refresh(session)
        near = self.photo_index.find_near(scan.phash, t.replay_phash_max_distance)
        exif_time = exif_time_utc(scan.exif_time)
        others = rank_other_people(face.encoding, classmates) if face and match else []
        findings, review = judge_checkin_face(len(scan.faces), quality_of(face), match, t, others)
        findings += judge_fence(fence, signed, checkin.accuracy_m, uncertain_today, t)
        findings += judge_gps(checkin.mock_location, checkin.accuracy_m, fix, checkin.captured_at, previous,
                              distance_m(fix, (previous.lat, previous.lon)) if previous else None, same_coords, t)
        findings += judge_replay(near, exif_time, checkin.received_at, scan.exif_gps,
                                 distance_m(scan.exif_gps, fix) if scan.exif_gps else None, t)
        findings += judge_proxy(checkin.trainee_id, device_recent, t)
        if window is not None:
            findings += judge_session_time(checkin.kind, checkin.captured_at.astimezone(SHANGHAI), window.start_local,
                                           window.end_local, self.settings.session_grace_minutes)
        if elsewhere is not None:
            findings += judge_two_places(
                distance_m(fix, (elsewhere.lat, elsewhere.lon)),
                abs((checkin.captured_at - elsewhere.captured_at).total_seconds()) / 60,
                elsewhere.class_id, elsewhere.id)
        frame_hashes: list[tuple[str, str]] = []
        liveness = None
        if challenge is not None:
            frame_scans = [self.engine.scan(self.evidence.get(sha), "frame") for sha in frame_shas]
            frame_hashes = [(sha, fs.phash) for sha, fs in zip(frame_shas, frame_scans, strict=True)]
            replayed = sum(1 for fs in frame_scans if self.photo_index.find_near(fs.phash, t.replay_phash_max_distance))
            facts = [FrameFacts(face_count=len(fs.faces), encoding=fs.faces[0].encoding if len(fs.faces) == 1 else None,
                                landmarks=fs.faces[0].landmarks if len(fs.faces) == 1 else None, phash=fs.phash)
                     for fs in frame_scans]
            lively, liveness = judge_liveness(
                ChallengeFacts(action=challenge.action, trainee_id=challenge.trainee_id, class_id=challenge.class_id,
                               expires_at=challenge.expires_at,
                               used_by_other_checkin=challenge.used_by_checkin_id not in (None, checkin_id)),
                checkin.trainee_id, checkin.class_id, checkin.received_at, facts,
                face.encoding if face else None, replayed,
                LivenessThresholds(face_match=self.settings.liveness_frame_max_distance))
            findings += lively
        findings = merge_findings(findings)

        enrolled_sha = templates[match.template_index].photo_sha256 if match else (
            templates[0].photo_sha256 if templates else None)
        measured = {
            "face_count": len(scan.faces),
            "background_faces": scan.background_faces,
            "faces": [face_measures(f) for f in scan.faces],
            "face_distance": match.distance if match else None,
            "nearest_classmates": [{"trainee_id": o.person_id, "median_distance": round(o.distance, 4),
                                    "min_distance": round(o.nearest, 4)} for o in others[:3]],
            "fence_signed_distance_m": round(signed, 2),
            "accuracy_m": checkin.accuracy_m,
            "image_size": [scan.width, scan.height],
            "phash": scan.phash,
            "exif_time": scan.exif_time,
            "exif_gps": list(scan.exif_gps) if scan.exif_gps else None,
            "exif_notes": scan.exif_notes,
            "near_copies": len(near),
            "scanned_by_pid": scan.extra.get("pid"),
            "liveness": liveness,
            "review": {"code": review.code, "message": review.message} if review else None,
        }
        self._record(
            kind="checkin", topic=CHECKIN_TOPIC, subject_id=checkin_id, findings=findings, review=review,
            verification=Verification(
                subject_kind="checkin", subject_id=checkin_id, passed=not findings and review is None,
                face_count=len(scan.faces), face_distance=match.distance if match else None,
                fence_result=fence.value, fence_distance_m=signed, measured=measured,
                thresholds=t.as_dict(), model_version=self.engine.model_version,
                reasons=[f.as_reason() for f in findings], needs_review=review is not None,
                face_encoding=face.encoding if face else None, created_at=utc_now(),
            ),
            photo=(checkin.photo_sha256, scan.phash), frames=frame_hashes,
            extra={"photo_sha256": checkin.photo_sha256, "enrolled_photo_sha256": enrolled_sha,
                   "fix": {"lat": fix[0], "lon": fix[1], "accuracy_m": checkin.accuracy_m},
                   "fence_result": fence.value},
        )

    def handle_snapshot(self, message: dict[str, Any]) -> None:
        """Count the faces in one classroom snapshot and check it is not a replayed photo; idempotent."""
        snapshot_id = int(message["snapshot_id"])
        t = self.thresholds
        with self.db.session() as session:
            snapshot = self._load_unverified(session, Snapshot, snapshot_id, SNAPSHOT_TOPIC)
            if snapshot is None:
                return
            photo_sha, received_at = snapshot.photo_sha256, snapshot.received_at
            cls = session.get(TrainingClass, snapshot.class_id)
            assert cls is not None
            teachers = [cls.theory_teacher_id, cls.practical_teacher_id]
            roster = list(session.scalars(select(RosterEntry.trainee_id).where(RosterEntry.class_id == cls.id)))
            candidates = (templates_of(session, "trainee", roster) + templates_of(session, "teacher", teachers)
                          + other_teacher_templates(session, teachers))
            signed_in = count_signed_in(session, cls.id, local_day_start(received_at))
            self.photo_index.refresh(session)
        scan = self.engine.scan(self.evidence.get(photo_sha), "classroom")
        near = self.photo_index.find_near(scan.phash, t.replay_phash_max_distance)
        who = identify_faces(scan.encodings, candidates, t.face_match)
        seen = {kind: sorted({w.person_id for w in who if w and w.kind == kind})
                for kind in ("trainee", "teacher", "other_teacher")}
        findings = judge_snapshot_faces(len(scan.faces))
        findings += judge_headcount(len(scan.faces), signed_in, self.settings.headcount_min_ratio,
                                    self.settings.headcount_min_signed_in)
        findings += judge_replay(near, exif_time_utc(scan.exif_time), received_at, None, None, t)
        self._record(
            kind="snapshot", topic=SNAPSHOT_TOPIC, subject_id=snapshot_id, findings=findings, review=None,
            verification=Verification(
                subject_kind="snapshot", subject_id=snapshot_id, passed=not findings,
                face_count=len(scan.faces), face_distance=None, fence_result=None, fence_distance_m=None,
                measured={"face_count": len(scan.faces), "faces": [face_measures(f) for f in scan.faces],
                          "image_size": [scan.width, scan.height], "phash": scan.phash,
                          "exif_time": scan.exif_time, "exif_notes": scan.exif_notes, "near_copies": len(near),
                          "signed_in": signed_in,
                          "trainees_seen": seen["trainee"], "teachers_seen": seen["teacher"],
                          "other_teachers_seen": seen["other_teacher"],
                          "unknown_faces": sum(1 for w in who if w is None)},
                thresholds=t.as_dict(), model_version=self.engine.model_version,
                reasons=[f.as_reason() for f in findings], created_at=utc_now(),
            ),
            photo=(photo_sha, scan.phash),
            extra={"photo_sha256": photo_sha, "face_count": len(scan.faces), "signed_in": signed_in,
                   "teachers_seen": seen["teacher"], "unknown_faces": sum(1 for w in who if w is None)},
        )

    def handle_heartbeat(self, message: dict[str, Any]) -> None:
        """Verify one online-study face heartbeat; fire ONLINE_OVER_8H when the day's verified study exceeds the cap."""
        beat_id = int(message["heartbeat_id"])
        t = self.thresholds
        with self.db.session() as session:
            beat = session.get(OnlineHeartbeat, beat_id)
            if beat is None or beat.status != "pending":
                self._mark_processed(session, HEARTBEAT_TOPIC, beat_id)
                return
            online = session.get(OnlineSession, beat.session_id)
            assert online is not None
            templates = [tp.encoding for tp in session.scalars(select(FaceTemplate).where(
                FaceTemplate.person_kind == "trainee", FaceTemplate.person_id == online.trainee_id))]
            photo_sha = beat.photo_sha256
        scan = self.engine.scan(self.evidence.get(photo_sha), "selfie")
        match = match_face(scan.faces[0].encoding, templates, t.face_match) \
            if len(scan.faces) == 1 and templates else None
        passed = bool(match and match.matched)
        try:
            with self.db.session() as session:
                beat = session.get(OnlineHeartbeat, beat_id)
                assert beat is not None
                if beat.status != "pending":
                    return
                beat.status, beat.face_distance = ("passed" if passed else "failed"), match.distance if match else None
                session.add(PhotoHash(sha256=photo_sha, phash=scan.phash, subject_kind="heartbeat",
                                      subject_id=beat_id, created_at=utc_now()))
                cls = session.get(TrainingClass, online.class_id)
                assert cls is not None
                context = class_context(session, cls)
                trainee = session.get(Trainee, online.trainee_id)
                people = {"trainee_id": online.trainee_id, "trainee_name": trainee.name if trainee else None}
                session.flush()
                day = beat.captured_at.astimezone(SHANGHAI).date()
                study = online_day(session, online.trainee_id, day, self.settings.online_max_gap_minutes,
                                   self.settings.online_daily_cap_minutes, utc_now())
                findings = judge_online_day(study, self.settings.online_daily_cap_minutes)
                if findings and (subject_id := claim_subject(session, f"ONLINE:{online.trainee_id}:{day}")):
                    for finding in findings:
                        add_anomaly(session, context, finding, "clock", subject_id, people,
                                    {"online_session_id": online.id, "photo_sha256": photo_sha}, {})
                add_event(session, "verdict", context, {
                    "subject_kind": "heartbeat", "subject_id": beat_id, "status": beat.status, "kind": "heartbeat",
                    "reasons": [], "at": utc_now().isoformat(), "photo_sha256": photo_sha, **people})
                self._mark_processed(session, HEARTBEAT_TOPIC, beat_id)
        except IntegrityError:
            log.info("heartbeat %s was verified concurrently", beat_id)

    def _record(self, kind: str, topic: str, subject_id: int, findings: list[Finding], review: Review | None,
                verification: Verification, photo: tuple[str, str] | None, extra: dict[str, Any],
                frames: Sequence[tuple[str, str]] = ()) -> None:
        """Store verification, photo hash, anomalies, review item, events and the new status in one transaction."""
        try:
            with self.db.session() as session:
                if self._already_verified(session, kind, subject_id):
                    self._mark_processed(session, topic, subject_id)
                    return
                session.add(verification)
                if photo is not None:
                    session.add(PhotoHash(sha256=photo[0], phash=photo[1], subject_kind=kind, subject_id=subject_id,
                                          created_at=utc_now()))
                for sha, phash in frames:
                    session.add(PhotoHash(sha256=sha, phash=phash, subject_kind="frame", subject_id=subject_id,
                                          created_at=utc_now()))
                session.flush()
                subject = session.get(CheckIn if kind == "checkin" else Snapshot, subject_id)
                assert subject is not None
                subject.status = "failed" if findings else ("review" if review else "passed")
                if isinstance(subject, CheckIn) and subject.status == "passed":
                    resolve_attendance(session, subject)
                cls = session.get(TrainingClass, subject.class_id)
                assert cls is not None
                context = class_context(session, cls)
                trainee_id = getattr(subject, "trainee_id", None)
                trainee = session.get(Trainee, trainee_id) if trainee_id else None
                people = {"trainee_id": trainee_id, "trainee_name": trainee.name if trainee else None}
                for finding in findings:
                    add_anomaly(session, context, finding, kind, subject_id, people,
                                {**extra, "verification_id": verification.id}, verification.thresholds)
                if review is not None:
                    session.add(ReviewItem(
                        subject_kind=kind, subject_id=subject_id, class_id=cls.id, trainee_id=trainee_id,
                        reason_code=review.code, message=review.message, measured=review.measured,
                        thresholds=review.thresholds, state="open", created_at=utc_now()))
                reasons = list(verification.reasons)
                if review is not None:
                    reasons.append({"code": review.code, "message": review.message})
                add_event(session, "verdict", context, {
                    "subject_kind": kind, "subject_id": subject_id, "status": subject.status,
                    "kind": getattr(subject, "kind", "snapshot"), "reasons": reasons,
                    "face_count": verification.face_count, "verification_id": verification.id,
                    "at": verification.created_at.isoformat(), **people, **extra,
                })
                self._mark_processed(session, topic, subject_id)
        except IntegrityError:
            log.info("%s %s was verified concurrently; nothing to do", kind, subject_id)

    # -- clock -----------------------------------------------------------------------------
    def tick_clock(self) -> int:
        """Publish class status changes (scheduled → in_session → between → finished); returns how many."""
        local_now = utc_now().astimezone(SHANGHAI)
        changed = 0
        with self.db.session() as session:
            classes = session.scalars(
                select(TrainingClass).where(TrainingClass.end_date >= local_now.date() - timedelta(days=1))
            ).all()
            for cls in classes:
                sessions = [
                    (s.start_local, s.end_local)
                    for s in session.scalars(select(ClassSession).where(ClassSession.class_id == cls.id))
                ]
                status = class_status_at(local_now, cls.start_date, cls.end_date, sessions)
                row = session.get(ClassStatus, cls.id)
                if row is not None and row.status == status:
                    continue
                previous = row.status if row else None
                if row is None:
                    session.add(ClassStatus(class_id=cls.id, status=status, updated_at=utc_now()))
                else:
                    row.status, row.updated_at = status, utc_now()
                cls.status = status
                add_event(session, "class_status", class_context(session, cls), {
                    "status": status, "status_name": STATUS_NAMES[status], "previous": previous,
                    "at": utc_now().isoformat(),
                })
                changed += 1
        return changed

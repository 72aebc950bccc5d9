"""The camera puller (issue 19): a frame from every active camera of a class in session, at the camera's interval,
submitted through the same path as a site's classroom snapshot (same evidence store, outbox and verification), and
the cameras' health: CAMERA_OFFLINE and FROZEN_FEED raised, and resolved when good frames return.

Bounded: each pull runs in a small thread pool with its own open and read timeouts, so a slow camera holds one
thread and never delays the others; a failing camera is retried with exponential back-off. Scales out like
workers: a camera is claimed by one puller at a time through a lease in `camera_health` (a conditional UPDATE), so
any number of processes may run pullers; a puller that dies lets its cameras go when its leases lapse.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.acceptance import accept_and_queue, class_in_scope
from ingest.adapters.images import AcceptedImage
from ingest.context import IngestContext
from ingest.outbox import SNAPSHOT_TOPIC
from models.clock import SHANGHAI, local_at, utc_now
from models.domain import AnomalyCode
from models.errors import ApiError
from models.tables import Anomaly, Camera, CameraHealth, ClassSession, Snapshot, TrainingClass
from models.terms import SubjectKind, UploadStatus
from monitor.adapters.camera_keys import CameraKeyError, CameraKeyring
from monitor.adapters.camera_stream import encode_jpeg, grab_burst, to_grey, with_credentials
from monitor.adapters.storage import Database
from monitor.decisions.camera_health import (
    CameraLimits,
    Grey,
    backoff_seconds,
    frame_defect,
    frame_difference,
    is_same_picture,
    judge_frozen,
    judge_offline,
    pick_frame,
)
from monitor.decisions.schedule import class_status_at
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import add_anomaly, resolve_anomaly
from monitor.services.events import class_context
from monitor.services.snapshots import CAMERA_PREFIX
from monitor.settings import Settings

log = logging.getLogger(__name__)


def camera_subject(camera_id: int) -> str:
    """The `camera_id` a camera's snapshots carry (a site's own snapshots name their camera freely)."""
    return f"{CAMERA_PREFIX}{camera_id}"


@dataclass(frozen=True)
class DueCamera:
    """A camera of a class in session, and since when it is expected to give frames."""

    camera_id: int
    class_id: int
    watched_since: datetime  # UTC: the session's start today, or the camera's registration if later


def ensure_health(session: Session, camera_id: int, now: datetime) -> CameraHealth:
    """The camera's health row (made idle when missing)."""
    row = session.get(CameraHealth, camera_id)
    if row is None:
        try:
            with session.begin_nested():
                row = CameraHealth(camera_id=camera_id, state="idle", since=now, failures=0, same_frames=0)
                session.add(row)
                session.flush()
        except IntegrityError:  # another puller made it at the same moment
            row = session.get(CameraHealth, camera_id)
    assert row is not None
    return row


def cameras_in_session(session: Session, now: datetime) -> list[DueCamera]:
    """Every active camera whose venue holds a class in session now (the class clock's own rule:
    monitor/decisions/schedule.py), with the class it watches: the lowest-numbered when several share a venue."""
    local = now.astimezone(SHANGHAI)
    today = local.date()
    cameras = session.execute(select(Camera.id, Camera.venue_id, Camera.created_at).where(Camera.active)).all()
    if not cameras:
        return []
    venues = {c.venue_id for c in cameras}
    classes = session.execute(select(TrainingClass.id, TrainingClass.venue_id, TrainingClass.start_date,
                                     TrainingClass.end_date).where(
        TrainingClass.venue_id.in_(venues), TrainingClass.mode == "offline", TrainingClass.start_date <= today,
        TrainingClass.end_date >= today).order_by(TrainingClass.id)).all()
    sessions: dict[int, list[tuple[str, str]]] = {}
    for class_id, start, end in session.execute(select(ClassSession.class_id, ClassSession.start_local,
                                                       ClassSession.end_local).where(
            ClassSession.class_id.in_([c.id for c in classes]))):
        sessions.setdefault(class_id, []).append((start, end))
    in_session: dict[int, tuple[int, datetime]] = {}
    for c in classes:
        windows = sessions.get(c.id, [])
        if c.venue_id in in_session or class_status_at(local, c.start_date, c.end_date, windows) != "in_session":
            continue
        hhmm = local.strftime("%H:%M")
        start = min(s for s, e in windows if s <= hhmm < e)
        in_session[c.venue_id] = (c.id, local_at(today, start))
    return [DueCamera(cam.id, in_session[cam.venue_id][0], max(in_session[cam.venue_id][1], cam.created_at))
            for cam in cameras if cam.venue_id in in_session]


def claim(conn: Connection, camera_id: int, owner: str, now: datetime, lease_s: float) -> bool:
    """Take the camera for one pull if it is due and no other puller holds it (one conditional UPDATE: of several
    pullers asking at once, exactly one gets it)."""
    h = CameraHealth
    result = conn.execute(update(h).where(
        h.camera_id == camera_id,
        or_(h.lease_owner.is_(None), h.lease_owner == owner, h.lease_until < now),
        or_(h.next_pull_at.is_(None), h.next_pull_at <= now),
    ).values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s)).execution_options(
        synchronize_session=False))
    return result.rowcount == 1


def open_anomalies(session: Session, camera_id: int, rule: AnomalyCode) -> list[Anomaly]:
    return list(session.scalars(select(Anomaly).where(
        Anomaly.subject_kind == SubjectKind.CAMERA, Anomaly.subject_id == camera_id, Anomaly.rule == rule.value,
        Anomaly.state == "open")))


def resolve_camera(session: Session, camera_id: int, rule: AnomalyCode, note: str) -> int:
    """Resolve the camera's open anomalies of `rule` (frames returned); returns how many."""
    found = open_anomalies(session, camera_id, rule)
    for anomaly in found:
        resolve_anomaly(session, anomaly, note)
    return len(found)


def raise_camera(session: Session, camera: Camera, class_id: int, finding: Finding, limits: CameraLimits) -> None:
    """One anomaly for the camera, unless one of its rule is still open (one per episode)."""
    if open_anomalies(session, camera.id, finding.code):
        return
    cls = session.get(TrainingClass, class_id)
    assert cls is not None
    add_anomaly(session, class_context(session, cls), finding, SubjectKind.CAMERA, camera.id,
                {"trainee_id": None, "trainee_name": None},
                {"camera_id": camera.id, "camera_name": camera.name, "venue_id": camera.venue_id}, limits.as_dict())


@dataclass
class Pulled:
    """What a pull gave: the chosen frame's JPEG and grey copy, or why there is none."""

    jpeg: bytes | None
    grey: Grey | None
    error: str | None
    defects: list[str | None]


class CameraPuller:
    """Pulls frames from the cameras of classes in session; one object per process (a role: start, stop)."""

    def __init__(self, settings: Settings, db: Database, ingest: IngestContext, keyring: CameraKeyring,
                 owner: str | None = None) -> None:
        self.settings, self.db, self.ingest, self.keyring = settings, db, ingest, keyring
        self.limits = settings.camera_limits()
        self.owner = owner or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool: ThreadPoolExecutor | None = None
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._pictures: dict[int, Grey] = {}  # each camera's last picture, to tell a frozen feed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the role's life ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._pool = ThreadPoolExecutor(self.settings.camera_threads, thread_name_prefix="camera-pull")
        self._thread = threading.Thread(target=self._loop, name="camera-puller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # a pull in flight ends at its own timeouts
            self._pool = None
        self.release_leases()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:  # noqa: BLE001 - keep pulling after a transient database error
                log.exception("camera scan failed")
            self._stop.wait(self.settings.camera_scan_seconds)

    # -- one pass -------------------------------------------------------------------------------------------------
    def scan(self, now: datetime | None = None, wait: bool = False) -> list[int]:
        """Claim every due camera not being pulled here and hand each to the pool; returns the cameras claimed.
        `wait` pulls them in this thread instead, one after the other (tests, the CLI)."""
        now = now or utc_now()
        with self.db.session() as session:
            due = cameras_in_session(session, now)
            for d in due:
                ensure_health(session, d.camera_id, now)
        claimed = []
        for d in due:
            with self._lock:
                if d.camera_id in self._busy:
                    continue
            with self.db.writing() as conn:
                if not claim(conn, d.camera_id, self.owner, now, self.settings.camera_lease_seconds):
                    continue
            claimed.append(d.camera_id)
            if wait or self._pool is None:
                self.pull(d)
                continue
            with self._lock:
                self._busy.add(d.camera_id)
            self._pool.submit(self._pull_in_pool, d)
        return claimed

    def _pull_in_pool(self, due: DueCamera) -> None:
        try:
            self.pull(due)
        except Exception:  # noqa: BLE001 - one camera's failure must not stop the pool
            log.exception("camera %s: pull failed", due.camera_id)
        finally:
            with self._lock:
                self._busy.discard(due.camera_id)

    def release_leases(self) -> None:
        """Let other pullers take this one's cameras at once (on a clean stop)."""
        try:
            with self.db.writing() as conn:
                conn.execute(update(CameraHealth).where(CameraHealth.lease_owner == self.owner)
                             .values(lease_owner=None, lease_until=None))
        except Exception:  # noqa: BLE001 - the leases lapse by themselves
            log.warning("camera leases not released; they lapse after %ss", self.settings.camera_lease_seconds,
                        exc_info=True)

    # -- one camera -----------------------------------------------------------------------------------------------
    def read_frame(self, camera: Camera) -> Pulled:
        """Open the camera's stream, take a burst, keep its last usable frame."""
        url = camera.stream_url
        if camera.credentials_encrypted:
            try:
                url = with_credentials(url, *self.keyring.decrypt(camera.credentials_encrypted, camera.key_id))
            except CameraKeyError:
                return Pulled(None, None, "摄像头凭据无法解密（密钥不符）", [])
        s = self.settings
        burst = grab_burst(url, camera.kind, s.camera_burst_frames, s.camera_open_timeout_seconds,
                           s.camera_read_timeout_seconds)
        greys = [to_grey(f) if f is not None else None for f in burst.frames]
        defects = [frame_defect(g, self.limits) for g in greys]
        chosen = pick_frame(defects)
        if chosen is None:
            error = burst.error or "画面不可用（" + "、".join(sorted({d for d in defects if d})) + "）"
            return Pulled(None, None, error, defects)
        frame = burst.frames[chosen]
        assert frame is not None
        return Pulled(encode_jpeg(frame), greys[chosen], None, defects)

    def pull(self, due: DueCamera) -> None:
        """Take a frame from one claimed camera, submit it as a snapshot, and judge the camera's health."""
        with self.db.session() as session:
            camera = session.get(Camera, due.camera_id)
            if camera is None or not camera.active:
                return
            session.expunge(camera)
        pulled = self.read_frame(camera)
        now = utc_now()
        snapshot_id, submit_error = None, None
        previous = self._pictures.get(camera.id)
        difference = frame_difference(pulled.grey, previous) if pulled.grey is not None and previous is not None \
            else None
        same = difference is not None and is_same_picture(difference, self.limits)
        if pulled.jpeg is not None and pulled.grey is not None:
            self._pictures[camera.id] = pulled.grey
            if not same:  # the same picture again is no new evidence (and would be refused as a replayed photo)
                snapshot_id, submit_error = self.submit(camera, due.class_id, pulled.jpeg, now)
        with self.db.session() as session:
            health = ensure_health(session, camera.id, now)
            self.judge(session, camera, due, health, pulled, same, difference, now)
            if snapshot_id is not None:
                health.last_snapshot_id = snapshot_id
            if submit_error:
                health.last_error = submit_error
            wait = backoff_seconds(health.failures, camera.interval_seconds, self.settings.camera_backoff_max_seconds)
            health.next_pull_at = now + timedelta(seconds=wait)
            health.lease_owner = self.owner
            health.lease_until = health.next_pull_at + timedelta(seconds=self.settings.camera_lease_seconds)

    def judge(self, session: Session, camera: Camera, due: DueCamera, health: CameraHealth, pulled: Pulled,
              same: bool, difference: float | None, now: datetime) -> None:
        """Update the camera's health and raise or resolve CAMERA_OFFLINE and FROZEN_FEED."""
        health.last_attempt_at = now
        local = now.astimezone(SHANGHAI)
        if pulled.jpeg is None:
            health.failures += 1
            health.last_error = pulled.error
            log.info("camera %s (%s): no usable frame: %s", camera.id, camera.kind, pulled.error)
            found = judge_offline(health.last_frame_at, due.watched_since, now, pulled.error, self.limits)
            if found and health.state != "offline":
                raise_camera(session, camera, due.class_id, found[0], self.limits)
                health.state, health.since = "offline", now
            return
        health.failures, health.last_frame_at, health.last_error = 0, now, None
        if health.state == "offline" or open_anomalies(session, camera.id, AnomalyCode.CAMERA_OFFLINE):
            resolve_camera(session, camera.id, AnomalyCode.CAMERA_OFFLINE,
                           f"摄像头已于 {local:%m月%d日 %H:%M} 恢复传回画面")
        if same:
            health.same_frames += 1
            found = judge_frozen(health.same_frames, difference, self.limits)
            if found and health.state != "frozen":
                raise_camera(session, camera, due.class_id, found[0], self.limits)
                health.state, health.since = "frozen", now
            elif not found and health.state != "ok":
                health.state, health.since = "ok", now
            return
        health.same_frames = 0
        if health.state == "frozen" or open_anomalies(session, camera.id, AnomalyCode.FROZEN_FEED):
            resolve_camera(session, camera.id, AnomalyCode.FROZEN_FEED,
                           f"摄像头画面已于 {local:%m月%d日 %H:%M} 恢复变化")
        if health.state != "ok":
            health.state, health.since = "ok", now

    def submit(self, camera: Camera, class_id: int, jpeg: bytes, now: datetime) -> tuple[int | None, str | None]:
        """The frame as a classroom snapshot, through the sites' own acceptance (ingest/acceptance.py): evidence
        file and row, snapshot row and outbox message in one transaction, then the bus and the verification."""
        with self.db.session() as session:
            cls = session.get(TrainingClass, class_id)
            if cls is None:
                return None, "班次不存在"
            institution_id = cls.institution_id
        key = f"{camera_subject(camera.id)}:{int(now.timestamp() * 1000)}"

        def build(conn: Connection, image: AcceptedImage) -> Snapshot:
            class_in_scope(conn, class_id, institution_id, now.astimezone(SHANGHAI).date())
            return Snapshot(class_id=class_id, institution_id=institution_id, camera_id=camera_subject(camera.id),
                            captured_at=now, received_at=now, photo_sha256=image.sha256, idempotency_key=key,
                            status=UploadStatus.PENDING)

        try:
            subject_id, _created, _body = accept_and_queue(self.ingest, Snapshot, institution_id, key, jpeg, build,
                                                           SNAPSHOT_TOPIC)
        except ApiError as exc:  # e.g. the class ended since the scan, or the very same photo came before
            log.info("camera %s: frame not accepted: %s", camera.id, exc.code)
            return None, f"抓拍未受理：{exc.message}"
        return subject_id, None


def camera_health_out(session: Session, camera: Camera) -> dict[str, Any]:
    """A camera's health as the API shows it (no URL, no credentials)."""
    health = session.get(CameraHealth, camera.id)
    open_rules = sorted({a.rule for a in session.scalars(select(Anomaly).where(
        Anomaly.subject_kind == SubjectKind.CAMERA, Anomaly.subject_id == camera.id, Anomaly.state == "open"))})
    return {
        "camera_id": camera.id, "active": camera.active,
        "state": health.state if health else "idle",
        "since": health.since.isoformat() if health else None,
        "last_frame_at": health.last_frame_at.isoformat() if health and health.last_frame_at else None,
        "last_attempt_at": health.last_attempt_at.isoformat() if health and health.last_attempt_at else None,
        "last_error": health.last_error if health else None,
        "failures": health.failures if health else 0,
        "same_frames": health.same_frames if health else 0,
        "last_snapshot_id": health.last_snapshot_id if health else None,
        "next_pull_at": health.next_pull_at.isoformat() if health and health.next_pull_at else None,
        "open_anomalies": open_rules,
    }


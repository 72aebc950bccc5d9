"""The worker process's wiring: bus topics to their verification pipelines; the relay, clock and dispatch loops."""

from __future__ import annotations

import logging
import threading
import time

from ingest.adapters.evidence import EvidenceStore
from ingest.outbox import CHECKIN_TOPIC, HEARTBEAT_TOPIC, SNAPSHOT_TOPIC, SUBJECT_KEYS
from models.clock import utc_now
from monitor.adapters.audit_keys import read_anchors
from monitor.adapters.bus import Bus
from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_pool import ProcessFaceEngine
from monitor.adapters.storage import Database
from monitor.services.audit import anchor_head, check_audit, record_check, take_requests
from monitor.services.checkins import verify_checkin
from monitor.services.class_status import tick_class_status
from monitor.services.clock import PolicyClock
from monitor.services.context import WorkerContext
from monitor.services.crosscheck import crosscheck_all
from monitor.services.dispatch import DispatchClock
from monitor.services.draws import draw_due
from monitor.services.evidence_health import check_evidence, sweep_orphans
from monitor.services.failures import Handler, guard_handler
from monitor.services.heartbeats import verify_heartbeat
from monitor.services.leader import LeaderLease
from monitor.services.registers import sweep_staging
from monitor.services.relay import relay_outbox
from monitor.services.snapshots import verify_snapshot
from monitor.settings import Settings

log = logging.getLogger(__name__)

PIPELINES: dict[str, Handler] = {
    CHECKIN_TOPIC: verify_checkin,
    SNAPSHOT_TOPIC: verify_snapshot,
    HEARTBEAT_TOPIC: verify_heartbeat,
}


class Worker:
    """Subscribes each topic's pipeline to the bus (`verify`), and runs three background loops: the outbox relay,
    and, while this process holds the scheduler's lease (`settings.scheduler`; one process of a cluster at a time),
    the clock (class status, clock rules, cross-checks, the evidence janitor) and dispatch (routing, escalation,
    draws), and the audit chain's sealing, anchors and periodic verification."""

    def __init__(self, settings: Settings, db: Database, bus: Bus, evidence: EvidenceStore,
                 engine: FaceEngine | ProcessFaceEngine, verify: bool = True):
        self.ctx = WorkerContext(settings, db, evidence, engine)
        self.settings, self.db, self.bus, self.engine, self.verify = settings, db, bus, engine, verify
        self.policy = PolicyClock(settings, db)
        self.dispatch = DispatchClock(settings, db)
        self.lease = LeaderLease(db, settings.scheduler_lease_seconds)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def leads(self) -> bool:
        """Whether this process runs the scheduler now (it may, and it holds the lease)."""
        return self.settings.scheduler and self.lease.held()

    def start(self) -> None:
        if self.verify:
            for topic, pipeline in PIPELINES.items():
                self.bus.subscribe(topic, guard_handler(self.ctx, topic, SUBJECT_KEYS[topic], pipeline))
            self.engine.warm_up()  # the first seconds' uploads must not wait for the face processes to start
            self.bus.start(concurrency=self.engine.processes)
        self._stop.clear()
        for name, target in (("relay", self._relay_loop), ("clock", self._clock_loop),
                             ("dispatch", self._dispatch_loop), ("audit-check", self._audit_check_loop)):
            thread = threading.Thread(target=target, name=f"worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self.verify:
            self.bus.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self.settings.scheduler:
            self.lease.release()  # another process takes the scheduler over at once

    # What tests and the CLI drive directly.
    def handle_checkin(self, message: dict[str, int]) -> None:
        verify_checkin(self.ctx, int(message["checkin_id"]))

    def relay_outbox(self) -> int:
        return relay_outbox(self.ctx, self.bus)

    def tick_clock(self) -> int:
        return tick_class_status(self.db)

    def anchor_audit(self) -> None:
        """Note the chain's head in the anchors file outside the database (when it moved)."""
        anchor_head(self.db, self.settings.audit_anchor_path, utc_now())

    def check_audit(self, answers: list[int] | None = None) -> bool:
        """Verify the whole chain and every audited row now, keep the result (the wall alarms on a failed one),
        note it in the chain and answer the requests `answers`; whether it was intact."""
        started = utc_now()
        result = check_audit(self.db, self.settings.audit_keyring(create=False).keys,
                             read_anchors(self.settings.audit_anchor_path))
        record_check(self.db, result, started, utc_now(), answers or [])
        if not result.intact:
            log.error("audit check: %s", result.message[:300])
        files = check_evidence(self.db, self.ctx.evidence, self.settings.evidence_check_sample)
        log.info("evidence check: %d file(s) hashed, %d not as filed, %d restored", files.checked, files.faults,
                 files.restored)
        return result.intact

    def _audit_check_loop(self) -> None:
        """Checks on schedule (every `audit_check_interval_seconds`, the first a minute after start: a restart is a
        moment to look) and whenever an auditor asks for one (looked for every few seconds)."""
        every_s = self.settings.audit_check_interval_seconds
        due = time.monotonic() + min(60.0, every_s) if every_s > 0 else float("inf")
        while not self._stop.wait(min(5.0, every_s) if every_s > 0 else 5.0):
            if not self.leads():
                continue
            try:
                asked = take_requests(self.db, utc_now())
                if not asked and time.monotonic() < due:
                    continue
                self.check_audit(asked)
            except Exception:  # noqa: BLE001 - the next one runs on schedule
                log.exception("audit check failed")
            if every_s > 0 and time.monotonic() >= due:
                due = time.monotonic() + every_s

    def _relay_loop(self) -> None:
        anchored: float | None = None  # the first pass that leads anchors at once: a restart after a crash (no
        # anchor on the way out) would otherwise leave the chain unanchored for a whole interval
        while not self._stop.wait(self.settings.relay_interval_seconds):
            try:
                self.relay_outbox()
                if not self.leads():
                    continue
                self.db.seal_audit()  # what was committed since is chained within seconds (by the leader only)
                if anchored is None or time.monotonic() - anchored >= self.settings.audit_anchor_interval_seconds:
                    self.anchor_audit()
                    anchored = time.monotonic()
            except Exception:  # noqa: BLE001 - keep relaying after a transient database/bus error
                log.exception("outbox relay, audit sealing or anchoring failed")
        try:  # a last seal and anchor on the way out
            if self.leads():
                self.db.seal_audit()
                self.anchor_audit()
        except Exception:  # noqa: BLE001
            log.exception("final audit seal or anchor failed")

    def _dispatch_loop(self) -> None:
        while not self._stop.wait(self.settings.dispatch_interval_seconds):
            if not self.leads():
                continue
            try:
                self.dispatch.run()
                if self.settings.draw_auto:
                    with self.db.session() as session:
                        draw_due(session, self.settings, utc_now())  # 双随机: daily at draw_at, then supplementary
            except Exception:  # noqa: BLE001 - keep routing after a transient database error
                log.exception("dispatch pass failed")

    def _clock_loop(self) -> None:
        crosschecked: float | None = None
        swept: float | None = None
        while True:
            if not self.leads():
                if self._stop.wait(self.settings.clock_interval_seconds):
                    return
                continue
            try:
                self.tick_clock()
                if self.settings.clock_rules:
                    self.policy.run()
            except Exception:  # noqa: BLE001
                log.exception("clock tick failed")
            sweep_s = self.settings.evidence_sweep_minutes * 60
            if swept is None or time.monotonic() - swept >= sweep_s:
                try:
                    sweep_orphans(self.db, self.ctx.evidence, sweep_s)  # files of rolled-back writes
                    sweep_staging(self.db)  # register rows of a preview whose process died while staging
                except Exception:  # noqa: BLE001
                    log.exception("evidence or staging sweep failed")
                swept = time.monotonic()
            every_s = self.settings.crosscheck_interval_minutes * 60
            due = crosschecked is None or time.monotonic() - crosschecked >= every_s
            if self.settings.clock_rules and due:
                crosscheck_all(self.db, self.settings)  # clause 八: classes against the registers, every few hours
                crosschecked = time.monotonic()
            if self._stop.wait(self.settings.clock_interval_seconds):
                return

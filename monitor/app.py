"""The composition root: builds the whole dispatch center from Settings, in one place."""


import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from ingest.adapters.evidence import EvidenceStore
from ingest.checks.limits import RateLimits
from ingest.context import IngestContext, UploadLimits
from ingest.routes import ROUTERS as INGEST_ROUTERS
from monitor.adapters.bus import create_bus
from monitor.adapters.face_engine import create_face_engine
from monitor.adapters.logsafe import install_redaction
from monitor.adapters.storage import Database
from monitor.adapters.tokens import build_authenticator
from monitor.api import ROUTERS as CENTER_ROUTERS
from monitor.api.http import (
    BodySizeLimit,
    NoNulInAddress,
    RequestIds,
    SecurityHeaders,
    TokenBeforeBody,
    install_error_handlers,
    install_openapi,
)
from monitor.api.idempotency import IdempotentPosts, mark_commits
from monitor.services.cameras import CameraPuller
from monitor.services.identity import Enrolment
from monitor.services.reenrol import template_counts
from monitor.services.worker import Worker
from monitor.settings import Settings
from web.hub import EventHub
from web.live import build_live_router
from web.pages import mount_pages, not_found_page

log = logging.getLogger(__name__)
install_redaction()  # before anything logs: no token or whole ID number reaches a log line

def report_templates(db: Database, model_version: str) -> None:
    """Say at start-up which model decides and whether enrolments still wait for `monitor faces re-enrol`."""
    counts = template_counts(db)
    mine = counts.get(model_version, 0)
    others = {mv: n for mv, n in counts.items() if mv != model_version}
    log.info("face model %s: %d enrolment templates of it", model_version, mine)
    if sum(others.values()) > mine:
        log.warning("face model %s: %s templates of other models have no counterpart yet; trainees enrolled only "
                    "with them go to review until `monitor faces re-enrol` has run", model_version, others)


def create_app(settings: Settings | None = None, run_worker: bool = True) -> FastAPI:
    """The FastAPI app with storage migrated, the bus, the live hub and (by default) the worker."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current,  # the key lives outside the database
                  audit_keyring=lambda: settings.audit_keyring(create=False).keys)  # the sealer knows every key
    mark_commits(db.engine)  # an idempotent request's key is marked committed with its first write
    db.migrate()
    camera_keyring = settings.camera_keyring()  # cameras' credentials are encrypted with a key outside it too
    evidence = EvidenceStore(settings.evidence_dir)
    engine = create_face_engine(settings.face_processes, settings.load_face_model())
    report_templates(db, engine.model_version)
    bus = create_bus(settings.redis_url, settings.bus_claim_idle_seconds)
    hub = EventHub(db, ring_size=settings.live_ring_events, max_backlog=settings.live_max_backlog,
                   send_timeout_s=settings.live_send_timeout_seconds, ping_s=settings.live_ping_seconds,
                   recheck_s=settings.live_recheck_seconds)
    db.on_events_committed += [hub.notify, bus.announce_events]
    bus.on_events(hub.notify)
    worker = Worker(settings, db, bus, evidence, engine) if run_worker else None
    authenticate = build_authenticator(db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Worker threads for blocking work (database, files): more only fight over the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        await hub.start()
        if worker:
            worker.start()
        if puller:
            puller.start()
        try:
            yield
        finally:
            if puller:
                puller.stop()
            if worker:
                worker.stop()
            await hub.stop()
            bus.close()
            engine.close()
            db.dispose()

    # The center's network has no internet: /docs is web/static/docs.html over the vendored Swagger UI, and
    # ReDoc (CDN-only) is off.
    app = FastAPI(title="云南省职业技能培训监控调度中心", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.add_middleware(IdempotentPosts)  # inside the size limit: it reads bounded bodies only
    app.add_middleware(TokenBeforeBody, routes=lambda: app.routes, authenticate=authenticate)  # before any body
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(NoNulInAddress)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestIds)  # outermost: every answer, refusals included, carries its request id
    install_error_handlers(app, page_not_found=not_found_page)  # a browser's mistyped address: a zh-CN page
    limits = UploadLimits(
        max_pixels=settings.max_image_pixels,
        challenge_ttl_s=settings.liveness_challenge_ttl_seconds,
        max_future_skew_s=settings.max_future_skew_seconds,
        max_capture_age_s=settings.max_capture_age_seconds,
        max_accuracy_m=settings.max_accuracy_m,
        verdict_wait_s=settings.verdict_wait_seconds,
        challenge_limits=RateLimits(per_device=settings.challenges_per_device_minute,
                                    per_site=settings.challenges_per_site_minute,
                                    open_per_trainee=settings.challenges_open_per_trainee),
        online_limits=RateLimits(per_device=settings.online_sessions_per_device_minute,
                                 per_site=settings.online_sessions_per_site_minute, open_per_trainee=1),
    )
    app.state.authenticate = authenticate  # models.scope.access() asks it who holds a token
    app.state.ingest = IngestContext(db=db, evidence=evidence, limits=limits, publish=bus.publish,
                                     wait_for_verdict=hub.wait_for_verdict)
    app.state.camera_keyring = camera_keyring
    # The camera puller is a role of its own (start, stop): it runs with the worker, and several processes may run
    # one (each camera is leased to one puller at a time).
    puller = CameraPuller(settings, db, app.state.ingest, camera_keyring) if run_worker and settings.cameras_enabled \
        else None
    for router in INGEST_ROUTERS:
        app.include_router(router)
    for router in CENTER_ROUTERS:
        app.include_router(router)
    app.include_router(build_live_router(hub, db))

    mount_pages(app)
    install_openapi(app)
    enrolment = Enrolment(settings, db, evidence, engine)
    enrolment.start()
    app.state.settings, app.state.db, app.state.bus, app.state.enrolment = settings, db, bus, enrolment
    app.state.worker, app.state.hub, app.state.evidence, app.state.engine = worker, hub, evidence, engine
    app.state.camera_puller = puller
    return app

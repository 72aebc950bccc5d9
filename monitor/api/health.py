"""Is the center up: the database answers, which bus and whether this process runs the worker."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Request
from sqlalchemy import text

from models.domain import Role
from models.scope import Scope, access
from monitor.api.deps import Db, SettingsDep
from monitor.api.schemas.registration import HealthOut
from monitor.services.audit import check_out, latest_check, untrusted_alarm
from monitor.services.evidence_health import evidence_alarms, storage_state

router = APIRouter(prefix="/api/v1", tags=["ops"])


@router.get("/health", response_model=HealthOut)
def health(scope: Annotated[Scope, access()], db: Db, settings: SettingsDep, request: Request) -> dict[str, object]:
    with db.session() as session:
        session.execute(text("SELECT 1"))
        if scope.principal.role is Role.SITE:  # the site's page asks whether the center answers, nothing more
            return {"status": "ok"}
        audit = untrusted_alarm(session)
        last, doubt = latest_check(session, db)
        faults = evidence_alarms(session)
    storage = storage_state(settings.evidence_dir, settings.storage_low_free_mb * 2**20)
    broken = doubt is not None or (last is not None and not last.intact)
    bus_up = request.app.state.bus.reachable()
    return {"status": "degraded" if storage.low or audit or broken or faults or not bus_up else "ok",
            "database": db.engine.dialect.name, "bus": "redis-streams" if settings.redis_url else "in-process",
            "bus_reachable": bus_up,
            "worker": request.app.state.worker is not None,
            "storage": {**storage.as_json(), "evidence_faults": faults[0]["message"] if faults else ""},
            "pid": os.getpid(),
            "audit": {**(audit or {"untrusted": 0, "untrusted_seq": None, "message": ""}),
                      "last_check": check_out(last) if last else None, "check_doubt": doubt or ""}}

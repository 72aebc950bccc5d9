"""Every message ends in a final status: a photo that cannot be decoded, a handler that keeps failing, or a message
that is delivered again and again is recorded as VERIFICATION_FAILED instead of being retried forever."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ingest.adapters.evidence import EvidenceFault
from models.tables import OutboxMessage
from models.terms import SubjectKind
from monitor.adapters.photo_decode import UnreadablePhoto
from monitor.services.context import WorkerContext
from monitor.services.evidence_health import record_fault
from monitor.services.recorder import give_up_heartbeat, give_up_upload, unverifiable

log = logging.getLogger(__name__)

Handler = Callable[[WorkerContext, int], None]


def guard_handler(ctx: WorkerContext, topic: str, key: str, handler: Handler) -> Callable[[dict[str, Any]], None]:
    """The bus callback for `topic`: the subject id read from `message[key]`, `handler` run with a final status for
    every message (`max_verification_attempts` failures end as VERIFICATION_FAILED)."""

    def run(message: dict[str, Any]) -> None:
        try:
            subject_id = int(message[key])
        except (KeyError, TypeError, ValueError):
            log.error("malformed %s message dropped: %r", topic, sorted(message)[:5])
            return
        try:
            handler(ctx, subject_id)
        except UnreadablePhoto as exc:  # the decoder's own words stay in the log, not in the zh-CN reason
            log.warning("%s %s: photo not decodable: %s", topic, subject_id, exc)
            give_up(ctx, topic, subject_id, "照片无法解码（文件数据已损坏或不完整）")
        except EvidenceFault as fault:  # judged on a substituted photo would be worse than not judged
            record_fault(ctx.db, fault, "worker")
            what = "已被改动，与登记的校验码不符" if fault.kind == "altered" else "已不在存储中"
            give_up(ctx, topic, subject_id, f"证据照片{what}（已告警），未予核验")
        except Exception as exc:
            failures = note_failure(ctx, topic, subject_id, exc)
            if failures < ctx.settings.max_verification_attempts:
                raise  # the bus (or the outbox relay) delivers it again
            log.exception("%s %s failed %d times; giving up", topic, subject_id, failures)
            give_up(ctx, topic, subject_id, f"核验连续 {failures} 次出错（{type(exc).__name__}）")

    return run


def note_failure(ctx: WorkerContext, topic: str, subject_id: int, exc: Exception) -> int:
    """Count one more failure of the message's handler; returns how many there have been."""
    with ctx.db.session() as session:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic,
                                                                OutboxMessage.subject_id == subject_id)))
        for row in rows:
            row.failures = (row.failures or 0) + 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:300]
        return max((row.failures for row in rows), default=ctx.settings.max_verification_attempts)


def give_up(ctx: WorkerContext, topic: str, subject_id: int, reason: str) -> None:
    """Record the upload as not verifiable (status failed, VERIFICATION_FAILED for operators), so it never stays
    pending and is never sent again."""
    settings = ctx.settings
    finding = unverifiable(reason, {"max_verification_attempts": settings.max_verification_attempts,
                                    "max_publish_attempts": settings.max_publish_attempts})
    kind = SubjectKind(topic)
    if kind is SubjectKind.HEARTBEAT:
        give_up_heartbeat(ctx.db, subject_id, finding, ctx.thresholds.as_dict(), ctx.engine.model_version)
    else:
        give_up_upload(ctx.db, kind, subject_id, finding, ctx.thresholds.as_dict(), ctx.engine.model_version)

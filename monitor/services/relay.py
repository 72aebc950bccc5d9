"""The outbox relay: publishes accepted uploads no worker has processed (never sent, or sent long ago), and gives up
on a message that was delivered too often without being processed."""

from __future__ import annotations

import logging
from datetime import timedelta

from ingest.outbox import iter_pending_outbox
from models.clock import utc_now
from monitor.adapters.bus import Bus
from monitor.services.context import WorkerContext
from monitor.services.failures import give_up

log = logging.getLogger(__name__)


def relay_outbox(ctx: WorkerContext, bus: Bus) -> int:
    """Publish what is pending; returns how many messages were sent."""
    settings, now = ctx.settings, utc_now()
    sent = 0
    with ctx.db.session() as session:
        messages = list(iter_pending_outbox(
            session,
            # Leave the API time to publish what it has just committed (under load that can take more than a
            # second); the relay is for what it could not publish.
            created_before=now - timedelta(seconds=min(5.0, settings.redeliver_after_seconds)),
            older_than=now - timedelta(seconds=settings.redeliver_after_seconds),
        ))
        exhausted = [m for m in messages if m.attempts >= settings.max_publish_attempts]
        for msg in messages:
            if msg.attempts >= settings.max_publish_attempts:
                continue
            try:
                bus.publish(msg.topic, msg.payload)
            except Exception:  # noqa: BLE001 - bus down: try again next round
                log.warning("relay could not publish outbox %s", msg.id, exc_info=True)
                break
            msg.published_at = now
            msg.attempts += 1
            sent += 1
    for msg in exhausted:  # delivered again and again, never processed: it kills or hangs its worker
        log.error("%s %s was published %d times and never processed; giving up", msg.topic, msg.subject_id,
                  msg.attempts)
        give_up(ctx, msg.topic, msg.subject_id, f"已投递 {msg.attempts} 次仍未完成核验")
    if sent:
        log.info("outbox relay re-sent %d message(s)", sent)
    return sent

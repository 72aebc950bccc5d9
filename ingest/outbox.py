"""The outbox: every accepted upload's message to the verification worker, stored with the upload, handed to the
bus after the commit, and found again by the relay when it was not processed in time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.context import IngestContext
from models.clock import utc_now
from models.tables import OutboxMessage

log = logging.getLogger(__name__)

CHECKIN_TOPIC = "checkin"
SNAPSHOT_TOPIC = "snapshot"
HEARTBEAT_TOPIC = "heartbeat"
SUBJECT_KEYS = {CHECKIN_TOPIC: "checkin_id", SNAPSHOT_TOPIC: "snapshot_id", HEARTBEAT_TOPIC: "heartbeat_id"}


def outbox_message(topic: str, subject_id: int, created_at: datetime, published: bool = False) -> OutboxMessage:
    """The message for one upload (`published`: handed to the bus right after this transaction commits)."""
    return OutboxMessage(topic=topic, subject_id=subject_id, payload={SUBJECT_KEYS[topic]: subject_id},
                         created_at=created_at, published_at=created_at if published else None,
                         attempts=1 if published else 0, failures=0)


def hand_to_bus(ctx: IngestContext, topic: str, subject_id: int) -> None:
    """Publish a just-committed upload (its outbox row already says so); if the bus fails, the relay sends it
    again from the outbox once `redeliver_after_seconds` pass without a verdict."""
    try:
        ctx.publish(topic, {SUBJECT_KEYS[topic]: subject_id})
    except Exception:  # noqa: BLE001 - the outbox keeps the message; the relay publishes it later
        log.warning("publish of %s %s failed; the outbox relay will retry", topic, subject_id, exc_info=True)


def publish_outbox(ctx: IngestContext, topic: str, subject_id: int) -> None:
    """Hand an accepted upload's outbox message to the bus now and mark it sent; if the bus fails, the relay
    publishes it later from the outbox."""
    with ctx.db.session() as session:
        for msg in session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == topic, OutboxMessage.subject_id == subject_id)
        ):
            try:
                ctx.publish(topic, msg.payload)
            except Exception:  # noqa: BLE001 - the outbox keeps the message; the relay publishes it later
                log.warning("publish of %s %s failed; the outbox relay will retry", topic, subject_id, exc_info=True)
                return
            msg.published_at = msg.published_at or utc_now()
            msg.attempts += 1


def iter_pending_outbox(
    session: Session, created_before: datetime, older_than: datetime, limit: int = 200
) -> Iterator[OutboxMessage]:
    """Unprocessed outbox messages created before `created_before`, unpublished or last sent before `older_than`."""
    yield from session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.processed_at.is_(None))
        .where(OutboxMessage.created_at < created_before)
        .where((OutboxMessage.published_at.is_(None)) | (OutboxMessage.published_at < older_than))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )

"""The class clock: publishes each class's status changes (scheduled → in_session → between → finished)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models.clock import SHANGHAI, utc_now
from models.tables import ClassSession, ClassStatus, TrainingClass
from models.terms import EventKind
from monitor.adapters.storage import Database
from monitor.decisions.schedule import STATUS_NAMES, class_status_at
from monitor.services.events import add_event, class_context


def tick_class_status(db: Database) -> int:
    """Store and announce every class whose status changed since the last tick; returns how many."""
    local_now = utc_now().astimezone(SHANGHAI)
    changed = 0
    with db.session() as session:
        classes = session.scalars(
            select(TrainingClass).where(TrainingClass.end_date >= local_now.date() - timedelta(days=1))
        ).all()
        for cls in classes:
            sessions = [(s.start_local, s.end_local)
                        for s in session.scalars(select(ClassSession).where(ClassSession.class_id == cls.id))]
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
            add_event(session, EventKind.CLASS_STATUS, class_context(session, cls), {
                "status": status, "status_name": STATUS_NAMES[status], "previous": previous,
                "at": utc_now().isoformat(),
            })
            changed += 1
    return changed

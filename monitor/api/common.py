"""Small helpers the routes share: 404 for a missing record, 409 for a duplicate, known regions, a row locked for a
decision."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.errors import ApiError
from models.scope import OfAClass, Scope, get_in_scope
from models.tables import Region
from monitor.adapters.storage import begin_write

T = TypeVar("T")
C = TypeVar("C", bound=OfAClass)


def get_or_404(session: Session, model: type[T], key: Any, code: str, label: str) -> T:
    row = session.get(model, key)
    if row is None:
        raise ApiError(404, code, f"{label} {key} 不存在")
    return row


def check_region(session: Session, code: str, level: str | None = None) -> Region:
    region = session.get(Region, code)
    if region is None or (level and region.level != level):
        raise ApiError(422, "UNKNOWN_REGION", f"未知的{'县区' if level == 'county' else '行政区划'}代码 {code}")
    return region


def insert(session: Session, row: T, conflict_code: str, conflict_message: str) -> T:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ApiError(409, conflict_code, conflict_message) from exc
    return row


def get_in_scope_for_change(session: Session, scope: Scope, model: type[C], ident: int, code: str, what: str,
                            lock: bool = True) -> C:
    """`get_in_scope`, and with `lock` the row locked before the read a decision rests on (one writer at a time per
    row: of several requests at once, one decides and the others find it decided). SQLite: the database's write
    lock first (FOR UPDATE does nothing there); PostgreSQL: the row's lock."""
    if lock:
        begin_write(session)
    row = get_in_scope(session, scope, model, ident, code, what)
    if lock:
        session.refresh(row, with_for_update=True)
    return row

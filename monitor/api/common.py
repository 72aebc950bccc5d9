"""Small helpers the registration routes share: 404 for a missing record, 409 for a duplicate, known regions."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.errors import ApiError
from models.tables import Region

T = TypeVar("T")


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

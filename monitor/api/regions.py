"""Yunnan's prefectures and counties (GB/T 2260), as seeded by the migrations."""


from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from models.scope import AnyCaller
from models.tables import (
    Region,
)
from monitor.api.deps import Db
from monitor.api.schemas.registration import RegionOut

router = APIRouter(prefix="/api/v1", tags=["registration"])


@router.get("/regions", summary="Yunnan's prefectures with their counties (GB/T 2260)",
            response_model=list[RegionOut])
def list_regions(scope: AnyCaller, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = session.scalars(select(Region).order_by(Region.code)).all()
    prefectures = [r for r in rows if r.level == "prefecture"]
    return [
        {"code": p.code, "name": p.name,
         "counties": [{"code": c.code, "name": c.name} for c in rows if c.parent_code == p.code]}
        for p in prefectures
    ]

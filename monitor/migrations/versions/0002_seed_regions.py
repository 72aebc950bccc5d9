"""Seed Yunnan's 16 prefectures and 129 counties (GB/T 2260 codes).

Revision ID: 0002
Revises: 0001
"""

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_DATA = Path(__file__).resolve().parents[2] / "data" / "yunnan_regions.json"


def upgrade() -> None:
    regions = sa.table(
        "regions",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("level", sa.String),
        sa.column("parent_code", sa.String),
    )
    data = json.loads(_DATA.read_text(encoding="utf-8"))
    rows = [{"code": "530000", "name": "云南省", "level": "province", "parent_code": None}]
    for pref in data["prefectures"]:
        rows.append({"code": pref["code"], "name": pref["name"], "level": "prefecture", "parent_code": "530000"})
    for pref in data["prefectures"]:
        for county in pref["counties"]:
            rows.append(
                {"code": county["code"], "name": county["name"], "level": "county", "parent_code": pref["code"]}
            )
    op.bulk_insert(regions, rows)


def downgrade() -> None:
    op.execute("DELETE FROM regions")

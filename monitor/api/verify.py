"""`/verify/{sha256}`, public and without a login: whether a digest printed on a filed form (its QR code and link)
or taken of its signed PDF names a genuine, unchanged record; JSON, or a zh-CN page for a browser; nothing personal."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from ingest.adapters.evidence import EvidenceFault
from models.clock import SHANGHAI
from models.errors import ApiError, errors
from models.scope import public_route
from monitor.api.deps import Db, EvidenceDep
from monitor.services.evidence_health import record_fault
from monitor.services.inspections import verify_digest

router = APIRouter(tags=["public"])


class VerifyOut(BaseModel):
    """A genuine record named by a digest: its kind, id and times, never a name, ID number or phone number."""

    status: str = Field(description="genuine (an unknown or changed digest answers 404 UNKNOWN_DIGEST)")
    kind: str = Field(description="inspection_form")
    id: int
    matched: str = Field(description="record (the digest printed on the form) | pdf (the signed PDF's digest)")
    visit: str = Field(description="on_site | phone")
    inspected_at: str
    filed_at: str
    record_sha256: str | None
    pdf_sha256: str


MESSAGE_UNKNOWN = "未找到与该摘要对应的记录：记录不存在，或已被改动（摘要不再相符）"
VISITS = {"on_site": "现场检查", "phone": "电话抽查"}


def page(title: str, rows: list[tuple[str, str]], ok: bool) -> str:
    colour = "#1a7f37" if ok else "#b42318"
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f'<link rel="icon" href="/static/wall-favicon.svg" type="image/svg+xml"><style>'
            f'body{{font-family:sans-serif;margin:1.5em;max-width:40em}}h1{{color:{colour};font-size:1.4em}}'
            f'th{{text-align:left;padding-right:1em;vertical-align:top;white-space:nowrap}}'
            f'td{{word-break:break-all}}</style></head><body><h1>{escape(title)}</h1><table>{body}</table>'
            f'<p>云南省职业技能培训监控调度中心 · 本页不显示任何个人信息</p></body></html>')


def local(iso: str) -> str:
    return f"{datetime.fromisoformat(iso).astimezone(SHANGHAI):%Y-%m-%d %H:%M}（北京时间）"


@router.get("/verify/{sha256}", response_model=VerifyOut, responses=errors(404), dependencies=[public_route()],
            summary="核验检查表：摘要（二维码或 PDF 的 SHA-256）是否对应一份真实、未被改动的记录")
def verify(sha256: Annotated[str, Path(max_length=128)], db: Db, evidence: EvidenceDep,
           accept: Annotated[str, Header()] = "") -> Any:
    digest = sha256.strip().lower()
    try:
        with db.session() as session:
            found = verify_digest(session, evidence, digest)
    except EvidenceFault as fault:  # the signed PDF on file is not the one filed: recorded, alarmed, not vouched for
        record_fault(db, fault, "verify")
        found = None
    html = "text/html" in accept and "application/json" not in accept
    if found is None:
        if html:
            return HTMLResponse(page("未能核验", [("摘要", digest[:64]), ("结果", MESSAGE_UNKNOWN)], ok=False),
                                status_code=404)
        raise ApiError(404, "UNKNOWN_DIGEST", MESSAGE_UNKNOWN)
    if html:
        return HTMLResponse(page("核验通过：记录真实、未被改动", [
            ("记录", f"职业技能培训班检查表 第 {found['id']} 号"),
            ("检查方式", VISITS.get(found["visit"], found["visit"])),
            ("检查时间", local(found["inspected_at"])), ("归档时间", local(found["filed_at"])),
            ("核对的摘要", "检查记录摘要（表上二维码）" if found["matched"] == "record" else "已签章 PDF 文件的摘要"),
            ("SHA-256", digest)], ok=True))
    return found

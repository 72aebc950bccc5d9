"""The filled inspection form as a printable PDF (A4, Chinese drawn with reportlab's built-in STSong-Light CID font,
so no font file is needed), with the responsible person's handwritten signature and the photos' digests."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from models.clock import SHANGHAI
from models.errors import ApiError
from monitor.decisions.inspection_form import CHECKLIST, RESULTS

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


@dataclass(frozen=True)
class FormContent:
    """Everything printed on the form."""

    inspection_id: int
    class_code: str
    class_name: str
    institution_name: str
    venue_name: str
    kind: str  # on_site | phone
    inspector: str
    inspected_at: datetime
    headcount_registered: int
    headcount_present: int | None
    items: Mapping[str, Mapping[str, str]]
    findings: str
    responsible_name: str
    photo_sha256s: Sequence[str]
    fix: Mapping[str, Any] | None = None  # the inspector's fix and its fence result


FENCE_WORDS = {"inside": "在培训场地围栏内", "outside": "在培训场地围栏外", "uncertain": "处于围栏边缘，无法确认",
               "unproven": "未提供定位"}


MAX_SIGNATURE_PIXELS = 4_000_000  # a phone screen's canvas at full pixel density is well under this


def check_signature(png: bytes) -> None:
    """422 unless the signature decodes whole and is no larger than a phone's canvas: the form prints it, and a PNG
    whose header is sound can still carry a broken image stream."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.width * image.height > MAX_SIGNATURE_PIXELS:
                raise ApiError(422, "SIGNATURE_TOO_LARGE", "签名图片尺寸过大，请在手机上重新签名")
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError(422, "SIGNATURE_UNREADABLE", "签名图片已损坏，无法读取，请重新签名") from exc


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` characters (Chinese has no spaces to break at)."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        lines += [para[i:i + width] for i in range(0, max(len(para), 1), width)]
    return lines


def render_form(form: FormContent, signature_png: bytes) -> bytes:
    """The PDF bytes of the filled form."""
    out = io.BytesIO()
    pdf = Canvas(out, pagesize=A4, invariant=True)  # invariant: the same form gives the same bytes (and digest)
    pdf.setTitle(f"职业技能培训班检查表 {form.class_code} #{form.inspection_id}")
    width, height = A4
    y = height - 60

    def line(text: str, size: float = 10.5, x: float = 50, step: float = 16) -> None:
        nonlocal y
        if y < 70:
            pdf.showPage()
            y = height - 60
        pdf.setFont(FONT, size)
        pdf.drawString(x, y, text)
        y -= step

    line("职业技能培训班检查表", 18, x=width / 2 - 90, step=30)
    local = form.inspected_at.astimezone(SHANGHAI)
    line(f"编号：{form.inspection_id}　　检查方式：{'现场检查' if form.kind == 'on_site' else '电话抽查'}"
         f"　　检查时间：{local:%Y年%m月%d日 %H:%M}（北京时间）")
    line(f"培训班次：{form.class_name}（{form.class_code}）")
    line(f"培训机构：{form.institution_name}　　培训场地：{form.venue_name}")
    fix = form.fix or {"fence_result": "unproven"}
    where = FENCE_WORDS.get(str(fix.get("fence_result")), "未提供定位")
    if fix.get("lat") is not None:
        where = (f"{fix['lat']:.5f}, {fix['lon']:.5f}（WGS-84，精度 {fix['accuracy_m']:.0f} 米），{where}")
    line(f"检查人员定位：{where}")
    present = "—" if form.headcount_present is None else str(form.headcount_present)
    line(f"登记人数：{form.headcount_registered}　　实到人数：{present}　　检查人员：{form.inspector}", step=24)
    for key, label in CHECKLIST.items():
        answer = form.items.get(key, {})
        line(f"□ {label}：{RESULTS.get(answer.get('result', ''), '未填写')}")
        for text in wrap(answer.get("note") or "", 44):
            if text:
                line(text, 9.5, x=70, step=14)
    y -= 8
    line("检查发现：")
    for text in wrap(form.findings or "无", 46):
        line(text, 10, x=60, step=15)
    y -= 8
    if form.photo_sha256s:
        line(f"现场照片 {len(form.photo_sha256s)} 张（SHA-256）：", 10)
        for sha in form.photo_sha256s:
            line(sha, 8, x=60, step=12)
    y -= 12
    if y < 160:
        pdf.showPage()
        y = height - 60
    line(f"被检查单位现场负责人：{form.responsible_name}　　签字：", 11, step=8)
    pdf.drawImage(ImageReader(io.BytesIO(signature_png)), 300, y - 80, width=200, height=80, mask="auto",
                  preserveAspectRatio=True)
    y -= 100
    line("本表由被检查单位现场负责人签字确认后归档，作为申领培训补贴的依据（云人社通〔2022〕50号 第十四条）。", 8.5)
    pdf.showPage()
    pdf.save()
    return out.getvalue()

"""The filled inspection form as a printable PDF (A4, with a subset of a TrueType CJK font embedded): the ticked
checklist, both handwritten signatures, the alert and class numbers, the phone check's drawn and reached trainees,
the visit's place, fix and time, the contradictions between the alert's records (记录矛盾) when there are any,
the photos' capture times and digests, and a QR code with the verify link."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from PIL import Image, ImageCms
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import PDFArray, PDFCatalog, PDFDictionary, PDFName, PDFStream, PDFString
from reportlab.pdfbase.pdfdoc import format as pdf_format
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from models.clock import SHANGHAI
from models.errors import ApiError
from monitor.decisions.inspection_form import CHECKLIST, RESULTS, judge_signature

CENTER_NAME = "云南省职业技能培训监控调度中心"
TICK = "√"


class FormFontMissing(RuntimeError):
    """The configured CJK font cannot be embedded: the form is not printed with a font the reader may lack."""


@lru_cache(maxsize=4)
def form_font(path: Path, index: int = 0) -> str:
    """Register the TrueType-outline font at `path` (a .ttf, or face `index` of a .ttc) and return its name."""
    if not path.is_file():
        raise FormFontMissing(f"form font not found: {path}. Install Debian's fonts-wqy-microhei (scripts/setup.sh "
                              f"does) or set MONITOR_FORM_FONT_FILE to a TrueType-outline CJK font")
    # The same name in every process (str hashes are salted per process): the same form gives the same bytes.
    name = f"FormCJK-{hashlib.sha256(f'{path}#{index}'.encode()).hexdigest()[:12]}"
    try:
        pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=index))
    except Exception as exc:  # noqa: BLE001 - reportlab raises bare TTFError / struct errors for unusable fonts
        raise FormFontMissing(f"form font {path} cannot be embedded ({exc}): it needs TrueType outlines (a CFF/OTF "
                              f"font such as Noto CJK cannot be embedded by reportlab)") from exc
    return name


@dataclass(frozen=True)
class CallLine:
    """One drawn trainee of the alert's phone check, as printed: the name and masked ID, never the phone number."""

    name: str
    id_number_masked: str
    reached: bool | None  # None: not called
    present: bool | None


@dataclass(frozen=True)
class PhoneCheckLines:
    check_id: int
    state: str
    calls: Sequence[CallLine]
    caller: str = ""  # who started the check and made its calls


@dataclass(frozen=True)
class PhotoLine:
    sha256: str
    captured_at: datetime | None = None
    exif_taken_at: str | None = None
    fix: Mapping[str, Any] | None = None


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
    photos: Sequence[PhotoLine]
    fix: Mapping[str, Any] | None = None  # the inspector's fix and its fence result
    class_id: int = 0
    alert_id: int | None = None
    venue_address: str = ""
    phone_checks: Sequence[PhoneCheckLines] = field(default_factory=tuple)
    filed_at: datetime | None = None  # the PDF's creation date
    record_sha256: str = ""
    verify_url: str = ""
    contradictions: Sequence[str] = field(default_factory=tuple)  # zh-CN, as the API states them, when filed


FENCE_WORDS = {"inside": "在培训场地围栏内", "outside": "在培训场地围栏外", "uncertain": "处于围栏边缘，无法确认",
               "unproven": "未提供定位"}
CHECK_STATES = {"open": "进行中", "done": "已完成", "abandoned": "已中止"}


INK_BELOW = 160  # grey level (0-255) under which a pixel composited on white counts as ink
MAX_SIGNATURE_PIXELS = 4_000_000  # a phone screen's canvas at full pixel density is well under this


def check_signature(png: bytes) -> None:
    """422 unless the signature decodes whole, is no larger than a phone's canvas (the form prints it, and a PNG
    whose header is sound can still carry a broken image stream) and carries strokes of a hand
    (`judge_signature`: not blank, not a dot, not a filled box)."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.width * image.height > MAX_SIGNATURE_PIXELS:
                raise ApiError(422, "SIGNATURE_TOO_LARGE", "签名图片尺寸过大，请在手机上重新签名")
            image.load()
            if image.format != "PNG":
                return  # refused as not drawn on the phone (SIGNATURE_NOT_PNG, monitor/services/inspections.py)
            on_white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            on_white.alpha_composite(image.convert("RGBA"))
            ink = on_white.convert("L").point(lambda v: 255 if v < INK_BELOW else 0)
            inked = ink.histogram()[255]
            box = ink.getbbox()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError(422, "SIGNATURE_UNREADABLE", "签名图片已损坏，无法读取，请重新签名") from exc
    span = (box[2] - box[0], box[3] - box[1]) if box else (0, 0)
    if why := judge_signature(inked, span, image.size):
        raise ApiError(422, "SIGNATURE_BLANK", why)


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` characters (Chinese has no spaces to break at)."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        lines += [para[i:i + width] for i in range(0, max(len(para), 1), width)]
    return lines


def fix_text(fix: Mapping[str, Any] | None) -> str:
    """A fix as printed: position, datum, accuracy, when, and how it lies against the fence."""
    fix = fix or {"fence_result": "unproven"}
    where = FENCE_WORDS.get(str(fix.get("fence_result")), "未提供定位")
    if fix.get("lat") is None:
        return where
    taken = ""
    if fix.get("captured_at"):
        try:
            taken = f"，定位时间 {datetime.fromisoformat(str(fix['captured_at'])).astimezone(SHANGHAI):%H:%M:%S}"
        except ValueError:
            taken = ""
    return f"{fix['lat']:.5f}, {fix['lon']:.5f}（WGS-84，精度 {fix['accuracy_m']:.0f} 米{taken}），{where}"


def pdf_date(at: datetime) -> str:
    """A PDF date string in Beijing time."""
    return at.astimezone(SHANGHAI).strftime("D:%Y%m%d%H%M%S+08'00'")


ICC_CREATED = bytes.fromhex("07d0 0001 0001 0000 0000 0000")  # the ICC header's creation date: 2000-01-01 00:00:00


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """sRGB (IEC 61966-2.1) as an ICC display profile, made by Pillow's LittleCMS (no file to ship or download); its
    creation date is fixed to 2000-01-01 (and its optional profile ID left unset) so the same form gives the same
    bytes."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = ICC_CREATED  # dateTimeNumber: year, month, day, hours, minutes, seconds (uInt16 each)
    icc[84:100] = bytes(16)  # profile ID: zero means "not computed" (an MD5 would cover the date changed above)
    return bytes(icc)


def xmp_packet(meta: Mapping[str, str], created: datetime) -> bytes:
    """The XMP metadata: PDF/A-2b identification and the Info dictionary's entries, each equal to its Info twin
    (ISO 19005-2 6.6.2.3: Title dc:title, Author dc:creator, Subject dc:description, Keywords pdf:Keywords, Creator
    xmp:CreatorTool, Producer pdf:Producer, CreationDate xmp:CreateDate and ModDate xmp:ModifyDate)."""
    def alt(text: str) -> str:
        return f'<rdf:Alt><rdf:li xml:lang="x-default">{escape(text)}</rdf:li></rdf:Alt>'

    when = created.astimezone(SHANGHAI).replace(microsecond=0).isoformat()
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmlns:pdf="http://ns.adobe.com/pdf/1.3/">\n'
        '<pdfaid:part>2</pdfaid:part>\n<pdfaid:conformance>B</pdfaid:conformance>\n'
        '<dc:format>application/pdf</dc:format>\n'
        f'<dc:title>{alt(meta["title"])}</dc:title>\n'
        f'<dc:creator><rdf:Seq><rdf:li>{escape(meta["author"])}</rdf:li></rdf:Seq></dc:creator>\n'
        f'<dc:description>{alt(meta["subject"])}</dc:description>\n'
        '<dc:language><rdf:Bag><rdf:li>zh-CN</rdf:li></rdf:Bag></dc:language>\n'
        f'<xmp:CreateDate>{when}</xmp:CreateDate>\n<xmp:ModifyDate>{when}</xmp:ModifyDate>\n'
        f'<xmp:CreatorTool>{escape(meta["creator"])}</xmp:CreatorTool>\n'
        f'<pdf:Producer>{escape(meta["producer"])}</pdf:Producer>\n'
        f'<pdf:Keywords>{escape(meta["keywords"])}</pdf:Keywords>\n'
        '</rdf:Description>\n</rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>'
    ).encode()


class UnfilteredStream(PDFStream):  # type: ignore[misc]  # reportlab has no type information
    """A stream written as it is, with no Filter key (reportlab writes `/Filter []` for a stream without filters)."""

    def format(self, document: Any) -> bytes:
        data: bytes = self.content
        dictionary = PDFDictionary({**self.dictionary.dict, "Length": len(data)})
        return bytes(pdf_format(dictionary, document)) + b"\nstream\n" + data + b"\nendstream\n"


def eol_before_endstream(pdf: bytes) -> bytes:
    """reportlab's PDF with an end-of-line before every `endstream`, which PDF/A requires (ISO 19005-2 6.1.7.1: a
    stream's Length counts its bytes up to the EOL before endstream; reportlab writes none), and its cross-reference
    table re-made for the shifted objects. reportlab writes one classic table and a trailer, which are re-counted,
    never re-parsed: the bytes of every object stay as they were."""
    xref_at = int(pdf[pdf.rindex(b"startxref") + len(b"startxref"):].split()[0])
    head = re.match(rb"xref\r?\n0 (\d+)\r?\n", pdf[xref_at:])
    if head is None:
        raise ValueError("not a PDF with one classic cross-reference table")
    count, table = int(head.group(1)), xref_at + head.end()
    entries = [pdf[table + 20 * n:table + 20 * (n + 1)] for n in range(count)]
    used = sorted((int(entry[:10]), n) for n, entry in enumerate(entries) if entry[17:18] == b"n")
    out = bytearray(pdf[:used[0][0]])
    moved: dict[int, int] = {}
    for (at, n), end in zip(used, [at for at, _ in used[1:]] + [xref_at], strict=True):
        body = pdf[at:end]
        k = body.rfind(b"endstream")
        if k > 0 and body[k - 1:k] not in (b"\n", b"\r"):
            body = body[:k] + b"\n" + body[k:]
        moved[n] = len(out)
        out += body
    new_xref_at = len(out)
    out += b"xref\n0 %d\n" % count
    for n, entry in enumerate(entries):
        out += b"%010d" % moved[n] + entry[10:] if n in moved else entry
    out += re.sub(rb"startxref(\r?\n)\d+", b"startxref\\g<1>%d" % new_xref_at, pdf[table + 20 * count:], count=1)
    return bytes(out)


def declare_pdfa(pdf: Canvas, meta: Mapping[str, str], created: datetime) -> None:
    """Make the form a PDF/A-2b candidate: the catalog gets an sRGB output intent (S /GTS_PDFA1, so that the
    device colours drawn have a meaning) and the XMP metadata, unfiltered, declaring part 2 conformance B."""
    doc = pdf._doc
    profile = PDFStream(PDFDictionary({"N": 3}), srgb_profile())
    intent = PDFDictionary({"Type": PDFName("OutputIntent"), "S": PDFName("GTS_PDFA1"),
                            "OutputConditionIdentifier": PDFString("sRGB IEC61966-2.1"),
                            "RegistryName": PDFString("http://www.color.org"),
                            "Info": PDFString("sRGB IEC61966-2.1"),
                            "DestOutputProfile": doc.Reference(profile)})
    metadata = UnfilteredStream(PDFDictionary({"Type": PDFName("Metadata"), "Subtype": PDFName("XML")}),
                                xmp_packet(meta, created))
    catalog = doc.Catalog
    # reportlab's catalog writes only the keys it lists: OutputIntents is added for this document's catalog alone.
    catalog.__NoDefault__ = [*PDFCatalog.__NoDefault__, "OutputIntents"]
    catalog.OutputIntents = PDFArray([intent])
    catalog.Metadata = metadata


QR_SIZE = 96.0  # points: about 34 mm, read by a phone from a printed page


def verify_block(pdf: Canvas, font: str, url: str, record_sha256: str, width: float) -> None:
    """At the foot of the first page: the QR code of the verify link, the link itself and the record's digest."""
    pdf.setLineWidth(0.5)
    pdf.line(50, 148, width - 50, 148)
    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(QR_SIZE, QR_SIZE, transform=[QR_SIZE / (x1 - x0), 0, 0, QR_SIZE / (y1 - y0), 0, 0])
    drawing.initialFontName = font  # otherwise the drawing sets Helvetica, a font that is never embedded
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, width - 50 - QR_SIZE, 44)
    pdf.setFont(font, 10.5)
    pdf.drawString(50, 128, "核验本表：扫描右侧二维码，或在浏览器中打开")
    room = width - 50 - QR_SIZE - 10 - 50  # one unbroken line, so that it can be typed or copied whole
    pdf.setFont(font, min(8.5, room / pdfmetrics.stringWidth(url, font, 1)))
    pdf.drawString(50, 110, url)
    pdf.setFont(font, 9)
    pdf.drawString(50, 78, "检查记录摘要（SHA-256）：")
    pdf.setFont(font, 8)
    pdf.drawString(50, 66, record_sha256[:32])
    pdf.drawString(50, 56, record_sha256[32:])
    pdf.setFont(font, 7.5)
    pdf.drawString(50, 44, "核验页只答复记录是否真实、未被改动，不显示任何个人信息。")


def render_form(form: FormContent, signature_png: bytes, inspector_signature_png: bytes | None,
                font_path: Path, font_index: int = 0) -> bytes:
    """The PDF bytes of the filled form (unsigned: the center's signature is added over these bytes)."""
    font = form_font(font_path, font_index)
    out = io.BytesIO()
    # invariant: the same form gives the same bytes; the dates are set to the filing time below, not 2000-01-01.
    pdf = Canvas(out, pagesize=A4, invariant=True, initialFontName=font, lang="zh-CN")
    filed = form.filed_at or form.inspected_at
    pdf.setDateFormatter(lambda *_: pdf_date(filed))
    meta = {"title": f"职业技能培训班检查表 第 {form.inspection_id} 号（班次 {form.class_code}）",
            "author": f"{CENTER_NAME}；检查人员 {form.inspector}",
            "subject": f"云人社通〔2022〕50号 第十四条 培训班检查记录：班次 {form.class_code}（ID {form.class_id}）"
                       f"{f'，告警 {form.alert_id}' if form.alert_id else ''}",
            "creator": f"{CENTER_NAME} 监控调度系统", "producer": f"ReportLab {reportlab.Version}",
            "keywords": f"record-sha256:{form.record_sha256}" if form.record_sha256 else ""}
    pdf.setTitle(meta["title"])
    pdf.setAuthor(meta["author"])
    pdf.setSubject(meta["subject"])
    pdf.setCreator(meta["creator"])
    pdf.setProducer(meta["producer"])
    pdf.setKeywords(meta["keywords"])
    declare_pdfa(pdf, meta, filed)
    width, height = A4
    first_page_bottom = 160  # the verify block (QR code and link) sits under it on the first page
    page = 1
    y = height - 56

    def new_page() -> None:
        nonlocal y, page
        pdf.showPage()
        page += 1
        y = height - 56

    def line(text: str, size: float = 10.5, x: float = 50, step: float = 16) -> None:
        nonlocal y
        if y < (first_page_bottom if page == 1 else 60):
            new_page()
        pdf.setFont(font, size)
        pdf.drawString(x, y, text)
        y -= step

    def gap(points: float) -> None:
        nonlocal y
        y -= points

    def heading(text: str) -> None:
        gap(4)
        line(text, 11.5, step=18)

    if form.verify_url:
        verify_block(pdf, font, form.verify_url, form.record_sha256, width)
    line("职业技能培训班检查表", 18, x=width / 2 - 90, step=26)
    local = form.inspected_at.astimezone(SHANGHAI)
    line(f"检查表编号：{form.inspection_id}　　告警编号：{form.alert_id if form.alert_id else '无（例行抽查）'}"
         f"　　班次编号：{form.class_code}（ID {form.class_id}）")
    line(f"检查方式：{'现场检查' if form.kind == 'on_site' else '电话抽查'}"
         f"　　检查时间：{local:%Y年%m月%d日 %H:%M}（北京时间）")
    line(f"培训班次：{form.class_name}")
    line(f"培训机构：{form.institution_name}")
    place = form.venue_name + (f"，{form.venue_address}" if form.venue_address else "")
    for n, text in enumerate(wrap(f"检查地点：{place}", 44)):
        line(text, x=50 if n == 0 else 110)
    line(f"检查人员定位：{fix_text(form.fix)}", 10)
    present = "—" if form.headcount_present is None else str(form.headcount_present)
    line(f"登记人数：{form.headcount_registered}　　实到人数：{present}　　检查人员：{form.inspector}")

    heading("一、检查项目（在相应方框内打 √）")
    options = list(RESULTS.items())
    for key, label in CHECKLIST.items():
        answer = form.items.get(key, {})
        line(label, 10, x=58, step=0)
        x = 370
        for value, word in options:
            pdf.rect(x, y - 1.5, 9, 9, stroke=1, fill=0)
            if answer.get("result") == value:
                pdf.setFont(font, 10)
                pdf.drawString(x + 0.5, y - 0.5, TICK)
            pdf.setFont(font, 10)
            pdf.drawString(x + 12, y, word)
            x += 12 + pdfmetrics.stringWidth(word, font, 10) + 14
        y -= 15
        for text in wrap(answer.get("note") or "", 44):
            if text:
                line(f"说明：{text}", 9, x=72, step=13)

    heading("二、检查发现")
    for text in wrap(form.findings or "无", 46):
        line(text, 10, x=60, step=15)

    if form.phone_checks:
        heading("三、电话抽查（学员手机号不在本表打印）")
        for check in form.phone_checks:
            reached = sum(1 for c in check.calls if c.reached)
            confirmed = sum(1 for c in check.calls if c.present)
            by = f"，拨打人 {check.caller[:16]}" if check.caller else ""
            line(f"电话抽查第 {check.check_id} 号（{CHECK_STATES.get(check.state, check.state)}{by}）：抽取 "
                 f"{len(check.calls)} 人，接通 {reached} 人，确认在班 {confirmed} 人", 10, x=58)
            for n, call in enumerate(check.calls, 1):
                state = ("未拨打" if call.reached is None else "未接通" if not call.reached else
                         "接通，确认在班" if call.present else "接通，未确认在班")
                line(f"{n:>2}. {call.name}　{call.id_number_masked}　{state}", 9.5, x=72, step=13.5)

    numbers = iter("三四五六")
    if form.phone_checks:
        next(numbers)
    if form.contradictions:
        heading(f"{next(numbers)}、记录矛盾（本告警的记录互相矛盾，须核实）")
        for n, said in enumerate(form.contradictions, 1):
            for k, text in enumerate(wrap(said, 42)):
                line(f"{n}. {text}" if k == 0 else text, 10, x=58 if k == 0 else 72, step=15)

    if form.photos:
        heading(f"{next(numbers)}、现场照片 {len(form.photos)} 张（拍摄时间、拍摄定位、SHA-256）")
        for n, photo in enumerate(form.photos, 1):
            taken = (f"{photo.captured_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}（手机记录）"
                     if photo.captured_at else "拍摄时间未提供")
            exif = f"，EXIF 拍摄时间 {photo.exif_taken_at.replace('T', ' ')}" if photo.exif_taken_at else ""
            line(f"{n}. {taken}{exif}", 9.5, x=58, step=13)
            line(f"拍摄定位：{fix_text(photo.fix)}", 9, x=72, step=12.5)
            line(photo.sha256, 8, x=72, step=13)

    gap(10)
    if y < (first_page_bottom if page == 1 else 60) + 110:
        new_page()
    line(f"被检查单位现场负责人：{form.responsible_name}", 11, step=0)
    line(f"检查人员：{form.inspector}", 11, x=320, step=8)
    pdf.drawString(50, y - 4, "签字：")
    pdf.drawImage(ImageReader(io.BytesIO(signature_png)), 86, y - 84, width=200, height=80, mask="auto",
                  preserveAspectRatio=True)
    pdf.drawString(320, y - 4, "签字：")
    if inspector_signature_png:
        pdf.drawImage(ImageReader(io.BytesIO(inspector_signature_png)), 356, y - 84, width=200, height=80,
                      mask="auto", preserveAspectRatio=True)
    else:
        pdf.drawString(356, y - 24, "（本表归档于检查人员签名启用之前）")
    y -= 100
    line("本表经被检查单位现场负责人和检查人员签字确认后归档，作为申领培训补贴的依据（云人社通〔2022〕50号 第十四条），"
         , 8.5, step=12)
    line(f"并由{CENTER_NAME}加盖电子签章（PAdES），任何改动都会使签章失效。", 8.5)

    pdf.showPage()
    pdf.save()
    return eol_before_endstream(out.getvalue())

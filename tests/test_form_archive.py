"""The filed inspection form as an archival record (issue 18 item 4): an embedded CJK font, boxes ticked as the
results say, both signatures, the alert, class, phone check, place, fix and time printed, a QR code whose verify
link answers genuine (and unknown when changed), the center's PAdES signature, correct metadata; form photos keep
their capture time, fix and EXIF time."""

from __future__ import annotations

import io
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from PIL import Image
from pyhanko.pdf_utils.generic import parse_pdf_date
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select

from models.clock import SHANGHAI
from models.identity import mask_id_number
from models.tables import EvidenceFaultRow, Inspection, PhoneCall, PhoneCheck, Trainee, TrainingClass, Venue
from monitor.adapters.inspection_pdf import FormContent, FormFontMissing, render_form
from monitor.decisions.inspection_form import CHECKLIST, RESULTS
from tests.crew import Crew
from tests.helpers import VENUE, auth, face
from tests.test_inspections import signature_png

# poppler-utils (pdffonts, pdftotext, pdftoppm) is installed by scripts/system-deps.sh: without it these tests fail,
# they are never skipped.

RESULT_OF = {"trainees": "ok", "headcount": "problem", "time": "not_checked", "content": "ok", "venue": "ok",
             "attendance": "problem", "teachers": "not_checked", "quality": "ok"}


def photo_with_exif(taken: str) -> bytes:
    """A JPEG whose EXIF says when the camera took it (DateTimeOriginal, camera local time)."""
    image = Image.open(io.BytesIO(face("groups/two_people.jpg"))).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken  # Exif IFD: DateTimeOriginal
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def phone_check_on(crew: Crew, alert_id: int) -> tuple[list[str], list[str]]:
    """A done phone check of the alert (rows as the phone-check service leaves them): obama reached and present,
    biden not reached. Returns the trainees' names and their whole ID numbers."""
    w = crew.world
    with crew.client.app.state.db.session() as s:
        people = [s.get(Trainee, w.obama_id), s.get(Trainee, w.biden_id)]
        assert all(people)
        check = PhoneCheck(alert_id=alert_id, class_id=w.class_id, staff_id=crew.staff["county_a"],
                           inspector="抽查员0", seed="0" * 64, drawn=[w.obama_id, w.biden_id], state="done",
                           created_at=crew.now, completed_at=crew.now)
        s.add(check)
        s.flush()
        for trainee_id, reached in ((w.obama_id, True), (w.biden_id, False)):
            s.add(PhoneCall(check_id=check.id, trainee_id=trainee_id, reached=reached,
                            present=True if reached else None, answers=None, duration_s=60 if reached else 0,
                            called_at=crew.now, callee="13700001111"))
        return [p.name for p in people if p], [p.id_number for p in people if p]


def file_on(crew: Crew, alert_id: int, headcount_present: int) -> dict[str, Any]:
    """An on-site form of the alert, two photos with their capture time and fix (one with EXIF): its JSON, its PDF
    and the photos' capture time."""
    items = {k: {"result": v, "note": "登记 3 人，实到 1 人" if v == "problem" else ""} for k, v in RESULT_OF.items()}
    taken = datetime.now(UTC) - timedelta(minutes=3)
    here = {"latitude": VENUE[0], "longitude": VENUE[1], "accuracy_m": 12, "datum": "WGS-84",
            "captured_at": taken.isoformat()}
    meta = [{"captured_at": taken.isoformat(), "fix": here}, {"captured_at": None, "fix": None}]
    form = {"class_id": crew.world.class_id, "alert_id": alert_id, "kind": "on_site", "items": json.dumps(items),
            "findings": "在场学员少于签到人数，疑似代签", "responsible_name": "张校长",
            "headcount_present": headcount_present, "fix": json.dumps(here), "photo_meta": json.dumps(meta)}
    files = [("signature", ("sign.png", signature_png(), "image/png")),
             ("inspector_signature", ("mine.png", signature_png(), "image/png")),
             ("photos", ("room.jpg", photo_with_exif("2024:05:01 08:30:59"), "image/jpeg")),
             ("photos", ("board.jpg", face("people/obama/obama.jpg"), "image/jpeg"))]
    r = crew.client.post("/api/v1/inspections", headers=auth(crew.tokens["county_a"]),
                         data={k: str(v) for k, v in form.items()}, files=files)
    assert r.status_code == 201, r.text
    body = r.json()
    pdf = crew.client.get(body["pdf_url"], headers=auth(crew.world.operator)).content
    return {"body": body, "pdf": pdf, "taken": taken}


@pytest.fixture
def filed(crew: Crew) -> dict[str, Any]:
    """An on-site form of an alert with a phone check (one trainee confirmed present, the form counts one)."""
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    assert crew.post(f"/api/v1/alerts/{alert_id}/arrive", "county_a").status_code == 200
    names, id_numbers = phone_check_on(crew, alert_id)
    return {"crew": crew, **file_on(crew, alert_id, 1), "names": names, "id_numbers": id_numbers,
            "alert_id": alert_id}


def run(*args: str, data: bytes) -> str:
    """A poppler tool over the PDF given on stdin (through a file: poppler does not read stdin)."""
    with subprocess.Popen(["sh", "-c", 'f=$(mktemp); cat > "$f"; "$@" "$f" -; rc=$?; rm -f "$f"; exit $rc', "sh",
                           *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        out, _ = proc.communicate(data)
    assert proc.returncode == 0
    return out.decode()


def text_of(pdf: bytes) -> str:
    return run("pdftotext", "-layout", data=pdf)


def test_every_font_is_embedded(filed: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "form.pdf"
    path.write_bytes(filed["pdf"])
    rows = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout.splitlines()[2:]
    assert rows, "no fonts listed"
    for row in rows:  # name type encoding emb sub uni object ID: emb is the 4th column from the right's 3rd…
        cols = row.split()
        assert cols[-5] == "yes", row  # emb


def test_the_boxes_are_ticked_as_the_results_say(filed: dict[str, Any]) -> None:
    text = text_of(filed["pdf"])
    words = list(RESULTS.values())
    for key, label in CHECKLIST.items():
        line = next(ln for ln in text.splitlines() if label in ln)
        ticked = [w for w in words if re.search(r"√\s*" + w + r"(\s|$)", line)]
        assert ticked == [RESULTS[RESULT_OF[key]]], (key, line)
        assert line.count("√") == 1, line


def test_the_form_prints_the_alert_class_phone_check_place_fix_time_and_photos(filed: dict[str, Any]) -> None:
    crew, body = filed["crew"], filed["body"]
    text = text_of(filed["pdf"])
    flat = re.sub(r"\s+", "", text)
    assert f"告警编号：{filed['alert_id']}" in flat and f"检查表编号：{body['id']}" in flat
    assert f"（ID{crew.world.class_id}）" in flat
    with crew.client.app.state.db.session() as s:
        row = s.get(Inspection, body["id"])
        assert row is not None
        cls = s.get(TrainingClass, row.class_id)
        assert cls is not None
        venue = s.get(Venue, cls.venue_id)
        assert venue is not None
        assert f"班次编号：{cls.code}" in flat
        assert f"检查地点：{venue.name}" in flat and (venue.address or "") in flat
    assert f"{VENUE[0]:.5f},{VENUE[1]:.5f}" in flat and "在培训场地围栏内" in flat
    local = datetime.fromisoformat(body["inspected_at"]).astimezone(SHANGHAI)
    assert f"检查时间：{local:%Y年%m月%d日%H:%M}（北京时间）" in flat
    # The phone check: names with masked ID numbers, never a whole ID number nor a phone number.
    assert "抽取2人，接通1人，确认在班1人" in flat
    for name, id_number in zip(filed["names"], filed["id_numbers"], strict=True):
        assert f"{name}{mask_id_number(id_number)}" in flat
        assert id_number not in flat
    assert "13700001111" not in flat
    # Photos: the page's capture time, the EXIF time, the fix, the digest.
    taken = filed["taken"].astimezone(SHANGHAI)
    assert f"{taken:%Y-%m-%d%H:%M:%S}（手机记录），EXIF拍摄时间2024-05-0108:30:59" in flat
    for sha in body["photo_sha256s"]:
        assert sha in flat
    assert "被检查单位现场负责人：张校长" in flat and "检查人员：抽查员0" in flat
    # Both signatures are images on the page (and the inspector's is stored as evidence).
    assert filed["pdf"].count(b"/Subtype /Image") >= 2
    sig = crew.client.get(f"/api/v1/evidence/{body['inspector_signature_sha256']}", headers=auth(crew.world.operator))
    assert sig.status_code == 200 and sig.content == signature_png()


def test_the_form_prints_the_contradictions_between_the_alerts_records_only_when_there_are_any(
        filed: dict[str, Any]) -> None:
    crew, alert_id = filed["crew"], filed["alert_id"]
    assert filed["body"]["contradictions"] == []
    assert "记录矛盾" not in text_of(filed["pdf"])  # the phone check confirmed 1 present, the form counts 1
    second = file_on(crew, alert_id, 0)  # a later form of the same alert counting nobody present
    said = second["body"]["contradictions"]
    assert len(said) == 1 and "矛盾" in said[0]
    flat = re.sub(r"\s+", "", text_of(second["pdf"]))
    assert "四、记录矛盾" in flat and "五、现场照片2张" in flat
    assert "1." + re.sub(r"\s+", "", said[0]) in flat  # as the API states it, wrapped over lines
    assert crew.detail(alert_id).json()["contradictions"] == said


def test_photos_keep_their_capture_time_fix_and_exif_time_in_the_json(filed: dict[str, Any]) -> None:
    body = filed["body"]
    first, second = body["photos"]
    assert [first["sha256"], second["sha256"]] == body["photo_sha256s"]
    assert datetime.fromisoformat(first["captured_at"]) == filed["taken"]
    assert first["fix"]["fence_result"] == "inside" and first["exif_taken_at"] == "2024-05-01T08:30:59"
    assert second["captured_at"] is None and second["fix"] is None
    again = filed["crew"].client.get(f"/api/v1/inspections/{body['id']}", headers=auth(filed["crew"].world.operator))
    assert again.json()["photos"] == body["photos"]


def test_the_qr_code_carries_the_verify_link_which_answers_genuine_and_unknown_when_changed(
        filed: dict[str, Any], tmp_path: Path) -> None:
    crew, body = filed["crew"], filed["body"]
    (tmp_path / "form.pdf").write_bytes(filed["pdf"])
    url = ""
    for dpi in (200, 300):  # as a phone would: the page, then the corner the code is printed in, closer
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "1", "-l", "1", "-png", str(tmp_path / "form.pdf"),
                        str(tmp_path / f"page{dpi}")], check=True)
        page = cv2.imread(str(next(tmp_path.glob(f"page{dpi}*.png"))))
        height, width = page.shape[:2]
        for view in (page, page[int(height * 0.7):, int(width * 0.6):]):
            url = url or cv2.QRCodeDetector().detectAndDecode(view)[0]
    assert url == f"http://localhost:8000/verify/{body['record_sha256']}"
    assert url in re.sub(r"\s+", "", text_of(filed["pdf"]))  # the link is printed too
    path = url.removeprefix("http://localhost:8000")
    genuine = crew.client.get(path)  # no token
    assert genuine.status_code == 200, genuine.text
    answer = genuine.json()
    assert (answer["status"], answer["kind"], answer["id"], answer["matched"]) == (
        "genuine", "inspection_form", body["id"], "record")
    for personal in ["张校长", "抽查员0", *filed["names"], *filed["id_numbers"], "13700001111"]:
        assert personal not in genuine.text
    page_html = crew.client.get(path, headers={"Accept": "text/html"})
    assert page_html.status_code == 200 and "核验通过" in page_html.text and "张校长" not in page_html.text
    # The signed PDF's own digest verifies too.
    by_pdf = crew.client.get(f"/verify/{body['pdf_sha256']}")
    assert by_pdf.status_code == 200 and by_pdf.json()["matched"] == "pdf"
    # One changed hex digit: unknown.
    digest = body["record_sha256"]
    changed = digest[:10] + ("0" if digest[10] != "0" else "1") + digest[11:]
    unknown = crew.client.get(f"/verify/{changed}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_DIGEST"
    assert crew.client.get(f"/verify/{changed}", headers={"Accept": "text/html"}).status_code == 404
    assert crew.client.get("/verify/not-a-digest").status_code == 404
    # The stored record changed after filing (one finding rewritten in the database): its digest no longer verifies.
    with crew.client.app.state.db.session() as s:
        row = s.get(Inspection, body["id"])
        assert row is not None
        row.findings = "未发现问题"
    assert crew.client.get(path).status_code == 404


def test_a_form_grounds_a_blacklisting_only_of_whom_it_found_at_fault(filed: dict[str, Any]) -> None:
    """The form found the headcount and the attendance not complying, its teacher item not checked: it grounds
    blacklisting the institution, not banning the class's teacher for life."""
    crew, body = filed["crew"], filed["body"]
    w = crew.world
    teacher = crew.client.put(f"/api/v1/teachers/{w.ids['teachers'][0]}/blacklist", headers=auth(w.admin), json={
        "blacklisted": True, "reason": "伪造考勤", "for_fraud": True, "inspection_ids": [body["id"]]})
    assert teacher.status_code == 422 and teacher.json()["code"] == "EVIDENCE_NOT_OF_SUBJECT", teacher.text
    assert "教师资质" in teacher.json()["message"]
    institution = crew.client.put(f"/api/v1/institutions/{w.ids['institution']}/blacklist", headers=auth(w.admin),
                                  json={"blacklisted": True, "reason": "代签", "inspection_ids": [body["id"]]})
    assert institution.status_code == 200, institution.text


def test_a_stored_pdf_altered_on_disk_is_neither_served_nor_vouched_for(filed: dict[str, Any]) -> None:
    crew, body = filed["crew"], filed["body"]
    app = crew.client.app
    app.state.evidence.path_for(body["pdf_sha256"]).write_bytes(filed["pdf"].replace(b"/Producer", b"/Producel", 1))
    pdf = crew.client.get(body["pdf_url"], headers=auth(crew.world.operator))
    assert pdf.status_code == 410 and pdf.json()["code"] == "EVIDENCE_ALTERED"
    by_pdf = crew.client.get(f"/verify/{body['pdf_sha256']}")
    assert by_pdf.status_code == 404 and by_pdf.json()["code"] == "UNKNOWN_DIGEST"
    with app.state.db.session() as s:
        faults = s.scalars(select(EvidenceFaultRow)).all()
        assert [(f.sha256, f.kind, f.detected_by) for f in faults] == [(body["pdf_sha256"], "altered", "form_pdf")]
    # The record digest printed on the form (the QR code) is not vouched for either while a file it names is not
    # as filed: the PDF, or (outside tester) a signature altered on disk that nothing else reads.
    assert crew.client.get(f"/verify/{body['record_sha256']}").status_code == 404
    app.state.evidence.path_for(body["pdf_sha256"]).write_bytes(filed["pdf"])  # restored from a backup
    assert crew.client.get(f"/verify/{body['record_sha256']}").status_code == 200
    with app.state.db.session() as s:
        signature = s.get(Inspection, body["id"]).signature_sha256  # type: ignore[union-attr]
    app.state.evidence.path_for(signature).write_bytes(b"\x89PNG another hand")
    record = crew.client.get(f"/verify/{body['record_sha256']}", headers={"Accept": "text/html"})
    assert record.status_code == 404 and "核验通过" not in record.text
    app.state.evidence.path_for(body["pdf_sha256"]).unlink()
    assert crew.client.get(f"/verify/{body['pdf_sha256']}").status_code == 404
    with app.state.db.session() as s:
        found = sorted((f.sha256 == signature, f.kind, f.detected_by) for f in s.scalars(select(EvidenceFaultRow)))
    assert found == [(False, "altered", "form_pdf"), (False, "missing", "verify"), (True, "altered", "verify")]


def trust_root(crew: Crew) -> asn1_x509.Certificate:
    _, cert_file, _ = crew.client.app.state.settings.form_signing_paths
    _, _, der = pem.unarmor(Path(cert_file).read_bytes())
    return asn1_x509.Certificate.load(der)


def test_the_pdf_is_signed_by_the_center_and_a_changed_byte_breaks_the_signature(filed: dict[str, Any]) -> None:
    context = ValidationContext(trust_roots=[trust_root(filed["crew"])])
    pdf = filed["pdf"]
    reader = PdfFileReader(io.BytesIO(pdf))
    [signature] = reader.embedded_signatures
    status = validate_pdf_signature(signature, context)
    assert status.intact and status.valid and status.trusted and status.bottom_line, status.pretty_print_details()
    assert status.coverage.name == "ENTIRE_FILE"
    changed = bytearray(pdf)
    at = pdf.index("职业".encode()) if "职业".encode() in pdf else len(pdf) // 3  # within the signed bytes
    changed[at] ^= 0x01
    broken = validate_pdf_signature(PdfFileReader(io.BytesIO(bytes(changed))).embedded_signatures[0], context)
    assert not broken.intact and not broken.bottom_line


def test_the_metadata_names_the_form_the_center_and_the_filing_time(filed: dict[str, Any], tmp_path: Path) -> None:
    body = filed["body"]
    path = tmp_path / "form.pdf"
    path.write_bytes(filed["pdf"])
    info = dict(line.split(":", 1) for line in subprocess.run(
        ["pdfinfo", "-isodates", str(path)], check=True, capture_output=True, text=True).stdout.splitlines()
        if ":" in line)
    info = {k.strip(): v.strip() for k, v in info.items()}
    assert info["Title"] == f"职业技能培训班检查表 第 {body['id']} 号（班次 {info['Title'].split('班次 ')[1][:-1]}）"
    assert "云南省职业技能培训监控调度中心" in info["Author"] and "抽查员0" in info["Author"]
    assert "云人社通〔2022〕50号" in info["Subject"] and f"告警 {filed['alert_id']}" in info["Subject"]
    assert "监控调度" in info["Creator"]
    assert "ReportLab" in info["Producer"] and "pyHanko" in info["Producer"]
    created = datetime.fromisoformat(info["CreationDate"])
    filed_at = datetime.fromisoformat(body["created_at"])
    assert abs((created - filed_at).total_seconds()) < 1 and created.year > 2000


XMP_NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dc": "http://purl.org/dc/elements/1.1/",
          "xmp": "http://ns.adobe.com/xap/1.0/", "pdf": "http://ns.adobe.com/pdf/1.3/",
          "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}


def xmp_property(packet: bytes, name: str) -> str:
    """One XMP property ("prefix:name"), written as an attribute of rdf:Description or as an element (the first
    rdf:li of an array)."""
    prefix, local = name.split(":")
    key = f"{{{XMP_NS[prefix]}}}{local}"
    for description in ET.fromstring(packet).iter(f"{{{XMP_NS['rdf']}}}Description"):
        if key in description.attrib:
            return description.attrib[key]
        element = description.find(key)
        if element is not None:
            item = element.find(f".//{{{XMP_NS['rdf']}}}li")
            return ((item if item is not None else element).text or "").strip()
    raise KeyError(name)


def test_the_signed_pdf_is_a_pdfa_2b_candidate_whose_xmp_matches_its_info(filed: dict[str, Any]) -> None:
    """PDF/A-2b as far as it can be checked here (no veraPDF): an sRGB output intent, XMP declaring part 2
    conformance B equal to the Info dictionary after signing, a document ID, an EOL before every endstream, and the
    signature an incremental update over the unchanged original."""
    pdf = filed["pdf"]
    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    [intent] = reader.root["/OutputIntents"]
    assert intent["/Type"] == "/OutputIntent" and intent["/S"] == "/GTS_PDFA1"
    assert str(intent["/OutputConditionIdentifier"]) == "sRGB IEC61966-2.1"
    profile = intent["/DestOutputProfile"]
    icc = profile.data
    assert profile["/N"] == 3 and len(icc) == int.from_bytes(icc[:4], "big")
    assert icc[36:40] == b"acsp" and icc[12:16] == b"mntr" and icc[16:20] == b"RGB " and icc[8] <= 4
    assert len(reader.trailer["/ID"]) == 2
    metadata = reader.root["/Metadata"]
    assert metadata["/Type"] == "/Metadata" and metadata["/Subtype"] == "/XML" and "/Filter" not in metadata
    packet = metadata.data
    assert packet.startswith(b"<?xpacket begin=") and b"bytes=" not in packet[:80] and b"encoding=" not in packet[:80]
    assert xmp_property(packet, "pdfaid:part") == "2" and xmp_property(packet, "pdfaid:conformance") == "B"
    info = reader.trailer["/Info"]
    for xmp_name, info_key in (("dc:title", "/Title"), ("dc:creator", "/Author"), ("dc:description", "/Subject"),
                               ("xmp:CreatorTool", "/Creator"), ("pdf:Producer", "/Producer"),
                               ("pdf:Keywords", "/Keywords")):
        assert xmp_property(packet, xmp_name) == str(info[info_key]), xmp_name
    assert "pyHanko" in xmp_property(packet, "pdf:Producer") and "ReportLab" in xmp_property(packet, "pdf:Producer")
    for xmp_name, info_key in (("xmp:CreateDate", "/CreationDate"), ("xmp:ModifyDate", "/ModDate")):
        assert datetime.fromisoformat(xmp_property(packet, xmp_name)) == parse_pdf_date(str(info[info_key])), xmp_name
    created = datetime.fromisoformat(xmp_property(packet, "xmp:CreateDate"))
    assert abs((created - datetime.fromisoformat(filed["body"]["created_at"])).total_seconds()) < 1
    for end in re.finditer(rb"endstream", pdf):
        assert pdf[end.start() - 1:end.start()] in (b"\n", b"\r"), end.start()
    # The signature is one incremental update: the first revision (the unsigned form) is kept byte for byte.
    assert pdf.count(b"%%EOF") == 2
    first = pdf[:pdf.index(b"%%EOF") + len(b"%%EOF\n")]
    [signature] = reader.embedded_signatures
    assert signature.signed_revision == 1 and len(first) < len(pdf)
    original = PdfFileReader(io.BytesIO(first), strict=True)
    assert xmp_property(original.root["/Metadata"].data, "pdfaid:part") == "2"


def test_a_form_without_the_inspectors_signature_is_refused(crew: Crew) -> None:
    r = crew.client.post(
        "/api/v1/inspections", headers=auth(crew.tokens["county_a"]),
        data={"class_id": str(crew.world.class_id), "kind": "on_site",
              "items": json.dumps({k: {"result": "ok"} for k in CHECKLIST}), "responsible_name": "张校长"},
        files=[("signature", ("s.png", signature_png(), "image/png"))])
    assert r.status_code == 422 and "inspector_signature" in r.text
    assert crew.client.get("/api/v1/inspections", headers=auth(crew.world.operator)).json() == []


def test_a_missing_font_is_a_clear_error_not_a_form_without_its_font(tmp_path: Path) -> None:
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    form = FormContent(1, "C1", "班", "机构", "场地", "on_site", "检查员", at, 3, 3, {}, "", "张校长", [])
    with pytest.raises(FormFontMissing, match="fonts-wqy-microhei"):
        render_form(form, signature_png(), signature_png(), tmp_path / "none.ttc")

"""One spot-check visit walked end to end on the inspector's phone page at 360 px, as a human inspector would (issue 18,
"Done means"), then checked in the database: every step left its record."""

from __future__ import annotations

import hashlib

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from models.tables import Alert, AlertTransition, Evidence, Inspection, PhoneCall, PhoneCheck
from monitor.decisions.inspection_form import CHECKLIST
from tests import test_inspector_page as phone_page
from tests.crew import Crew
from tests.helpers import VENUE, auth
from tests.test_inspector_page import crew_live  # noqa: F401 - the app behind a server, with its inspectors
from tests.test_pages import browser  # noqa: F401 - the module-scoped Chromium fixture
from tests.test_phone_checks import sign_in_verified


def test_a_spot_check_visit_from_sign_in_link_to_closed_with_evidence(crew_live: Crew,  # noqa: F811
                                                                       browser: Browser) -> None:  # noqa: F811
    """Signed in by a one-time link, the county inspector gets the page live, accepts, arrives inside the venue's
    fence, is refused closing as a confirmed violation with no evidence yet, phones 5 trainees timed by the page,
    files the signed form, opens its PDF and closes the alert as a confirmed violation."""
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    signed = sign_in_verified(crew, 6)
    context = browser.new_context(viewport=phone_page.PHONE, locale="zh-CN", has_touch=True, is_mobile=True,
                                  geolocation={"latitude": VENUE[0], "longitude": VENUE[1], "accuracy": 15},
                                  permissions=["geolocation"])
    requested, outside = phone_page.server_only(context, base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    phone_page.sign_in_by_link(crew, page, "county_a")
    expect(page.locator("#me")).to_contain_text("县区抽查员甲")
    expect(page.locator("#tasks-empty")).to_be_visible()

    # The anomaly is dispatched to this inspector: the task arrives live, accepted from its card.
    alert_id = crew.alert_id()
    assert crew.clock().run() == {"escalated": 0, "routed": 1}
    card = page.locator(f"#tasks li[data-alert-id='{alert_id}']")
    expect(card).to_be_visible(timeout=15_000)
    expect(card).to_contain_text("人脸不符")
    expect(card.locator(".badge")).to_have_text("已派发")
    card.locator("button.accept").tap()
    expect(page.locator("#task-view")).to_be_visible(timeout=15_000)
    expect(page.locator("#t-state")).to_have_text("已接单")
    subject = page.locator("#t-subjects li.subject")  # whom to look for: the check-in photo and the enrolled one
    expect(subject).to_contain_text("欧建国")
    expect(subject.locator("img[src^='blob:']")).to_have_count(2, timeout=15_000)
    phone_page.fits(page)

    # On site: the phone's fix goes with the arrival and the center judges it inside the fence.
    page.locator("#arrive").tap()
    expect(page.locator("#t-msg")).to_contain_text("定位在培训场地围栏内", timeout=10_000)
    expect(page.locator("#t-state")).to_have_text("现场核查中")

    # "Confirmed violation" with nothing behind it yet: the page sends it, the center refuses and says why.
    page.locator("#close-form input[value=violation_confirmed]").check()
    page.locator("#close-note").fill("现场看到签到的人不是学员本人")
    with page.expect_response(lambda r: r.url.endswith(f"/alerts/{alert_id}/close")) as refused:
        page.locator("#close-submit").tap()
    assert refused.value.status == 422 and refused.value.json()["code"] == "EVIDENCE_REQUIRED"
    expect(page.locator("#close-msg")).to_contain_text("「确认违规」须有显示违规的电话抽查或检查表",
                                                       timeout=15_000)
    assert crew.detail(alert_id).json()["state"] == "on_site"

    # The phone check: the page dials (tel:) and times each call; 5 reached, then done.
    page.locator("#phone").tap()
    expect(page.locator("#check-list li.trainee")).to_have_count(8, timeout=15_000)
    expect(page.locator("#t-state")).to_have_text("电话抽查中")
    phone_page.no_dialler(page)
    check_id = page.evaluate(f"JSON.parse(localStorage.getItem('monitor.inspector.check.{alert_id}'))")
    check = crew.client.get(f"/api/v1/phone-checks/{check_id}", headers=auth(crew.tokens["county_a"])).json()
    callees = [t["trainee_id"] for t in check["trainees"] if t["phone"] and t["trainee_id"] in signed][:5]
    for n, trainee_id in enumerate(callees):
        phone_page.call_trainee(page, trainee_id, f"在教室上课（第 {n + 1} 位）", 6)
    page.locator("#complete").tap()
    expect(page.locator("#check-summary")).to_contain_text("抽查已完成", timeout=15_000)
    expect(page.locator("#check-summary")).to_contain_text("接通 5 人")

    # The form, unfolded now, filled as found on site, with two photos and both signatures.
    form = page.locator("#insp-form")
    expect(form.locator("#insp-items")).to_be_visible()
    form.locator("input[name=kind][value=on_site]").check()
    phone_page.tick_items(form)
    phone_page.form_item(form, "headcount").locator("textarea").fill("签到 7 人，在场 6 人，欧建国本人不在场")
    page.fill("#insp-findings", "欧建国的签到照片为他人，本人不在培训现场")
    page.fill("#insp-headcount", "6")
    page.fill("#insp-responsible", "张校长")
    phone_page.take_photos(page)
    phone_page.sign_both(page)
    phone_page.fits(page)
    page.locator("#insp-submit").tap()
    expect(page.locator("#insp-done")).to_be_visible(timeout=10_000)
    expect(page.locator("#insp-done-msg")).to_contain_text("检查表已归档")
    inspection_id = crew.detail(alert_id).json()["inspection_ids"][0]
    pdf = phone_page.open_pdf(page, context, inspection_id)  # fetched by the page, its digest checked, opened in a tab
    phone_page.fits(page)

    # Closed with its outcome, now on its evidence.
    page.locator("#close-form input[value=violation_confirmed]").check()
    note = f"电话抽查接通 5 人；现场核实欧建国未到，签到照片为他人。见检查表第 {inspection_id} 号"
    page.locator("#close-note").fill(note)
    page.locator("#close-submit").tap()
    history = page.locator(f"#history li[data-alert-id='{alert_id}']")
    expect(history).to_be_visible(timeout=15_000)
    expect(history).to_contain_text("处置结果：确认违规")
    expect(history).to_contain_text("已归档检查表 1 份")
    phone_page.fits(page)
    page.wait_for_load_state("networkidle")
    assert not outside, outside
    assert requested and not errors, errors
    context.close()

    # What the database holds of the visit.
    staff = crew.staff["county_a"]
    with crew.client.app.state.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and (alert.state, alert.outcome) == ("closed", "violation_confirmed")
        steps = s.scalars(select(AlertTransition).where(AlertTransition.alert_id == alert_id)
                          .order_by(AlertTransition.id)).all()
        assert [(t.action, t.to_state) for t in steps] == [
            ("dispatch", "dispatched"), ("accept", "accepted"), ("arrive", "on_site"), ("phone", "phoning"),
            ("close", "closed")]
        assert all(t.staff_id == staff for t in steps[1:])
        arrive = steps[2].fix
        assert arrive is not None and (arrive["fence_result"], arrive["accuracy_m"], arrive["datum"]) == (
            "inside", 15, "WGS-84")
        assert abs(arrive["lat"] - VENUE[0]) < 1e-6 and abs(arrive["lon"] - VENUE[1]) < 1e-6
        assert (steps[-1].outcome, steps[-1].note) == ("violation_confirmed", note)

        phone = s.get(PhoneCheck, check_id)
        assert phone is not None and (phone.alert_id, phone.staff_id, phone.state) == (alert_id, staff, "done")
        calls = s.scalars(select(PhoneCall).where(PhoneCall.check_id == check_id).order_by(PhoneCall.id)).all()
        assert [(c.trainee_id, c.reached, c.present, c.timing) for c in calls] == [
            (t, True, True, "page") for t in callees]
        # The page's timestamps, not typed: each call as long as the test held it (a slow tap adds up to a second).
        assert all(0 <= c.duration_s - 6 <= 1 for c in calls), [c.duration_s for c in calls]
        assert all(a.ended_at and b.started_at and a.ended_at <= b.started_at  # one call after another, after the draw
                   for a, b in zip(calls, calls[1:], strict=False)) and calls[0].started_at >= phone.created_at
        assert all(c.started_at and c.ended_at and abs((c.ended_at - c.started_at).total_seconds() - c.duration_s)
                   <= 1 for c in calls)

        inspection = s.get(Inspection, inspection_id)
        assert inspection is not None
        assert (inspection.alert_id, inspection.staff_id, inspection.kind, inspection.responsible_name,
                inspection.headcount_present) == (alert_id, staff, "on_site", "张校长", 6)
        assert inspection.items["headcount"] == {"result": "problem", "note": "签到 7 人，在场 6 人，欧建国本人不在场"}
        assert {k for k, v in inspection.items.items() if v["result"] == "ok"} == set(CHECKLIST) - {
            "headcount", "quality"}
        assert inspection.fix is not None and inspection.fix["fence_result"] == "inside"
        assert len(inspection.photo_sha256s) == 2 and inspection.inspector_signature_sha256
        # The PDF the page opened is the one recorded, by its SHA-256, and kept in the evidence store.
        assert inspection.pdf_sha256 == hashlib.sha256(pdf).hexdigest()
        kept = s.get(Evidence, inspection.pdf_sha256)
        assert kept is not None and (kept.size_bytes, kept.media_type) == (len(pdf), "application/pdf")
    from monitor.services.audit import verify_rows  # the visit's every record is as the chain says
    assert verify_rows(crew.client.app.state.db)[1] == []

"""/metrics (issue 21 item 7): the Prometheus text format read back with prometheus-client's own parser, figures that
follow what happened (an upload verified, an alert raised, the verification time observed), tokens required."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import World, auth, face


def scrape(world: World, token: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = world.client.get("/metrics", headers=auth(token))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(m: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in m.get(name, []) if all(got.get(k) == x for k, x in labels.items()))


def test_metrics_follow_uploads_verdicts_and_alerts(world: World) -> None:
    before = scrape(world, world.operator)
    assert value(before, "monitor_uploads_today", kind="checkin") == 0
    assert value(before, "monitor_evidence_free_bytes") > 0
    assert world.checkin(face("people/obama/obama2.jpg")).json()["status"] == "passed"
    assert world.checkin(face("people/kit_harington/john1.jpeg")).json()["status"] == "failed"
    after = scrape(world, world.admin)
    assert value(after, "monitor_uploads_today", kind="checkin", status="passed") == 1
    assert value(after, "monitor_uploads_today", kind="checkin", status="failed") == 1
    assert value(after, "monitor_verification_seconds_count") == 2
    assert value(after, "monitor_verification_seconds_bucket", le="+Inf") == 2
    assert value(after, "monitor_alerts_active", rule="FACE_MISMATCH") >= 1
    assert value(after, "monitor_queue_lag_seconds") == 0 and value(after, "monitor_outbox_unprocessed") == 0
    assert world.client.get("/metrics").status_code == 401
    assert world.client.get("/metrics", headers=auth(world.site)).status_code == 403

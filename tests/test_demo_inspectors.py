"""The demo's simulated inspectors work alerts over the API the way people would, so the demo shows dispatch."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from monitor.demo.inspectors import InspectorCrew
from monitor.services.dispatch import DispatchClock
from tests.helpers import World, auth, face


def test_simulated_inspectors_take_alerts_from_page_to_close(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(dispatch_interval_seconds=3600)
    world = World.build(client)
    crew = InspectorCrew(client, world.admin, seed=3)
    assert crew.hire(crew.counties()) == 3  # the two classes' counties and the province
    assert crew.hire(crew.counties()) == 0
    for photo in ("people/kit_harington/john1.jpeg", "people/alex_lacamoire/img1.jpg"):  # strangers for Obama
        r = world.checkin(face(photo))
        assert r.status_code == 201 and r.json()["status"] == "failed", r.text
    clock = DispatchClock(client.app.state.settings, client.app.state.db, random.Random(4))
    now = datetime.now(UTC)
    for minute in range(0, 120, 11):
        clock.run(now + timedelta(minutes=minute))
        crew.step()
    alerts = client.get("/api/v1/alerts?state=closed", headers=auth(world.operator)).json()
    assert alerts, client.get("/api/v1/alerts", headers=auth(world.operator)).json()
    for summary in alerts:
        detail = client.get(f"/api/v1/alerts/{summary['id']}", headers=auth(world.operator)).json()
        actions = [t["action"] for t in detail["transitions"]]
        assert actions[0] == "dispatch" and "accept" in actions and actions[-1] == "close"
        assert detail["outcome"] in ("violation_confirmed", "false_alarm", "could_not_verify")
        assert detail["inspection_ids"] or detail["phone_check_ids"]
    from monitor.services.audit import verify_rows  # every record of this whole story is as the chain says
    checked, findings = verify_rows(client.app.state.db)
    assert checked > 30 and findings == []

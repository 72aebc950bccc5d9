"""A world with spot-check staff for the dispatch tests: inspectors of every level, one tied to the class's school."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.services.dispatch import DispatchClock
from tests.helpers import World, auth, face


@dataclass
class Crew:
    """The world plus inspectors: two of the class's county (one tied to its institution), its prefecture, the
    province, and another county's; each with a token naming them."""

    world: World
    staff: dict[str, int]
    tokens: dict[str, str]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # when built (UTC); duty runs from 1 h before

    @property
    def client(self) -> TestClient:
        return self.world.client

    def clock(self, seed: int = 7) -> DispatchClock:
        app = self.client.app
        return DispatchClock(app.state.settings, app.state.db, random.Random(seed))

    def alert_id(self) -> int:
        # A stranger's face (not on the roster) for Obama: FACE_MISMATCH (high severity), and nothing else.
        r = self.world.checkin(face("people/kit_harington/john1.jpeg"))
        assert r.json()["status"] == "failed", r.text
        alerts = self.client.get("/api/v1/alerts", headers=auth(self.world.operator)).json()
        assert [a["rule"] for a in alerts] == ["FACE_MISMATCH"]
        return int(alerts[0]["id"])

    def detail(self, alert_id: int, who: str = "operator") -> Any:
        token = self.world.operator if who == "operator" else self.tokens[who]
        return self.client.get(f"/api/v1/alerts/{alert_id}", headers=auth(token))

    def post(self, path: str, who: str, json: dict[str, Any] | None = None) -> Any:
        token = {"operator": self.world.operator, "admin": self.world.admin}.get(who) or self.tokens[who]
        return self.client.post(path, headers=auth(token), json=json or {})


@pytest.fixture
def crew(client_factory: Callable[..., TestClient]) -> Crew:
    return build_crew(client_factory(dispatch_interval_seconds=3600, dispatch_accept_minutes=10,
                                     dispatch_tries_per_level=2))


@pytest.fixture
def crew_pg(client_factory: Callable[..., TestClient], postgres_url: str) -> Crew:
    """The same crew on PostgreSQL."""
    return build_crew(client_factory(database_url=postgres_url, dispatch_interval_seconds=3600,
                                     dispatch_accept_minutes=10, dispatch_tries_per_level=2))


def build_crew(client: TestClient) -> Crew:
    world, now = World.build(client), datetime.now(UTC)
    roster = {"county_a": ("county", "530102"), "county_tied": ("county", "530102"),
              "prefecture": ("prefecture", "530100"), "province": ("province", "530000"),
              "elsewhere": ("county", "532901")}
    staff, tokens = {}, {}
    for n, (key, (level, region)) in enumerate(roster.items()):
        r = client.post("/api/v1/staff", headers=auth(world.admin), json={
            "name": f"抽查员{n}", "phone": f"1390000000{n}", "level": level, "region_code": region})
        assert r.status_code == 201, r.text
        staff[key] = r.json()["id"]
        duty = client.post(f"/api/v1/staff/{staff[key]}/duty", headers=auth(world.operator), json={
            "starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(hours=8)).isoformat()})
        assert duty.status_code == 201, duty.text
        r = client.post("/api/v1/tokens", headers=auth(world.admin), json={
            "role": "inspector", "name": f"抽查员{n}", "staff_id": staff[key]})
        assert r.status_code == 201, r.text
        tokens[key] = r.json()["token"]
    tie = client.post(f"/api/v1/staff/{staff['county_tied']}/ties", headers=auth(tokens["county_tied"]),
                      json={"institution_id": world.ids["institution"], "relation": "spouse", "note": "配偶任该校校长"})
    assert tie.status_code == 201, tie.text
    return Crew(world, staff, tokens, now)

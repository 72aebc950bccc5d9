"""Every API endpoint refuses a request without a valid token; tokens are stored hashed; CLI issues them."""

import re

from sqlalchemy import select
from typer.testing import CliRunner

from models.tables import ApiToken
from monitor.cli import app as cli
from tests.helpers import World, auth


def test_every_api_endpoint_requires_a_token(world: World) -> None:
    schema = world.client.get("/openapi.json").json()
    checked = 0
    for path, methods in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in methods:
            for headers in ({}, auth("mon_not-a-real-token")):
                r = world.client.request(method.upper(), url, headers=headers)
                assert r.status_code == 401, (method, path, r.status_code, r.text)
                assert r.json()["code"] in ("AUTH_REQUIRED", "AUTH_INVALID")
            checked += 1
    assert checked >= 20


def test_revoked_token_is_refused(world: World) -> None:
    assert world.client.get("/api/v1/overview", headers=auth(world.operator)).status_code == 200
    with world.client.app.state.db.session() as s:
        for row in s.scalars(select(ApiToken).where(ApiToken.role == "operator")):
            row.revoked_at = row.created_at
    r = world.client.get("/api/v1/overview", headers=auth(world.operator))
    assert r.status_code == 401 and r.json()["code"] == "AUTH_INVALID"


def test_tokens_are_stored_hashed(world: World) -> None:
    with world.client.app.state.db.session() as s:
        hashes = s.scalars(select(ApiToken.token_hash)).all()
    for token in (world.admin, world.site, world.operator):
        assert token not in hashes and all(token not in h for h in hashes)


def test_cli_creates_tokens(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    r = runner.invoke(cli, ["token", "create", "--role", "operator", "--name", "值班员"])
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    assert token.startswith("mon_")
    r = runner.invoke(cli, ["token", "create", "--role", "inspector", "--name", "x", "--region", "530100"])
    assert r.exit_code == 0 and r.output.strip().startswith("mon_")
    r = runner.invoke(cli, ["token", "create", "--role", "site", "--name", "x", "--institution-id", "42"])
    assert r.exit_code != 0

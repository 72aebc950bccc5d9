"""Every API endpoint refuses a request without a valid token; tokens are stored hashed; CLI issues them."""

import os
import re
import shlex
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from models.domain import Principal, Role
from models.tables import ApiToken, AuditEntry, Staff
from monitor.adapters.storage import Database
from monitor.adapters.tokens import redeem_sign_in_link, resolve_token
from monitor.cli import app as cli
from monitor.cli import data_dir_exports, token_command
from monitor.cli.demo import HUMAN_INSPECTOR, human_inspector_link
from monitor.settings import Settings
from tests.conftest import free_port
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


def test_an_admin_lists_and_revokes_tokens_with_a_reason_and_the_chain_records_who(
        client_factory: Callable[..., TestClient]) -> None:
    """A lost phone's site token: the admin finds it by holder (never seeing a token or hash), revokes it with a
    reason; its requests are refused from then on; revoking it again is 409, an unknown id 404, anyone but an
    admin 403; the audit chain records the revocation with the admin's name."""
    world = World.build(client_factory())
    created = world.client.post("/api/v1/tokens", headers=auth(world.admin), json={
        "role": "site", "name": "站点手机（遗失）", "institution_id": world.ids["institution"]}).json()
    lost = created["token"]
    assert world.client.get("/api/v1/classes", headers=auth(lost)).status_code == 200
    listed = world.client.get("/api/v1/tokens?role=site&active=true", headers=auth(world.admin)).json()
    mine = next(t for t in listed if t["id"] == created["id"])
    assert (mine["name"], mine["institution_id"], mine["active"], mine["revoked_at"]) == (
        "站点手机（遗失）", world.ids["institution"], True, None)
    assert "token" not in mine and "token_hash" not in mine and lost not in str(listed)
    for who in (world.operator, world.site, lost):
        r = world.client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=auth(who), json={"reason": "x"})
        assert r.status_code == 403, r.text
    r = world.client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=auth(world.admin),
                          json={"reason": "手机遗失"})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["revoked_reason"] == "手机遗失"
    r = world.client.get("/api/v1/classes", headers=auth(lost))
    assert r.status_code == 401 and r.json()["code"] == "AUTH_INVALID"
    again = world.client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=auth(world.admin),
                              json={"reason": "再次"})
    assert again.status_code == 409 and again.json()["code"] == "TOKEN_ALREADY_REVOKED"
    missing = world.client.post("/api/v1/tokens/999999/revoke", headers=auth(world.admin), json={"reason": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "UNKNOWN_TOKEN"
    blank = world.client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=auth(world.admin), json={})
    assert blank.status_code == 422
    active = world.client.get("/api/v1/tokens?active=true", headers=auth(world.admin)).json()
    assert created["id"] not in {t["id"] for t in active}
    db = world.client.app.state.db
    db.seal_audit()
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "api_tokens.update",
                                                   AuditEntry.subject_id == str(created["id"]))).one()
    assert entry.actor == "测试管理员" and entry.actor_role == "admin" and entry.detail["revoked_reason"] == "手机遗失"


def test_cli_lists_and_revokes_a_token(cli_env: Path) -> None:
    assert run("migrate").exit_code == 0
    token = run("token", "create", "--role", "operator", "--name", "值班员甲").output.strip()
    listed = run("token", "list")
    assert listed.exit_code == 0 and "值班员甲" in listed.output and token not in listed.output
    token_id = next(line.split("\t")[0] for line in listed.output.splitlines() if "值班员甲" in line)
    r = run("token", "revoke", token_id, "--reason", "人员离岗")
    assert r.exit_code == 0 and "已吊销令牌" in r.output, r.output
    assert principal_of(cli_env, token) is None
    assert "值班员甲" not in run("token", "list").output and "人员离岗" in run("token", "list", "--all").output
    assert_clear_error(run("token", "revoke", token_id, "--reason", "再次"), 2, "已于先前吊销")


def test_only_an_inspector_token_is_scoped_by_regions(world: World) -> None:
    """An operator's, admin's, auditor's or site's token covers what its role covers: asked for regions (real or
    not), the API refuses as the CLI does, instead of issuing a province-wide token listed as limited (outside
    tester); an inspector's regions must be real ones."""
    c, admin = world.client, auth(world.admin)
    for role, extra in (("operator", {}), ("admin", {}), ("auditor", {}),
                        ("site", {"institution_id": world.ids["institution"]})):
        for codes in (["532900"], ["539999"]):
            r = c.post("/api/v1/tokens", headers=admin, json={"role": role, "name": "限定区域", "region_codes": codes,
                                                             **extra})
            assert r.status_code == 422 and r.json()["code"] == "SCOPE_NOT_ALLOWED", (role, codes, r.text)
            assert "只有抽查人员令牌可以指定负责区域" in r.json()["message"]
    assert "限定区域" not in c.get("/api/v1/tokens", headers=admin).text
    r = c.post("/api/v1/tokens", headers=admin,
               json={"role": "inspector", "name": "抽查员", "region_codes": ["539999"]})
    assert r.status_code == 422 and r.json()["code"] == "UNKNOWN_REGION"
    r = c.post("/api/v1/tokens", headers=admin,
               json={"role": "inspector", "name": "抽查员", "region_codes": ["530100"]})
    assert r.status_code == 201, r.text


def test_tokens_are_stored_hashed(world: World) -> None:
    with world.client.app.state.db.session() as s:
        hashes = s.scalars(select(ApiToken.token_hash)).all()
    for token in (world.admin, world.site, world.operator):
        assert token not in hashes and all(token not in h for h in hashes)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean MONITOR_* environment whose data directory is an empty temporary folder."""
    for key in list(os.environ):
        if key.startswith("MONITOR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_clear_error(r: Result, exit_code: int, *fragments: str) -> None:
    """One zh-CN line starting with 错误： (plus at most an English hint), the exit code, no traceback."""
    assert r.exit_code == exit_code, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("错误：") and len(lines) <= 2 and "Traceback" not in r.output, r.output
    assert all(len(line) < 400 for line in lines), r.output
    for fragment in fragments:
        assert fragment in r.output, (fragment, r.output)


def principal_of(data_dir: Path, token: str) -> Principal | None:
    db = Database(Settings(data_dir=data_dir).sqlalchemy_url)
    try:
        with db.session() as s:
            return resolve_token(s, token)
    finally:
        db.dispose()


def test_cli_creates_tokens(cli_env: Path) -> None:
    assert run("migrate").exit_code == 0
    r = run("token", "create", "--role", "operator", "--name", "值班员")
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    assert token.startswith("mon_")
    assert principal_of(cli_env, token).role is Role.OPERATOR
    r = run("token", "create", "--role", "inspector", "--name", "x", "--region", "530100")
    assert r.exit_code == 0 and r.output.strip().startswith("mon_")
    assert principal_of(cli_env, r.output.strip()).region_codes == ("530100",)


def test_cli_token_refuses_when_no_database_is_there_and_creates_none(cli_env: Path) -> None:
    r = run("token", "create", "--role", "operator", "--name", "值班员")
    assert_clear_error(r, 2, "没有数据库", str(cli_env / "monitor.sqlite3"), "monitor migrate")
    assert not (cli_env / "monitor.sqlite3").exists()


def test_cli_token_points_at_the_demo_database_and_that_command_works(cli_env: Path) -> None:
    demo = cli_env / "demo"
    assert run("migrate", "--data-dir", str(demo)).exit_code == 0
    r = run("token", "create", "--role", "operator", "--name", "值班员")  # ./var, while the demo is in var/demo
    assert_clear_error(r, 2, "没有数据库", f"--data-dir {demo}")
    suggested = r.output.split("run  ", 1)[1].split("  (or:", 1)[0]
    args = shlex.split(suggested)
    assert args[:3] == [args[0], "token", "create"] and Path(args[0]).name == "monitor"
    r = run(*args[1:])
    assert r.exit_code == 0, r.output
    assert principal_of(demo, r.output.strip()).role is Role.OPERATOR
    assert not (cli_env / "monitor.sqlite3").exists()


def test_cli_data_dir_option_wins_over_the_environment(cli_env: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    assert run("migrate", "--data-dir", str(other)).exit_code == 0
    r = run("token", "create", "--data-dir", str(other), "--role", "admin", "--name", "管理员")
    assert r.exit_code == 0, r.output
    assert principal_of(other, r.output.strip()).role is Role.ADMIN
    assert not cli_env.exists()


def test_cli_helpers_for_the_demo_name_the_same_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "demo")
    command = token_command(settings)
    assert f"--data-dir {(tmp_path / 'demo').resolve()} --role operator --name 值班员" in command
    assert data_dir_exports(settings) == f"export MONITOR_DATA_DIR={(tmp_path / 'demo').resolve()}\n"


@pytest.mark.parametrize(("args", "fragments"), [
    (["--role", "site", "--name", "x"], ["--institution-id"]),
    (["--role", "site", "--name", "x", "--institution-id", "42"], ["培训机构 42", "没有", "登记"]),
    (["--role", "operator", "--name", "x", "--institution-id", "42"], ["只有培训机构"]),
    (["--role", "inspector", "--name", "x"], ["--region"]),
    (["--role", "inspector", "--name", "x", "--region", "999999"], ["未知的行政区划代码：999999", "530100"]),
    (["--role", "operator", "--name", "x", "--region", "530100"], ["只有抽查人员"]),
    (["--role", "operator", "--name", " "], ["--name"]),
    (["--role", "operator", "--name", "值班员\u200b"], ["--name", "不可见字符"]),  # reads as 值班员
])
def test_cli_token_mistakes_are_one_clear_line(cli_env: Path, args: list[str], fragments: list[str]) -> None:
    assert run("migrate").exit_code == 0
    assert_clear_error(run("token", "create", *args), 2, *fragments)


def test_cli_unreachable_database_and_bad_settings_are_one_clear_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("MONITOR_DATABASE_URL", f"postgresql://u:secret@127.0.0.1:{port}/db")
    r = run("token", "create", "--role", "operator", "--name", "x")
    assert_clear_error(r, 1, "无法连接数据库", f"127.0.0.1:{port}")
    assert "secret" not in r.output
    assert_clear_error(run("migrate"), 1, "无法连接数据库")
    monkeypatch.setenv("MONITOR_DATABASE_URL", "nosuchdb://x")
    assert_clear_error(run("migrate"), 2, "数据库地址无效")
    monkeypatch.delenv("MONITOR_DATABASE_URL")
    monkeypatch.setenv("MONITOR_PORT", "abc")
    assert_clear_error(run("migrate"), 2, "配置无效", "MONITOR_PORT")


def test_cli_commands_needing_redis_say_so(cli_env: Path) -> None:
    assert_clear_error(run("serve", "--no-worker"), 2, "MONITOR_REDIS_URL")
    assert_clear_error(run("worker"), 2, "MONITOR_REDIS_URL")


def test_cli_issues_a_one_time_sign_in_link_and_the_demo_signs_in_its_human_inspector(cli_env: Path) -> None:
    assert run("migrate").exit_code == 0
    db = Database(Settings(data_dir=cli_env).sqlalchemy_url)
    try:
        with db.session() as s:
            first = human_inspector_link(s, "http://127.0.0.1:8000")
        with db.session() as s:  # a kept database: the same person, on duty again, a new link
            second = human_inspector_link(s, "http://127.0.0.1:8000")
            staff = s.scalars(select(Staff).where(Staff.name == HUMAN_INSPECTOR[0])).all()
            assert len(staff) == 1 and first != second
            staff_id = staff[0].id
        r = run("token", "sign-in-link", "--staff-id", str(staff_id), "--minutes", "5")
        assert r.exit_code == 0, r.output
        link = r.stdout.strip().splitlines()[0]
        assert link.startswith("http://localhost:8000/inspector#signin=")
        with db.session() as s:
            token, person, _ = redeem_sign_in_link(s, link.split("signin=")[1], timedelta(hours=1))
            assert person.id == staff_id and resolve_token(s, token).staff_id == staff_id
        assert_clear_error(run("token", "sign-in-link", "--staff-id", "9999"), 2, "不存在")
    finally:
        db.dispose()


def test_two_revocations_at_once_make_one_on_both_databases(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Two admins revoking one token at the same moment: one revokes (one audit entry, one reason kept), the other
    is told it is already revoked, on SQLite as on PostgreSQL (the row is locked before it is read)."""
    import threading

    from models.errors import ApiError
    from monitor.adapters.tokens import issue_token, revoke_token

    for url in (f"sqlite:///{tmp_path / 'r.sqlite3'}", request.getfixturevalue("postgres_url")):
        db = Database(url)
        db.migrate()
        try:
            with db.session() as s:
                issue_token(s, Role.OPERATOR, "值班员")
                token_id = s.scalar(select(ApiToken.id))
            outcomes: list[str] = []
            gate = threading.Barrier(4)

            def revoke(reason: str, db: Database = db, token_id: int = token_id, gate: threading.Barrier = gate,
                       outcomes: list[str] = outcomes) -> None:
                gate.wait()
                try:
                    with db.session() as s:
                        revoke_token(s, token_id, reason)
                    outcomes.append("revoked")
                except ApiError as e:
                    outcomes.append(e.code)

            threads = [threading.Thread(target=revoke, args=(f"原因{n}",)) for n in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes) == ["TOKEN_ALREADY_REVOKED"] * 3 + ["revoked"], outcomes
            with db.session() as s:
                entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "api_tokens.update")).all()
            assert len(entries) == 1
        finally:
            db.dispose()


def test_a_site_reads_only_whether_the_center_answers(world: World) -> None:
    """Outside probe: /health told any token, a training site's included, the center's process id, disk sizes, the
    audit chain's state and evidence faults. A site's page needs only to know the center answers."""
    site = world.client.get("/api/v1/health", headers=auth(world.site))
    assert site.status_code == 200 and site.json()["status"] == "ok"
    assert {k for k, v in site.json().items() if v is not None} == {"status"}
    center = world.client.get("/api/v1/health", headers=auth(world.operator)).json()
    assert center["database"] and center["pid"] and center["storage"]["total_bytes"] > 0 and center["audit"]


def test_what_me_says_a_role_may_do_is_what_the_routes_admit(world: World) -> None:
    """The desk pages offer a control only when GET /api/v1/me lists its capability (no page keeps a list of roles):
    for each role, a route of each capability answers 403 exactly when /me leaves that capability out."""
    from tests.helpers import issue_token_via_api

    tokens = {"site": world.site, "operator": world.operator, "admin": world.admin,
              "auditor": issue_token_via_api(world.client, world.admin, "auditor", "审计员乙")}
    probes = {  # one route of each capability, on an id that does not exist (refused 403, else 404 or 409)
        "read_reports": lambda h: world.client.get(f"/api/v1/classes/{world.class_id}/ledger", headers=h),
        "decide_reviews": lambda h: world.client.post("/api/v1/reviews/999999/decision", headers=h,
                                                      json={"decision": "confirmed", "note": "核对无误"}),
        "mark_payable": lambda h: world.client.post("/api/v1/classes/999999/payment", headers=h, json={"note": ""}),
        "dispatch_alerts": lambda h: world.client.post("/api/v1/alerts/999999/dismiss", headers=h,
                                                       json={"note": "误报，已核实"}),
    }
    seen: dict[str, set[str]] = {}
    for role, token in tokens.items():
        me = world.client.get("/api/v1/me", headers=auth(token)).json()
        assert set(me["capability_roles"]) == set(probes), me
        seen[role] = set(me["may"])
        for capability, probe in probes.items():
            status = probe(auth(token)).status_code
            assert (status == 403) is (capability not in me["may"]), (role, capability, status)
    assert seen["admin"] == set(probes) and seen["site"] == set() and seen["auditor"] == {"read_reports"}
    assert seen["operator"] == {"read_reports", "decide_reviews", "dispatch_alerts"}

"""`monitor token sign-in-link` prints a link that opens the center actually running on the data directory (the port
`monitor serve` or `monitor demo` started on), not the default :8000 unless that is where it runs, and says on stderr
which address it used and how to change it (--base-url, MONITOR_PUBLIC_URL)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

import monitor.app
from models.tables import Staff
from monitor.adapters.storage import Database
from monitor.cli import data_dir_exports
from monitor.cli.demo import HUMAN_INSPECTOR, human_inspector_link
from monitor.settings import Settings
from tests.test_auth import assert_clear_error, cli_env, run  # noqa: F401 - cli_env: a clean MONITOR_* environment


def staff_member(data_dir: Path) -> int:
    """The demo's human inspector registered in the database at `data_dir`; their staff id."""
    settings = Settings(data_dir=data_dir)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)
    try:
        with db.session() as session:
            human_inspector_link(session, base_url="http://unused")
            return int(session.scalars(select(Staff.id).where(Staff.name == HUMAN_INSPECTOR[0])).one())
    finally:
        db.dispose()


def link(*args: str) -> tuple[str, str]:
    """The link printed (stdout) and what was said about it (stderr)."""
    r = run("token", "sign-in-link", *args)
    assert r.exit_code == 0, r.output
    [url] = r.stdout.strip().splitlines()
    return url, r.stderr


def test_the_link_follows_the_center_running_on_the_data_directory(cli_env: Path,  # noqa: F811
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    demo = cli_env / "demo"
    assert run("migrate", "--data-dir", str(demo)).exit_code == 0
    staff_id = staff_member(demo)

    # No center has run there yet: the default, said to be one, with how to change it.
    url, said = link("--staff-id", str(staff_id), "--data-dir", str(demo))
    assert url.startswith("http://localhost:8000/inspector#signin=")
    assert "http://localhost:8000" in said and "默认值" in said
    assert "--base-url" in said and "MONITOR_PUBLIC_URL" in said

    # `monitor serve --port 8123` on that directory (the server itself not started here): its own links and the
    # command line's, run later in another shell without MONITOR_PUBLIC_URL, point at port 8123.
    served: list[Settings] = []

    def fake_app(settings: Settings, run_worker: bool = True) -> Any:
        served.append(settings)
        return SimpleNamespace(state=SimpleNamespace(settings=settings))

    monkeypatch.setattr(monitor.app, "create_app", fake_app)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    r = run("serve", "--host", "0.0.0.0", "--port", "8123", "--data-dir", str(demo))
    assert r.exit_code == 0, r.output
    assert served[0].public_url == "http://localhost:8123"
    url, said = link("--staff-id", str(staff_id), "--data-dir", str(demo))
    assert url.startswith("http://localhost:8123/inspector#signin="), url
    assert "http://localhost:8123" in said and str(demo.resolve()) in said

    # MONITOR_PUBLIC_URL (what the demo's demo-env.sh exports) wins, and is named as the source.
    monkeypatch.setenv("MONITOR_PUBLIC_URL", "http://192.168.1.20:8123/")
    url, said = link("--staff-id", str(staff_id), "--data-dir", str(demo))
    assert url.startswith("http://192.168.1.20:8123/inspector#signin=") and "MONITOR_PUBLIC_URL" in said

    # --base-url wins over everything; one that is not an address is one clear line.
    url, said = link("--staff-id", str(staff_id), "--data-dir", str(demo), "--base-url", "https://jc.example.cn")
    assert url.startswith("https://jc.example.cn/inspector#signin=") and "--base-url" in said
    assert_clear_error(run("token", "sign-in-link", "--staff-id", str(staff_id), "--data-dir", str(demo),
                           "--base-url", "jc.example.cn"), 2, "--base-url")


def test_the_demo_env_file_exports_the_demo_address(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "demo")
    settings.public_url = "http://localhost:8765"  # as `monitor demo --port 8765` sets it
    assert "export MONITOR_PUBLIC_URL=http://localhost:8765\n" in data_dir_exports(settings)

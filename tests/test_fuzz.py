"""Schemathesis against the app's own OpenAPI schema, on SQLite and PostgreSQL: no request, valid or not, may
get a server error, and every answer must be what the schema says (status, content type, body)."""

from __future__ import annotations

import os
import re
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from models.domain import Role
from monitor.app import create_app
from monitor.settings import Settings
from tests.helpers import FACES_DIR, World, auth, face
from tests.test_scope_matrix import api_routes, declared_roles

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Bounded so that the suite stays within CI's time: examples per operation and database.
EXAMPLES = int(os.environ.get("MONITOR_FUZZ_EXAMPLES", "30"))
TRANSPORT_KEYS = {"method", "url", "headers", "params", "json", "data", "files", "content", "cookies"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]


@dataclass
class FuzzTarget:
    client: TestClient
    world: World
    roles: dict[tuple[str, str], tuple[Role, ...]]
    ids: dict[str, Any]

    def token_for(self, method: str, path: str) -> str:
        """A token of a role the operation admits, so that the fuzzer reaches its handler."""
        roles = self.roles.get((method.upper(), path), tuple(Role))
        w = self.world
        for role, token in ((Role.ADMIN, w.admin), (Role.OPERATOR, w.operator), (Role.SITE, w.site)):
            if not roles or role in roles:
                return token
        return w.admin


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    database_url, drop = "", None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        name = f"fuzz_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url = f"{server}/{name}"

        def drop() -> None:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    data = Path(tmp_path_factory.mktemp("fuzz"))
    app = create_app(Settings(data_dir=data, database_url=database_url, faces_dir=FACES_DIR, face_processes=0,
                              clock_rules=False, verdict_wait_seconds=0.5, relay_interval_seconds=0.5))
    with TestClient(app) as client:
        world = World.build(client)
        checkin = world.checkin(face("people/obama/obama2.jpg")).json()
        online = client.post("/api/v1/online/sessions", headers=auth(world.site),
                             json={"class_id": world.class_id, "trainee_id": world.obama_id}).json()
        ids = {"class_id": world.class_id, "trainee_id": world.obama_id, "teacher_id": world.ids["teachers"][0],
               "institution_id": world.ids["institution"], "checkin_id": checkin["id"],
               "snapshot_id": world.snapshot(face("groups/two_people.jpg")).json()["id"],
               "session_id": online["id"], "sha256": checkin["photo_sha256"]}
        roles = {}
        for route in api_routes(client):
            for method in route.methods:
                roles[(method, route.path)] = declared_roles(route) or ()
        yield FuzzTarget(client, world, roles, ids)
    if drop:
        drop()


def as_httpx_files(files: Any) -> list[tuple[str, Any]]:
    """The requests-style multipart parts schemathesis makes, in the shape httpx takes (text parts as strings)."""
    items = files.items() if isinstance(files, dict) else files
    parts = []
    for name, value in items:
        if isinstance(value, tuple):
            filename, content, *rest = value
            content = content if isinstance(content, (bytes, str)) else str(content)
            parts.append((name, (filename, content, *rest)))
        else:
            parts.append((name, (None, value if isinstance(value, (bytes, str)) else str(value))))
    return parts


def fuzz_operation(target: FuzzTarget, operation: Any, mode: GenerationMode,
                   path_parameters: dict[str, Any] | None = None) -> str | None:
    """Up to EXAMPLES generated requests for one operation; the first failure (shrunk), or None."""
    failure: list[str] = []
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        token = target.token_for(case.method, case.path)
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers={"Authorization": f"Bearer {token}"})
        request = {k: v for k, v in kwargs.items() if k in TRANSPORT_KEYS and v is not None and v != {}}
        if request.get("files") is not None:
            request["files"] = as_httpx_files(request["files"])
        response = target.client.request(**request)
        response.request.read()  # multipart bodies are streams: the checks read what was sent
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing to make invalid: the operation takes no parameters and no body
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: one report for every operation
        where = "" if isinstance(exc, BaseExceptionGroup) else traceback.format_exc(limit=-3)
        failure.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}\n{where}"[:3000])
    return failure[0] if failure else None


def test_api_answers_every_request_as_its_schema_says(fuzz_target: FuzzTarget) -> None:
    api = schemathesis.openapi.from_dict(fuzz_target.client.get("/openapi.json").json())
    api.config.generation.update(allow_x00=True)
    failures, operations = [], 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if (problem := fuzz_operation(fuzz_target, operation, mode)) is not None:
                failures.append(problem)
        names = set(re.findall(r"\{(\w+)\}", operation.path))
        if names and names <= set(fuzz_target.ids):  # again, aimed at objects that exist, to reach the handler
            fixed = {n: fuzz_target.ids[n] for n in names}
            if (problem := fuzz_operation(fuzz_target, operation, GenerationMode.POSITIVE, fixed)) is not None:
                failures.append(f"{problem} (path {fixed})")
    assert operations >= 40
    assert not failures, "\n\n".join(failures)

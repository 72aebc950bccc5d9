"""The OpenAPI schema documents every answer: each JSON success has a declared model (no free-form object), files
stay files, errors stay ErrorBody; and a declared model drops no field a route emits (verdicts before and after
verification keep exactly their keys)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.app import create_app
from monitor.settings import Settings
from tests.helpers import FACES_DIR, World, auth, face

FILE_TYPES = ("image/", "text/csv", "application/vnd.openxmlformats-officedocument")
SCALARS = {"string", "integer", "number", "boolean"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi") / "data", faces_dir=FACES_DIR, face_processes=0,
                        clock_rules=False)
    return create_app(settings, run_worker=False).openapi()


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/components/schemas/"), ref
    found: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def typed(schema: dict[str, Any], node: dict[str, Any]) -> bool:
    """A schema that says what comes back: a model with properties, a list of such, or a scalar type."""
    node = resolve(schema, node)
    if "anyOf" in node or "oneOf" in node:
        return all(typed(schema, n) for n in node.get("anyOf", node.get("oneOf", [])))
    kind = node.get("type")
    if kind == "array":
        return typed(schema, node.get("items", {}))
    if kind == "object":
        return bool(node.get("properties"))
    return kind in SCALARS or kind == "null"


def test_every_json_success_has_a_declared_model(schema: dict[str, Any]) -> None:
    loose = []
    for name, operation in operations(schema):
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                if status.startswith("2") and "json" in media_type and not typed(schema, content.get("schema", {})):
                    loose.append(f"{name} {status}: {content.get('schema')}")
    assert not loose, "JSON answers without a declared model:\n" + "\n".join(loose)


def test_every_success_documents_its_body(schema: dict[str, Any]) -> None:
    """Uploads answer 200, 201 or 202 with the same body: each status shows it."""
    bare = [f"{name} {status}" for name, operation in operations(schema)
            for status, response in operation["responses"].items()
            if status.startswith("2") and status != "204" and not response.get("content")]
    assert not bare, f"successes without a documented body: {bare}"
    for path in ("/api/v1/check-ins", "/api/v1/snapshots"):
        responses = schema["paths"][path]["post"]["responses"]
        refs = {responses[s]["content"]["application/json"]["schema"]["$ref"] for s in ("200", "201", "202")}
        assert len(refs) == 1, refs


def test_files_stay_files_and_errors_stay_error_bodies(schema: dict[str, Any]) -> None:
    files = 0
    for name, operation in operations(schema):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if status.startswith("2") and any(m.startswith(FILE_TYPES) for m in content):
                files += 1
                assert all(c["schema"] == {"type": "string", "format": "binary"} for c in content.values()), name
                assert not any("json" in m for m in content), name
            if int(status) >= 400:
                assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}, (
                    name, status)
    assert files >= 5  # the evidence photo, the ledger and the daily report as Excel and CSV


def test_free_form_fields_are_only_rule_figures(schema: dict[str, Any]) -> None:
    """Inside the response models, only measured values, thresholds, evidence and submitted geometry are open
    dictionaries; everything else is typed."""
    free_form = {"measured", "thresholds", "evidence", "original"}
    responses = {name for name in schema["components"]["schemas"] if name.endswith("Out")}
    assert {"ClassOut", "CheckInVerdictOut", "LedgerOut", "OverviewOut", "EnrolmentOut"} <= responses
    loose = []
    for name in sorted(responses):
        for field, node in schema["components"]["schemas"][name].get("properties", {}).items():
            if field not in free_form and node.get("type") == "object" and not node.get("properties") \
                    and node.get("additionalProperties") in (None, True, {}):
                loose.append(f"{name}.{field}")
    assert not loose, f"untyped fields: {loose}"


def wait_verified(client: TestClient, url: str, token: str) -> dict[str, Any]:
    for _ in range(200):
        body: dict[str, Any] = client.get(url, headers=auth(token)).json()
        if body["status"] != "pending":
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} still pending")


PENDING_KEYS = ["id", "status", "status_url", "photo_sha256", "reasons"]
VERIFIED_KEYS = ["notes", "verification_id", "face_distance", "face_engine", "face_model_sha256", "face_threshold",
                 "face_mismatch_threshold",
                 "fence_result", "message"]


def test_verdicts_keep_exactly_their_keys(client_factory: Callable[..., TestClient]) -> None:
    """A pending verdict has no verification fields (not even as null); a verified one has them all."""
    client = client_factory(verdict_wait_seconds=0)
    world = World.build(client)
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 202
    assert list(r.json()) == [*PENDING_KEYS, "kind", "message", "duplicate"]
    verified = wait_verified(client, r.json()["status_url"], world.site)
    assert list(verified) == [*PENDING_KEYS, "kind", *VERIFIED_KEYS]
    assert verified["status"] == "passed" and verified["fence_result"] == "inside"
    assert verified["face_engine"] == "faceplugin-arcface" and verified["face_threshold"] == 0.60
    assert verified["face_model_sha256"] == "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"
    s = world.snapshot(face("groups/two_people.jpg"))
    assert s.status_code == 202
    assert list(s.json()) == [*PENDING_KEYS, "message", "duplicate"]
    verified = wait_verified(client, s.json()["status_url"], world.site)
    assert list(verified) == [*PENDING_KEYS, *VERIFIED_KEYS]
    assert verified["face_distance"] is None and verified["fence_result"] is None

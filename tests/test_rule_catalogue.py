"""The rule catalogue is written once (models/terms.py) and served to the pages, which copy none of it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from models.domain import AnomalyCode, Severity
from models.terms import RULE_CATALOGUE

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"


def test_every_rule_is_served_with_its_chinese_name_without_a_token(client: TestClient) -> None:
    r = client.get("/public/rules.json")
    assert r.status_code == 200
    body = r.json()
    served = {rule["code"]: rule for rule in body["rules"]}
    assert set(served) == {code.value for code in AnomalyCode}
    assert served["PROXY_SIGNIN"]["name"] == "疑似代签" and served["PROXY_SIGNIN"]["clauses"] == "八"
    assert body["severities"] == {"high": "高", "medium": "中", "low": "低"}
    assert set(body["severities"]) == {s.value for s in Severity}


def test_no_page_script_copies_a_rule_name() -> None:
    scripts = {str(path.relative_to(STATIC)): path.read_text(encoding="utf-8") for path in STATIC.rglob("*.js")
               if "vendor" not in path.parts}  # the pages' modules in subfolders too
    copied = [(name, label) for name, text in scripts.items() for label, _ in RULE_CATALOGUE.values() if label in text]
    assert copied == []

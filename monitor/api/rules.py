"""The rule catalogue (codes, zh-CN names, clauses, severities), served publicly to the pages, never copied."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from models.domain import Severity
from models.scope import public_route
from models.terms import RULE_CATALOGUE, SEVERITY_LABELS

router = APIRouter(tags=["public"])


class RuleOut(BaseModel):
    code: str
    name: str  # zh-CN
    clauses: str  # the notice's clauses the rule enforces, e.g. "七、十四"


class RuleCatalogueOut(BaseModel):
    rules: list[RuleOut]
    severities: dict[Severity, str]  # severity → zh-CN name


@router.get("/public/rules.json", response_model=RuleCatalogueOut, summary="规则目录（规则代码、中文名称、政策条款）",
            dependencies=[public_route()])
def list_rules() -> RuleCatalogueOut:
    """Every anomaly rule with its zh-CN name and clauses; public, as the rules themselves are (双随机一公开)."""
    return RuleCatalogueOut(
        rules=[RuleOut(code=code.value, name=name, clauses=clauses)
               for code, (name, clauses) in RULE_CATALOGUE.items()],
        severities=dict(SEVERITY_LABELS))

"""The catalogue the pages show (rule codes, zh-CN names, clauses, severities, dispatch terms), served publicly."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from models.domain import Severity
from models.scope import public_route
from models.terms import RULE_CATALOGUE, SEVERITY_LABELS
from monitor.decisions.alert_lifecycle import ACTION_NAMES, OUTCOME_NAMES, PAGE_STATE_NAMES, STATE_NAMES
from monitor.decisions.dispatch import LEVEL_NAMES
from monitor.decisions.inspection_form import CHECKLIST, RESULTS

router = APIRouter(tags=["public"])


class RuleOut(BaseModel):
    code: str
    name: str  # zh-CN
    clauses: str  # the notice's clauses the rule enforces, e.g. "七、十四"


class DispatchTermsOut(BaseModel):
    """The zh-CN names of the dispatch wing's states and steps."""

    states: dict[str, str]
    actions: dict[str, str]
    outcomes: dict[str, str]
    page_states: dict[str, str]
    levels: dict[str, str]
    checklist: dict[str, str]  # the inspection form's items (clause 十四), in the form's order: key → zh-CN label
    results: dict[str, str]  # an item's result: ok / problem / not_checked → zh-CN name


class RuleCatalogueOut(BaseModel):
    rules: list[RuleOut]
    severities: dict[Severity, str]  # severity → zh-CN name
    dispatch: DispatchTermsOut


@router.get("/public/rules.json", response_model=RuleCatalogueOut, summary="规则目录（规则代码、中文名称、政策条款）",
            dependencies=[public_route()])
def list_rules() -> RuleCatalogueOut:
    """Every anomaly rule with its zh-CN name and clauses; public, as the rules themselves are (双随机一公开)."""
    return RuleCatalogueOut(
        rules=[RuleOut(code=code.value, name=name, clauses=clauses)
               for code, (name, clauses) in RULE_CATALOGUE.items()],
        severities=dict(SEVERITY_LABELS),
        dispatch=DispatchTermsOut(
            states={k.value: v for k, v in STATE_NAMES.items()}, actions={k.value: v for k, v in ACTION_NAMES.items()},
            outcomes={k.value: v for k, v in OUTCOME_NAMES.items()}, page_states=dict(PAGE_STATE_NAMES),
            levels={k.value: v for k, v in LEVEL_NAMES.items()}, checklist=dict(CHECKLIST), results=dict(RESULTS)))

"""HTTP routes of the center (one module per resource) and the HTTP plumbing they share."""

from fastapi import APIRouter

from monitor.api import (
    alerts,
    audit,
    blacklist,
    cameras,
    classes,
    crosschecks,
    dispatch,
    draws,
    enrolment,
    evidence,
    health,
    inspections,
    institutions,
    metrics,
    objections,
    occupations,
    overview,
    people,
    phone_checks,
    regions,
    registers,
    reports,
    reviews,
    rules,
    staff,
    tokens,
    venues,
    verify,
)

ROUTERS: list[APIRouter] = [
    regions.router, institutions.router, venues.router, occupations.router, people.router, enrolment.router,
    classes.router, tokens.router, overview.router, alerts.router, dispatch.router, staff.router, staff.auth_router,
    phone_checks.router,
    inspections.router, draws.router, draws.public, reviews.router, evidence.router, reports.router, reports.public,
    rules.router, audit.router, audit.public, blacklist.router, health.router, verify.router, cameras.router,
    registers.router, crosschecks.router, metrics.router, objections.router,
]

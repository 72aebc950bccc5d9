"""What the edge needs from the composition root (the database, the evidence store, the bus, the limits), as
one object the routes receive by dependency: the edge never imports the center."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ingest.adapters.evidence import EvidenceStore
from ingest.checks.limits import RateLimits


class SessionSource(Protocol):
    def session(self) -> AbstractContextManager[Session]: ...

    def connection(self) -> AbstractContextManager[Connection]: ...

    def writing(self) -> AbstractContextManager[Connection]: ...


@dataclass(frozen=True)
class UploadLimits:
    max_pixels: int
    challenge_ttl_s: float
    max_future_skew_s: float
    max_capture_age_s: float
    max_accuracy_m: float
    verdict_wait_s: float
    challenge_limits: RateLimits
    online_limits: RateLimits


@dataclass
class IngestContext:
    """What the ingest edge needs from the composition root (it never imports the monitor)."""

    db: SessionSource
    evidence: EvidenceStore
    limits: UploadLimits
    publish: Callable[[str, dict[str, Any]], None]
    wait_for_verdict: Callable[[str, int, float], Awaitable[None]]


async def ingest_context(request: Request) -> IngestContext:
    """The edge's context, put on the app by the composition root (async: FastAPI runs a plain function on a
    worker thread, a hop that cost more than the lookup)."""
    context: IngestContext = request.app.state.ingest
    return context


Ingest = Annotated[IngestContext, Depends(ingest_context)]

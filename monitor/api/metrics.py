"""GET /metrics in the Prometheus text format (prometheus-client), for the center's monitoring: scraped with a bearer
token of an operator, admin or auditor (Prometheus `authorization` in its scrape config)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from models.clock import utc_now
from models.domain import Role
from models.scope import Scope, access
from monitor.api.deps import Db, SettingsDep
from monitor.services.evidence_health import storage_state
from monitor.services.metrics import Figures, histogram, read_figures

router = APIRouter(tags=["ops"])


class Snapshot(Collector):
    """One scrape's figures as metric families (a fresh registry per scrape: nothing kept between them)."""

    def __init__(self, figures: Figures, live_clients: int, free_bytes: int, low_below_bytes: int) -> None:
        self.f, self.live_clients, self.free_bytes, self.low_below = figures, live_clients, free_bytes, low_below_bytes

    def collect(self):  # type: ignore[no-untyped-def]
        uploads = GaugeMetricFamily("monitor_uploads_today", "Uploads received today (local day) by kind and status",
                                    labels=["kind", "status"])
        for (kind, status), n in sorted(self.f.uploads.items()):
            uploads.add_metric([kind, status], n)
        yield uploads
        yield GaugeMetricFamily("monitor_queue_lag_seconds", "Age of the oldest upload still awaiting its verdict",
                                value=self.f.oldest_pending_s)
        yield GaugeMetricFamily("monitor_outbox_unprocessed", "Outbox messages no worker has processed yet",
                                value=self.f.outbox_unprocessed)
        yield CounterMetricFamily("monitor_relay_resends", "Outbox messages published again (today and pending)",
                                  value=self.f.relay_resends)
        yield CounterMetricFamily("monitor_handler_failures", "Times a worker's handler raised (today and pending); "
                                  "an upload failing repeatedly ends as VERIFICATION_FAILED",
                                  value=self.f.handler_failures)
        buckets, total = histogram(self.f.latencies_s)
        yield HistogramMetricFamily("monitor_verification_seconds", "Upload to verdict, check-ins of the last 5 "
                                    "minutes", buckets=buckets, sum_value=total)
        alerts = GaugeMetricFamily("monitor_alerts_active", "Active alerts by rule and state", labels=["rule", "state"])
        for (rule, state), n in sorted(self.f.alerts.items()):
            alerts.add_metric([rule, state], n)
        yield alerts
        yield GaugeMetricFamily("monitor_live_clients", "Live-feed connections to this process",
                                value=self.live_clients)
        yield GaugeMetricFamily("monitor_evidence_free_bytes", "Free space on the evidence filesystem",
                                value=self.free_bytes)
        yield GaugeMetricFamily("monitor_evidence_low_below_bytes", "STORAGE_LOW threshold", value=self.low_below)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (text format)",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                             "description": "the metrics"}})
def metrics(scope: Annotated[Scope, access(Role.OPERATOR, Role.ADMIN, Role.AUDITOR)], db: Db, settings: SettingsDep,
            request: Request) -> Response:
    with db.session() as session:
        figures = read_figures(session, utc_now())
    storage = storage_state(settings.evidence_dir, settings.storage_low_free_mb * 2**20)
    hub = getattr(request.app.state, "hub", None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(figures, int(getattr(hub, "clients", 0) or 0), storage.free_bytes,
                               storage.low_below_bytes))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

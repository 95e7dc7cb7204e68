"""The ``/metrics`` view: the service's catalogue plus faust's own sensors.

faust-streaming ships a Prometheus monitor (``faust.sensors.prometheus``):
``setup_prometheus_sensors`` would register it on prometheus-client's global
registry and add its own ``/metrics`` page. We reuse its two halves instead —
:class:`FaustMetrics` created on *our* registry under the ``invite_faust``
prefix and :class:`PrometheusMonitor` as ``app.monitor`` — so one endpoint
serves everything and nothing touches the global registry. Among faust's
series: events per stream, commit latency (``invite_faust_consumer_commit_latency``,
ms), send latency, rebalances, end and committed offsets per partition.
"""

from __future__ import annotations

import weakref

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from adapters.metrics import Metrics, default, sample_names

FAUST_PREFIX = "invite_faust"

# One FaustMetrics per catalogue: a second app in the same process (tests)
# shares the series instead of failing on duplicate names in the registry.
_faust_metrics: weakref.WeakKeyDictionary[Metrics, FaustMetrics] = weakref.WeakKeyDictionary()


def faust_metrics(metrics: Metrics) -> FaustMetrics:
    """faust's sensor metrics on ``metrics``' registry (created once)."""
    found = _faust_metrics.get(metrics)
    if found is None:
        found = _faust_metrics[metrics] = FaustMetrics.create(metrics.registry, FAUST_PREFIX)
    return found


def faust_sample_names() -> set[str]:
    """The sample names faust's sensors expose (for checking dashboards and alerts)."""
    scratch = CollectorRegistry()
    FaustMetrics.create(scratch, FAUST_PREFIX)
    return sample_names(scratch.collect())


def register(app: faust.App, metrics: Metrics | None = None, *, faust_sensors: bool = True) -> Metrics:
    """Serve ``metrics`` (default: the process catalogue) at ``/metrics``.

    With ``faust_sensors`` the app's monitor becomes faust's Prometheus
    monitor on the same registry. Call it while building the app, before the
    worker starts: faust adds ``app.monitor`` to its sensors at start-up.
    """
    catalogue = metrics if metrics is not None else default()
    if faust_sensors:
        app.monitor = PrometheusMonitor(metrics=faust_metrics(catalogue))

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus scrape endpoint."""

        async def get(self, request: Request) -> Response:
            body, content_type = catalogue.render(request.headers.get("Accept"))
            # aiohttp refuses a charset inside content_type=, so pass it as a header.
            return self.bytes(body, headers={"Content-Type": content_type})

    return catalogue

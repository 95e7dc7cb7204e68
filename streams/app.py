"""Building the Faust app: settings in, app with every agent, table and view out."""

from __future__ import annotations

import faust

from models.settings import Settings

from . import maintenance, reconciler, transport
from .agents import accounts, importer, results, tasks
from .routing import Router
from .runtime import Runtime
from .topics import declare_topics, topic_partitions
from .web import api, console, imports, suppression
from .web import metrics as web_metrics

TABLES = [accounts.LIMITS_TABLE, accounts.INFLIGHT_TABLE, results.STATS_TABLE]


def build_app(settings: Settings) -> tuple[faust.App, Runtime]:
    """The app and the runtime service that must start before it (pass both to a Worker)."""
    assert settings.kafka_broker, "kafka_broker must be resolved before building the app"
    transport.install(settings.consumer_fetch_max_wait_ms)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_broker.split(",")],
        store="memory://",
        autodiscover=False,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        broker_commit_interval=settings.broker_commit_interval,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_in_thread=False,
        Router=Router,
    )
    topics = declare_topics(app, settings)
    rt = Runtime(settings, topic_partitions(settings, TABLES))
    tasks.register(app, topics, rt)
    importer.register(app, topics, rt)
    accounts.register(app, topics, rt)
    stats = results.register(app, topics, rt)
    reconciler.register(app, topics, rt)
    maintenance.register(app, rt, stats)
    api.register(app, topics, rt, stats)
    web_metrics.register(app)
    imports.register(app, topics, rt)
    suppression.register(app, topics, rt)
    console.register(app)  # the stats page and campaign console at "/"
    return app, rt

"""The REST API under ``/api/v1``: one entry point that wires every resource's routes.

Commands publish events and answer 202 with the state they lead to; reads
come from PostgreSQL and, for live statistics, the ``task-stats`` table.
Every read and command is scoped to the token's owner: another user's task
is a 404, never a 403. Resources live in their own modules (tasks, targets,
execution, stats, accounts, health); the OpenAPI document is built from the
same route table they register into.
"""

from __future__ import annotations

import faust
from faust.web import ResourceOptions

from models.api import ApiSettings

from ..runtime import Runtime
from ..topics import Topics
from . import accounts, execution, health, openapi, stats, targets, tasks
from .auth import Authenticator
from .context import Api
from .errors import error_middleware
from .routes import Routes

# Browsers may read these answer headers (rate limits, export file names).
_EXPOSED = ("Retry-After", "Content-Disposition")


def register(app: faust.App, topics: Topics, rt: Runtime, stats_table: faust.Table) -> Api:
    settings = ApiSettings()
    api = Api(app=app, topics=topics, rt=rt, stats=stats_table, settings=settings, routes=Routes(),
              auth=Authenticator(rt.settings))
    # Order matters only among paths that could match the same URL: fixed
    # segments ("bulk", "stats") before the {id} that would swallow them.
    health.register(api)
    tasks.register(api)
    targets.register(api)
    execution.register(api)
    stats.register(api)
    accounts.register(api)
    openapi.register(api.routes)
    cors = {
        origin: ResourceOptions(allow_credentials=True, expose_headers=_EXPOSED,
                                allow_headers=("Authorization", "Content-Type"), max_age=600,
                                allow_methods=("GET", "POST", "PUT", "DELETE"))
        for origin in settings.cors_allow_origins
    }
    api.routes.install(app, cors)
    app.web.web_app.middlewares.append(error_middleware)
    return api

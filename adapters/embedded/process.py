"""Child-process plumbing for the embedded services.

`ManagedProcess` starts one server binary, waits until it really serves, and
stops it again. Every child asks the kernel (``PR_SET_PDEATHSIG``) to signal it
when we die, so even a SIGKILLed CLI or test run leaves no orphan servers.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "EmbeddedStartError",
    "ManagedProcess",
    "ProcessDiedError",
    "free_port",
    "start_on_port",
    "wait_for_port",
]

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 4000

# Loaded in the parent: the preexec hook runs between fork and exec, where
# loading a library (malloc, locks) is unsafe.
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# The kernel sends the parent-death signal when the *thread* that forked the
# child exits, not the process. Children forked from a short-lived worker
# thread (asyncio.to_thread, a pool) would be killed when that thread ends, so
# off the main thread we fork from one thread that lives as long as we do.
_spawner: concurrent.futures.ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


class EmbeddedStartError(RuntimeError):
    """An embedded service did not become ready; the message has its log tail."""


class ProcessDiedError(EmbeddedStartError):
    """The process exited while starting (bad config, port taken, ...)."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now (a later bind may still race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _death_signal_hook(sig: signal.Signals, parent_pid: int) -> Callable[[], None]:
    def hook() -> None:
        # Runs after Popen's setuid (it would clear the setting otherwise).
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would
        # ever send the signal.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), int(sig))

    return hook


def _spawn(popen: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    global _spawner
    if threading.current_thread() is threading.main_thread():
        return popen()
    with _spawner_lock:
        if _spawner is None:
            _spawner = concurrent.futures.ThreadPoolExecutor(1, "embedded-spawner")
    return _spawner.submit(popen).result()


class ManagedProcess:
    """One server binary that we own: start it, prove it serves, stop it.

    ``ready`` is an extra check run once the port accepts (a real protocol
    request); it may return False or raise while the server is warming up.
    ``stop_signal`` is also the signal the child receives if we die.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        port: int,
        log_path: Path,
        host: str = "127.0.0.1",
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.host = host
        self.port = port
        self.log_path = log_path
        self._ready = ready
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._user = user
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> Self:
        """Start the process and block until it serves, or raise with its log."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        hook = _death_signal_hook(self._stop_signal, os.getpid())
        with open(self.log_path, "wb") as log:
            self._popen = _spawn(
                lambda: subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    cwd=self._cwd,
                    user=self._user,
                    group=None if self._user is None else _primary_group(self._user),
                    extra_groups=None if self._user is None else [],
                    preexec_fn=hook,
                    # Own process group: Ctrl-C in the terminal must reach
                    # only us, so the app shuts down while its broker and
                    # database still serve; we stop them afterwards.
                    start_new_session=True,
                )
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._popen is not None
        deadline = time.monotonic() + self._start_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            code = self._popen.poll()
            if code is not None:
                raise ProcessDiedError(self._describe(f"exited with code {code} while starting"))
            if wait_for_port(self.host, self.port):
                try:
                    if self._ready is None or self._ready():
                        return
                except Exception as exc:  # a warming-up server fails in many ways
                    last_error = exc
            time.sleep(0.05)
        detail = f"; last readiness error: {last_error!r}" if last_error else ""
        raise EmbeddedStartError(
            self._describe(f"not ready on {self.host}:{self.port} after {self._start_timeout:.0f}s{detail}")
        )

    def stop(self) -> None:
        """Signal the process, then SIGKILL it if it outlives the grace period."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            try:
                popen.send_signal(self._stop_signal)
                popen.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        self._popen = None

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        """The end of the process log, for error messages."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - max_bytes))
                return log.read().decode(errors="replace")
        except OSError as exc:
            return f"<log unreadable: {exc}>"

    def _describe(self, problem: str) -> str:
        return (
            f"embedded {self.name} {problem}\n"
            f"command: {' '.join(self.argv)}\n"
            f"log ({self.log_path}), last lines:\n{self.log_tail()}"
        )

    def __enter__(self) -> Self:
        return self if self._popen is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, port={self.port})"


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def start_on_port(
    build: Callable[[int], ManagedProcess], port: int | None, attempts: int = 3
) -> ManagedProcess:
    """Start ``build(port)``; if we picked the port ourselves, retry on a new
    one when the process dies at start (someone may have taken the port
    between `free_port` and the server's bind)."""
    if port is not None:
        return build(port).start()
    for attempt in range(attempts):
        try:
            return build(free_port()).start()
        except ProcessDiedError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")

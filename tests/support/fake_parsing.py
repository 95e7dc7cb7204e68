"""A fake Parsing Service: the results API of ``adapters/parsing-service.openapi.yaml`` over real HTTP.

It serves what the contract says and nothing more:

* ``GET /v1/parsing-tasks/{id}`` → ``{"id", "status", "results_count"}``;
* ``GET /v1/parsing-tasks/{id}/results?cursor=&limit=`` → ``{"items", "next_cursor"}``,
  409 while the task has not completed, 400 for a cursor it never issued;
* 404 ``{"error": {...}}`` for an unknown task, 401 without the bearer token.

Tests add tasks (items as a list, or a function of the index for big ones),
make the next requests fail (``fail_next``: 503 with ``Retry-After``, 500, or
a dropped connection), hold a page until they let it go (``hold``: progress
can then be watched mid-import without timing guesses) and read what was
asked of it (``requests``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

Item = dict[str, Any]


@dataclass
class FakeTask:
    status: str
    count: int
    item: Callable[[int], Item]


@dataclass
class Failure:
    """What the next matching requests get instead of an answer."""

    status: int  # 0 = close the connection without answering
    retry_after: int | None = None
    path_contains: str = ""


@dataclass
class Request:
    path: str
    query: dict[str, str]
    status: int


@dataclass
class _State:
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    gates: dict[str, threading.Event] = field(default_factory=dict)  # cursor -> released
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeParsingService:
    """A Parsing Service on a free loopback port, in a thread."""

    def __init__(self, token: str = "parsing-test-token", max_limit: int = 5000) -> None:
        self.token = token
        self.max_limit = max_limit
        self._state = _State()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-parsing",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls ----------------------------------------------------------------------------

    def add_task(self, task_id: str, items: list[Item] | None = None, *, status: str = "completed",
                 count: int | None = None, item: Callable[[int], Item] | None = None) -> None:
        if items is not None:
            fixed = list(items)
            self._state.tasks[task_id] = FakeTask(status, len(fixed), fixed.__getitem__)
        else:
            assert count is not None and item is not None
            self._state.tasks[task_id] = FakeTask(status, count, item)

    def set_status(self, task_id: str, status: str) -> None:
        self._state.tasks[task_id].status = status

    def fail_next(self, n: int, status: int = 503, *, retry_after: int | None = None, path_contains: str = "") -> None:
        with self._state.lock:
            self._state.failures += [Failure(status, retry_after, path_contains) for _ in range(n)]

    def hold(self, cursor: str) -> threading.Event:
        """Keep the request for the page at ``cursor`` waiting until the returned event is set."""
        gate = self._state.gates[cursor] = threading.Event()
        return gate

    @property
    def requests(self) -> list[Request]:
        with self._state.lock:
            return list(self._state.requests)

    # --- request handling (the server's threads) -----------------------------------------------------

    def handle(self, path: str, query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._state.lock:
            failure = next((f for f in self._state.failures if f.path_contains in path), None)
            if failure is not None:
                self._state.failures.remove(failure)
        gate = self._state.gates.get(query.get("cursor", ""))
        if gate is not None and path.endswith("/results"):
            gate.wait(60)
        if failure is not None:
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, _error("unavailable", "try again later"), extra
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, _error("unauthorized", "missing or wrong bearer token"), {}
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 3 or parts[:2] != ["v1", "parsing-tasks"] or len(parts) > 4:
            return 404, _error("not_found", "no such path"), {}
        task = self._state.tasks.get(parts[2])
        if task is None:
            return 404, _error("not_found", f"no parsing task {parts[2]!r}"), {}
        if len(parts) == 3:
            return 200, {"id": parts[2], "status": task.status,
                         "results_count": task.count if task.status == "completed" else None}, {}
        if parts[3] != "results":
            return 404, _error("not_found", "no such path"), {}
        if task.status != "completed":
            return 409, _error("not_completed", f"the task is {task.status}"), {}
        try:
            limit = int(query.get("limit", "1000"))
            start = _offset(query.get("cursor"))
        except ValueError:
            return 400, _error("bad_request", "bad limit or cursor"), {}
        if not 1 <= limit <= self.max_limit or start > task.count:
            return 400, _error("bad_request", "bad limit or cursor"), {}
        end = min(task.count, start + limit)
        items = [task.item(i) for i in range(start, end)]
        return 200, {"items": items, "next_cursor": f"after-{end}" if end < task.count else None}, {}

    def record(self, path: str, query: dict[str, str], status: int) -> None:
        with self._state.lock:
            self._state.requests.append(Request(path, query, status))


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.startswith("after-"):
        raise ValueError(cursor)
    return int(cursor.removeprefix("after-"))


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler_for(fake: FakeParsingService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            status, body, extra = fake.handle(url.path, query, {k.lower(): v for k, v in self.headers.items()})
            fake.record(url.path, query, status)
            if status == 0:
                self.close_connection = True
                self.connection.shutdown(2)  # drop the connection without an answer
                return
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

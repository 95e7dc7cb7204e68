"""``invite-service import FILE --task ID``: upload an audience file to a running service and follow it.

It talks to the service's HTTP API (``POST /api/v1/import/file``, then
``GET /api/v1/imports/{id}``) with an API token, rather than publishing to
Kafka itself, because that is the one path that checks the token's owner
against the task, runs the full validation pass before anything is
published, records the import for the API and the stats page, and needs
nothing but a URL and a token (no broker or database credentials on an
operator's laptop; it also works through the gateway). The upload streams
from disk, so the file's size does not matter here either.

Exit status: 0 when the import completed, 1 when the service refused the
file or the import failed (the message names the row and the reason), 2 for
usage errors.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8002"
_TERMINAL = frozenset({"completed", "failed", "interrupted"})
_CONTENT_TYPES = {".csv": "text/csv", ".tsv": "text/tab-separated-values", ".txt": "text/plain",
                  ".json": "application/json", ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson",
                  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class _Counted(io.RawIOBase):
    """A file whose reads advance a progress bar (httpx reads the upload in chunks)."""

    def __init__(self, file: IO[bytes], bar: Any) -> None:
        self._file = file
        self._bar = bar

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._bar.update(len(data))
        return data


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:500]}"
    details = error.get("details")
    extra = f"\n  details: {json.dumps(details, ensure_ascii=False)}" if details else ""
    return f"{error.get('message')} ({error.get('code')}, HTTP {response.status_code}){extra}"


def _print_report(report: dict[str, Any] | None, title: str) -> None:
    if not report:
        return
    click.echo(f"{title}: {report['rows']} rows — {report['accepted']} accepted, {report['rejected']} rejected,"
               f" {report['duplicate']} duplicate, {report['suppressed']} suppressed")
    mapping = report.get("mapping") or {}
    if mapping.get("fields"):
        click.echo("  columns: " + ", ".join(f"{field} ← {column!r}" for field, column in mapping["fields"].items()))
    for problem in report.get("problems", []):
        column = f" [{problem['column']}]" if problem.get("column") else ""
        click.echo(f"  row {problem['row']}{column}: {problem['reason']}")
    if report["rejected"] > len(report.get("problems", [])):
        click.echo(f"  ... and {report['rejected'] - len(report['problems'])} more rejected rows")


def _follow(http: httpx.Client, view: dict[str, Any], poll: float, timeout: float) -> dict[str, Any]:
    """Poll the import until it ends, with a progress bar over the rows the importer applied."""
    import_id = view["import_id"]
    deadline = time.monotonic() + timeout
    total = max(1, view["progress"]["rows_published"])
    with click.progressbar(length=total, label="importing", show_percent=True, show_eta=False,
                           file=sys.stderr) as bar:
        done = 0
        while True:
            applied = min(view["progress"]["rows_applied"], total)
            bar.update(applied - done)
            done = applied
            if view["status"] in _TERMINAL:
                return view
            if time.monotonic() > deadline:
                raise click.ClickException(f"import {import_id} still {view['status']} after {timeout:.0f}s;"
                                           f" follow it at GET /api/v1/imports/{import_id}")
            time.sleep(poll)
            response = http.get(f"/api/v1/imports/{import_id}")
            if response.status_code != 200:
                raise click.ClickException(_error_text(response))
            view = response.json()


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--task", "task_id", required=True, help="the task to add the targets to")
@click.option("--url", default=lambda: os.environ.get("INVITE_API_URL", DEFAULT_URL), show_default=DEFAULT_URL,
              help="the service's base URL (env INVITE_API_URL)")
@click.option("--token", envvar="INVITE_API_TOKEN", required=True, help="API bearer token (env INVITE_API_TOKEN)")
@click.option("--mapping", default=None, help='column mapping as JSON, e.g. \'{"phone": "Тел."}\'')
@click.option("--encoding", default=None, help="the file's text encoding (default: detected)")
@click.option("--delimiter", default=None, help="the CSV delimiter (default: detected)")
@click.option("--dry-run", is_flag=True, help="only validate: counts and the first problems, nothing stored")
@click.option("--timeout", default=3600.0, show_default=True, help="seconds to wait for the import to finish")
def import_file(file: Path, task_id: str, url: str, token: str, mapping: str | None, encoding: str | None,
                delimiter: str | None, dry_run: bool, timeout: float) -> None:
    """Import an audience FILE (CSV, XLSX, JSON) into a task and print the report."""
    if mapping is not None:
        try:
            parsed = json.loads(mapping)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise click.BadParameter('a JSON object like {"phone": "Тел."}', param_hint="--mapping")
    fields = {k: v for k, v in {"task_id": task_id, "mapping": mapping, "encoding": encoding,
                                "delimiter": delimiter}.items() if v is not None}
    path = "/api/v1/import/validate" if dry_run else "/api/v1/import/file"
    content_type = _CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
    # The server reads the whole file before it answers: no read timeout on the upload.
    timeouts = httpx.Timeout(30.0, read=None)
    with httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                      timeout=timeouts) as http:
        size = file.stat().st_size
        with open(file, "rb") as raw, click.progressbar(length=size, label="uploading", file=sys.stderr) as bar:
            try:
                response = http.post(path, data=fields,
                                     files={"file": (file.name, _Counted(raw, bar), content_type)})
            except httpx.HTTPError as exc:
                raise click.ClickException(f"cannot reach the service at {url}: {exc}") from None
        if response.status_code >= 400:
            click.echo(f"refused: {_error_text(response)}", err=True)
            sys.exit(1)
        body = response.json()
        if dry_run:
            _print_report(body["report"], "validation")
            click.echo("the file is valid" if body["valid"] else "the file has rows that would be rejected")
            return
        click.echo(f"import {body['import_id']} into task {task_id}")
        _print_report(body["report"], "file")
        final = _follow(http, body, poll=0.5, timeout=timeout)
    result = final["result"]
    click.echo(f"result: {result['accepted']} added to the task, {result['duplicate']} duplicate,"
               f" {result['invalid']} invalid, {result['suppressed']} suppressed — {final['status']}")
    if final["status"] != "completed":
        error = final.get("error") or {}
        click.echo(f"the import {final['status']}: {error.get('message', 'no reason given')}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    import_file()

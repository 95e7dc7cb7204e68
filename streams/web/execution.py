"""Execution routes: lifecycle commands, live status, the task's accounts, and a test invite.

Lifecycle commands are legal transitions of the state machine in
``models/tasks.py`` (409 with the current state otherwise), published for
the task agent. Attaching and detaching accounts are events too; the planner
gives targets to new accounts on its next plan.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from faust.web import Request, Response, View
from pydantic import BaseModel, ValidationError

from adapters.platforms.base import TargetRef, delivery_unknown
from models.api import (
    Accepted,
    AccountsChangeRequest,
    TaskAccountView,
    TaskStatusView,
    TestInviteRequest,
    TestInviteResult,
)
from models.events import (
    ActionCompleted,
    ActionCompletedData,
    TaskAccountsChanged,
    TaskAccountsData,
)
from models.limits import ActionKind
from models.messages import render
from models.outcomes import InviteResult
from models.progress import estimate_eta
from models.targets import TargetIn
from models.tasks import ACCOUNT_CHANGE_STATES, TaskCommand, TaskKind, TaskStatus

from ..publish import send_event
from .context import Api
from .errors import HttpError, parse_body, validation_error
from .limits import limit_view, outlooks
from .stats import progress_view

_COMMANDS = {"execute": TaskCommand.START, "pause": TaskCommand.PAUSE, "resume": TaskCommand.RESUME,
             "cancel": TaskCommand.CANCEL}
_TEST_LOCK_SECONDS = 120

log = logging.getLogger(__name__)


class TaskAccountList(BaseModel):
    items: list[TaskAccountView]


def register(api: Api) -> None:
    rt, routes = api.rt, api.routes

    def lifecycle(command: TaskCommand) -> Any:
        async def handler(view: View, request: Request, task_id: str) -> Response:
            user, task = await api.task(request, task_id)
            status, event_id = await api.command(user, task, command)
            return view.json(Accepted(task_id=task_id, status=status, event_id=event_id).model_dump(), status=202)

        return handler

    async def task_accounts(task: dict[str, Any]) -> list[TaskAccountView]:
        states = await rt.tasks.account_states(task["id"])
        ids = [a for a, state in states.items() if state != "detached"]
        disabled = {a for a in ids if states[a] == "disabled"}
        found = await outlooks(api, ids, ActionKind(task["kind"]), disabled)
        return [TaskAccountView(**limit_view(o).model_dump(), task_state=states[o.account_id]) for o in found]

    async def status(view: View, request: Request, task_id: str) -> Response:
        _, task = await api.task(request, task_id)
        progress = await rt.targets.progress(task_id)
        accounts = await task_accounts(task)
        now = time.time()
        found = await outlooks(api, [a.account_id for a in accounts if a.task_state == "active"],
                               ActionKind(task["kind"]))
        eta = estimate_eta(progress.open, found, now) if task["status"] == TaskStatus.RUNNING else None
        rate = await api.reports.attempts_since(task_id, datetime.now(UTC) - timedelta(hours=1))
        result = TaskStatusView(
            task_id=task_id, status=task["status"], status_reason=task["status_reason"],
            progress=progress_view(progress), rate_per_hour=float(rate), eta_seconds=eta,
            eta_at=None if eta is None else datetime.fromtimestamp(now + eta, UTC), accounts=accounts,
        )
        return view.json(result.model_dump(mode="json"))

    async def accounts(view: View, request: Request, task_id: str) -> Response:
        _, task = await api.task(request, task_id)
        return view.json(TaskAccountList(items=await task_accounts(task)).model_dump(mode="json"))

    def change_accounts(kind: str) -> Any:
        async def handler(view: View, request: Request, task_id: str) -> Response:
            user, task = await api.task(request, task_id)
            body = await parse_body(request, AccountsChangeRequest, api.settings.api_max_body_bytes)
            if TaskStatus(task["status"]) not in ACCOUNT_CHANGE_STATES:
                raise HttpError(409, "task_finished", f"task is {task['status']}; its accounts no longer change",
                                {"status": task["status"]})
            event = TaskAccountsChanged(type=kind, user_id=user,
                                        data=TaskAccountsData(task_id=task_id, account_ids=body.account_ids))
            await api.publish(task_id, event)
            return view.json(Accepted(task_id=task_id, status=task["status"], event_id=event.id).model_dump(),
                             status=202)

        return handler

    async def test_invite(view: View, request: Request, task_id: str) -> Response:
        user, task = await api.task(request, task_id)
        body = await parse_body(request, TestInviteRequest, api.settings.api_max_body_bytes)
        states = await rt.tasks.account_states(task_id)
        if states.get(body.account_id) != "active":
            raise HttpError(422, "validation_error", "invalid account_id",
                            [{"field": "account_id", "message": "not an active account of this task"}])
        try:
            target = TargetIn.model_validate(body.target.model_dump(exclude_none=True),
                                             context={"default_region": rt.settings.phone_default_region})
        except ValidationError as exc:
            raise validation_error(exc, prefix="target") from None
        result = await send_test(user, task, body.account_id, target)
        answer = TestInviteResult(
            task_id=task_id, account_id=body.account_id, action=task["kind"], outcome=result.outcome,
            scope=result.scope, severity=result.severity, retryable=result.retryable,
            retry_after=result.retry_after, raw_error=result.raw_error,
        )
        return view.json(answer.model_dump(mode="json"))

    async def send_test(user: str, task: dict[str, Any], account_id: str, target: TargetIn) -> InviteResult:
        """One send through the platform adapter, only when the account's scheduler is idle and its limits allow."""
        kind = ActionKind(task["kind"])
        if account_id in await api.reports.busy_accounts([account_id]):
            raise HttpError(409, "account_busy", f"account {account_id} is serving a running task; pause it first",
                            {"status": task["status"]})
        (outlook,) = await outlooks(api, [account_id], kind)
        now = time.time()
        if outlook.next_action_at is None or outlook.next_action_at > now:
            wait = None if outlook.next_action_at is None else int(outlook.next_action_at - now) + 1
            raise HttpError(409, "account_limited", f"account {account_id} may not act now ({outlook.state})",
                            {"status": task["status"], "retry_after": wait},
                            headers={"Retry-After": str(wait)} if wait else None)
        lock = f"invite:test-send:{account_id}"
        if not await rt.redis.set(lock, "1", nx=True, ex=_TEST_LOCK_SECONDS):
            raise HttpError(409, "account_busy", f"a test send of account {account_id} is in progress",
                            {"status": task["status"]})
        try:
            at = datetime.now(UTC)
            await api.reports.record_test_action(account_id, task["id"], kind, at)
            result = await call_platform(task, account_id, target, f"test:{task['id']}:{uuid4()}")
            # The account's scheduler applies what the answer means for the account (cooldown, ban ...).
            done = ActionCompletedData(account_id=account_id, task_id=task["id"], target_id=0,
                                       outcome=result.outcome, retry_after=result.retry_after)
            await send_event(api.topics.account_work, account_id, ActionCompleted(user_id=user, data=done))
            return result
        finally:
            await rt.redis.delete(lock)

    async def call_platform(task: dict[str, Any], account_id: str, target: TargetIn, key: str) -> InviteResult:
        adapter = rt.adapter(task["platform"])
        ref = TargetRef(username=target.username, user_id=target.user_id, phone=target.phone)
        if task["kind"] == TaskKind.MESSAGE:
            text = render(task["message_template"] or "", target.model_dump())
            result = await adapter.send_message(account_id, ref, text, key)
        else:
            result = await adapter.send_invite(account_id, task["chat"] or "", ref, key)
        if delivery_unknown(result):
            try:
                result = await adapter.lookup(key) or result
            except Exception as exc:  # noqa: BLE001 - still unknown; the answer says so (transient, unavailable)
                log.warning("test send %s: lookup failed: %r", key, exc)
        return result

    tag = "execution"
    base = "/api/v1/tasks/{task_id}"
    for action, command in _COMMANDS.items():
        routes.add("POST", f"{base}/{action}", lifecycle(command), summary=f"{action.capitalize()} the task", tag=tag,
                   responses={202: Accepted}, errors=(404, 409))
    routes.add("GET", f"{base}/status", status, summary="Live status: progress, rate, ETA, accounts", tag=tag,
               responses={200: TaskStatusView}, errors=(404,))
    routes.add("GET", f"{base}/accounts", accounts, summary="The task's accounts with remaining limits and cooldowns",
               tag=tag, responses={200: TaskAccountList}, errors=(404,))
    routes.add("POST", f"{base}/accounts/attach", change_accounts("task.accounts_attached"),
               summary="Attach accounts (the planner gives them targets)", tag=tag,
               body=AccountsChangeRequest, responses={202: Accepted}, errors=(404, 409))
    routes.add("POST", f"{base}/accounts/detach", change_accounts("task.accounts_detached"),
               summary="Detach accounts (their waiting targets go to the others)", tag=tag,
               body=AccountsChangeRequest, responses={202: Accepted}, errors=(404, 409))
    routes.add("POST", f"{base}/test-invite", test_invite,
               summary="One real send to one target through one of the task's accounts", tag=tag,
               description="Synchronous; refused while the account serves a running task or its limits say wait.",
               body=TestInviteRequest, responses={200: TestInviteResult}, errors=(404, 409))

"""Scheduler efficiency: sends achieved / what the limits allow, on a simulated clock.

Run from the repository root (no broker, database or network; no sleeps)::

    python benchmarks/scheduler_efficiency.py --hours 48 --accounts 200 --targets 30000 \\
        --seed 1 --flood 0.03 --peerflood 0.01

What it drives
--------------
A discrete-event simulation (a ``heapq`` of due times) of the account
scheduler in ``streams/agents/accounts.py``, step by step, with the same pure
functions the agent calls:

* ``try_act`` (on ``account.due`` or ``work.assigned``): nothing while an
  action is in flight; a quarantine that is over is cleared (the account is
  active in its tasks again); ``at = next_action_at(policy, state, now)``; if
  ``at`` is later than now, arm the timer at ``at`` and stop (no query);
  otherwise "query" the account's work (``ClaimStore.work_for``: one
  ``TaskWork`` per task with pending targets for it, ``last_served_at`` = its
  last claim for that task), ``pick_task``; nothing picked: arm at
  ``pick.wake_at`` (None: idle until ``work.assigned``); else claim the
  task's lowest pending target id and
  ``record_action(policy, ..., draw_pause(policy, rng))``.
* ``completed`` (``action.completed``, ``--latency`` s after the claim):
  ``account_effect``; FloodWait and PeerFlood put the target back to pending
  with the account; PeerFlood then runs ``hand_over_work``: the account is
  restricted in its tasks, its pending targets are unassigned and each of its
  tasks is re-planned (``plan``: unassigned targets by id round-robin over the
  task's active accounts, then ``work.assigned`` to every account with work).
  Then re-arm at ``next_action_at``.
* ``DueTimers.arm``: one timer per account, an earlier one is kept. The clock
  has microsecond steps like the agent's ``round(time.time(), 6)``; a timer
  fires on the first microsecond at or after its time.

The reconciler (every ``--reconcile-interval`` s) changes no claim time: its
``work.assigned`` reaches an account whose timer is already armed at the
earliest time it could act. It would cost a query per tick and task
while an account waits for its window (its pick found nothing at ``a``, e.g.
its 5 invites of the hour are done while ``next_action_at`` says "now" because
a *message* would be allowed, until its next claim at ``c``); the agent's
in-memory quiet mark answers those ticks without a query. They are counted
without simulating the ~3.5 M wake-ups.

Policy ``LimitPolicy.telegram_default()``: 5 invites/h and 50/day (sliding),
30-90 s pause, FloodWait + 10 % + 5 s, 24 h PeerFlood quarantine. Outcomes per
attempt from ``random.Random`` per account: ``--flood`` FloodWait (retry_after
uniform in ``--flood-wait-min..max``), ``--peerflood`` PeerFlood, otherwise
85 % invited, 10 % privacy restricted, 5 % already member.

Scenarios (same run)
--------------------
one task
    One normal-priority invite task with ``--targets`` targets on all
    ``--accounts`` accounts.
three tasks
    ``main`` (normal) on all accounts, and on the first ``--shared`` accounts
    also ``second`` (normal, started 1 s later) and ``urgent`` (high priority,
    its own limit 2 invites/h, which lowers the account's 5/h). ``second`` and
    ``urgent`` get 2/15 of the targets each (4 000 each by default: ~80 per
    shared account), ``main`` the rest (~110 per account). On a shared account
    ``pick_task`` tries ``urgent`` first, then ``main`` and ``second`` in
    turns (``serving_order``: least recently served first). Per-task sends
    are printed, with what ``urgent``'s own limit allows: a task window
    counts only the account's invites *for that task* (``TaskWork.served``),
    on top of the account's own windows over all its invites.

Definitions
-----------
sends
    Claimed actions in ``[start, start + hours)``, whatever their outcome: each
    takes a slot of every window. Successful invites are printed separately.
healthy account
    Never quarantined nor disabled within the horizon. FloodWait cooldowns are
    not subtracted from its bound, so the ratio is conservative.
theoretical maximum (per healthy account)
    Invites of the greedy schedule that acts at the earliest time the invite
    windows and the *minimum* pause allow (all constraints have the form
    ``t_k >= t_j + d``, so its k-th time is a lower bound of any schedule's).
    48 h: 100, i.e. 50 per day. ``sends/theoretical_max`` = sends of the
    healthy accounts / the sum of their maxima. Healthy accounts that ever
    found no work when they could act are printed: then the figure would
    measure the target supply, not the scheduler.
window violations
    Recounted from the action log only (not from ``AccountLimitState``): for
    every account, every window of the policy and, per task, of the task's
    own limits, and every action at ``t``: the actions ``x`` with ``x <= t``
    and ``x + seconds > t`` (the rule of models/limits.py) must not exceed the
    limit. Also checked: consecutive actions of an account at least
    ``pause_min`` apart, and none inside a cooldown or quarantine (recomputed
    from the FloodWait/PeerFlood answers and the policy's margins).
wall time
    Simulating and checking both scenarios; next to it, a bare ``heapq``
    push/pop loop over the same number of events (the baseline).

Not modelled: transient errors and retries, message tasks, dead accounts,
broker/database latency (events are handled at their due time), worker
restarts and rebalances (so no ``merge_recorded``), the Integration Service
being down, and the order of ``invite.result`` vs ``action.completed`` (the
PeerFlood target is assumed back to pending before the hand-over).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import sys
import time
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.events import TaskLimits
from models.limits import (
    DAY,
    HOUR,
    AccountLimitState,
    ActionKind,
    LimitPolicy,
    Window,
    draw_pause,
    record_action,
)
from models.outcomes import SCOPE, Outcome, Scope
from models.scheduling import TaskWork, account_effect, next_action_at, pick_task
from models.tasks import Priority

INVITE = ActionKind.INVITE
T0 = 1_700_000_000.0  # a realistic epoch, so float rounding is the production one
TERMINAL_MIX = ((Outcome.INVITED, 0.85), (Outcome.PRIVACY_RESTRICTED, 0.10), (Outcome.ALREADY_MEMBER, 0.05))
DUE, WORK, DONE = 0, 1, 2  # event kinds: account.due, work.assigned, action.completed


def on_clock(t: float) -> float:
    """The first microsecond at or after ``t``."""
    us = math.ceil(t * 1e6)
    while us / 1e6 < t:  # the product may round down across a microsecond
        us += 1
    return us / 1e6


@dataclass
class Task:
    """A running invite task: its priority, accounts, target ids and own limits."""

    task_id: str
    priority: Priority
    accounts: list[int]
    targets: range
    limits: tuple[Window, ...] = ()
    started_at: float = T0


@dataclass(frozen=True)
class Action:
    """One claimed action: the account log the checks recount."""

    account: int
    task_id: str
    kind: ActionKind
    at: float


@dataclass(frozen=True)
class Block:
    """A FloodWait or PeerFlood answer received by an account."""

    account: int
    at: float
    outcome: Outcome
    retry_after: float | None


def one_task(args: argparse.Namespace) -> list[Task]:
    return [Task("campaign", Priority.NORMAL, list(range(args.accounts)), range(args.targets))]


def three_tasks(args: argparse.Namespace) -> list[Task]:
    everyone, shared = list(range(args.accounts)), list(range(min(args.shared, args.accounts)))
    side = args.targets * 2 // 15
    main = args.targets - 2 * side
    return [
        Task("main", Priority.NORMAL, everyone, range(main)),
        Task("second", Priority.NORMAL, shared, range(main, main + side), started_at=T0 + 1),
        Task("urgent", Priority.HIGH, shared, range(main + side, args.targets),
             limits=tuple(TaskLimits(invites_per_hour=2).windows_for(INVITE)), started_at=T0 + 2),
    ]


class Sim:
    """The account agent, the planner and the due timers of one campaign run."""

    def __init__(self, tasks: Sequence[Task], args: argparse.Namespace) -> None:
        self.policy = LimitPolicy.telegram_default()
        self.tasks = {t.task_id: t for t in tasks}
        self.n = args.accounts
        self.end = T0 + args.hours * HOUR
        self.latency, self.flood, self.peerflood = args.latency, args.flood, args.peerflood
        self.flood_wait = (args.flood_wait_min, args.flood_wait_max)
        self.reconcile = args.reconcile_interval
        self.outcome_rng = [random.Random(f"{args.seed}/outcomes/{a}") for a in range(self.n)]
        self.pause_rng = [random.Random(f"{args.seed}/pauses/{a}") for a in range(self.n)]
        self.state = [AccountLimitState() for _ in range(self.n)]
        # targets table: pending target ids per account and task (heaps: claims take the lowest id)
        self.pending: list[dict[str, list[int]]] = [{} for _ in range(self.n)]
        self.unassigned: dict[str, list[int]] = {t.task_id: list(t.targets) for t in tasks}
        # account_actions per account and task: every claim time (max = last served; last day = served)
        self.served: list[dict[str, list[float]]] = [defaultdict(list) for _ in range(self.n)]
        self.inflight: list[int | None] = [None] * self.n
        self.restricted: set[int] = set()  # task_accounts.state = 'restricted' now
        self.quarantined: set[int] = set()  # ever restricted within the horizon
        self.timer: list[float | None] = [None] * self.n
        self.token = [0] * self.n
        self.heap: list[tuple] = []
        self.seq = itertools.count()
        self.actions: list[Action] = []
        self.blocks: list[Block] = []
        self.outcomes: Counter[Outcome] = Counter()
        self.events = self.queries = self.empty_picks = self.reconciler_skips = self.reassigned = 0
        self.ran_dry: set[int] = set()  # could act, found no work
        self.idle_since: dict[int, tuple[float, int]] = {}  # picked nothing at, tasks with work then

    def push(self, at: float, kind: int, acc: int, *data: object) -> None:
        heapq.heappush(self.heap, (on_clock(at), next(self.seq), kind, acc, *data))

    def arm(self, acc: int, at: float) -> None:
        """DueTimers.arm: one timer per account; an earlier one is kept."""
        current = self.timer[acc]
        if current is not None and current <= at:
            return
        self.timer[acc] = at
        self.token[acc] += 1
        self.push(at, DUE, acc, self.token[acc])

    def run(self) -> None:
        for task in self.tasks.values():
            self.plan(task, T0)  # task.started
        while self.heap and self.heap[0][0] < self.end:
            now, _, kind, acc, *data = heapq.heappop(self.heap)
            self.events += 1
            if kind == DUE:
                if data[0] != self.token[acc]:
                    continue  # replaced by an earlier timer
                self.timer[acc] = None
                self.try_act(acc, now)
            elif kind == WORK:
                self.try_act(acc, now)
            else:
                self.completed(acc, now, *data)
        for acc in list(self.idle_since):
            self.end_idle(acc, self.end)

    def work_for(self, acc: int, now: float) -> list[TaskWork]:
        """ClaimStore.work_for: the running tasks with targets waiting for the account."""
        self.queries += 1
        return [
            TaskWork(task_id=task.task_id, kind=INVITE, priority=task.priority, started_at=task.started_at,
                     last_served_at=served[-1] if (served := self.served[acc][task.task_id]) else None,
                     limits=task.limits, served=tuple(t for t in served if t > now - DAY) if task.limits else ())
            for task_id, targets in self.pending[acc].items() if targets
            for task in (self.tasks[task_id],)
        ]

    def try_act(self, acc: int, now: float) -> None:
        """streams/agents/accounts.py try_act, from the in-flight check on (no recovery: no restarts)."""
        if self.inflight[acc] is not None:
            return  # one action at a time; its completion re-arms the account
        state = self.state[acc]
        if state.quarantine_until is not None and now >= state.quarantine_until:
            state = self.state[acc] = state.model_copy(update={"quarantine_until": None})
            self.restricted.discard(acc)
        at = next_action_at(self.policy, state, now)
        if at is None or at > now:
            if at is not None:
                self.arm(acc, at)
            return
        work = self.work_for(acc, now)
        pick = pick_task(self.policy, state, work, now)
        if pick.work is None:
            if pick.wake_at is not None:
                self.arm(acc, pick.wake_at)
                self.empty_picks += 1
                if self.idle_since.get(acc, (now, len(work)))[1] != len(work):
                    self.end_idle(acc, now)  # a hand-over gave it another task to be woken for
                self.idle_since.setdefault(acc, (now, len(work)))
            elif not work:
                self.ran_dry.add(acc)
            return
        self.end_idle(acc, now)
        task_id = pick.work.task_id
        target = heapq.heappop(self.pending[acc][task_id])
        pause = draw_pause(self.policy, self.pause_rng[acc])
        self.state[acc] = record_action(self.policy, state, pick.work.kind, now, pause)
        self.served[acc][task_id].append(now)
        self.inflight[acc] = target
        self.actions.append(Action(acc, task_id, pick.work.kind, now))
        self.push(now + self.latency, DONE, acc, task_id, target, *self.draw_outcome(acc))

    def end_idle(self, acc: int, until: float) -> None:
        """Count the reconciler ticks that found this account waiting for its window.

        The agent answers those from its in-memory quiet mark (``quiet`` in
        streams/agents/accounts.py) without a query: only a task it did not
        know when it last picked nothing makes it ask PostgreSQL again.
        """
        idle = self.idle_since.pop(acc, None)
        if idle is None or self.reconcile <= 0:
            return
        since, tasks = idle
        first = max(1, math.ceil((since - T0) / self.reconcile))  # ticks at T0 + k * interval, k >= 1
        last = math.ceil((until - T0) / self.reconcile) - 1
        self.reconciler_skips += max(0, last - first + 1) * tasks

    def completed(
        self, acc: int, now: float, task_id: str, target: int, outcome: Outcome, retry_after: float | None
    ) -> None:
        if self.inflight[acc] == target:
            self.inflight[acc] = None
        effect = account_effect(self.policy, self.state[acc], outcome, retry_after, now)
        self.state[acc] = effect.state
        self.outcomes[outcome] += 1
        scope = SCOPE[outcome]
        if scope in (Scope.ACCOUNT_TEMPORARY, Scope.ACCOUNT_RESTRICTED):
            self.blocks.append(Block(acc, now, outcome, retry_after))
            heapq.heappush(self.pending[acc][task_id], target)  # pending again, same account
        if scope is Scope.ACCOUNT_RESTRICTED:
            self.hand_over(acc, now)
        at = next_action_at(self.policy, effect.state, now)
        if at is not None:
            self.arm(acc, at)

    def hand_over(self, acc: int, now: float) -> None:
        """hand_over_work: restrict the account, unassign its pending targets, re-plan its tasks."""
        self.restricted.add(acc)
        self.quarantined.add(acc)
        for task_id, targets in self.pending[acc].items():
            self.unassigned[task_id].extend(targets)
            self.reassigned += len(targets)
            targets.clear()
        for task in self.tasks.values():
            if acc in task.accounts:
                self.plan(task, now)

    def plan(self, task: Task, now: float) -> None:
        """streams/planner.py plan: assign_unassigned, then work.assigned to every account with work."""
        active = [a for a in task.accounts if a not in self.restricted]
        if not active:
            return  # the service pauses the task: "no healthy account left"
        loose = sorted(self.unassigned[task.task_id])
        self.unassigned[task.task_id] = []
        for i, target in enumerate(loose):
            heapq.heappush(self.pending[active[i % len(active)]].setdefault(task.task_id, []), target)
        for acc in task.accounts:
            if self.pending[acc].get(task.task_id):
                self.push(now, WORK, acc)

    def draw_outcome(self, acc: int) -> tuple[Outcome, float | None]:
        rng = self.outcome_rng[acc]
        u = rng.random()
        if u < self.flood:
            return Outcome.FLOOD_WAIT, rng.uniform(*self.flood_wait)
        if u < self.flood + self.peerflood:
            return Outcome.PEER_FLOOD, None
        v = rng.random()
        for outcome, share in TERMINAL_MIX:
            if v < share:
                return outcome, None
            v -= share
        return TERMINAL_MIX[0][0], None


def theoretical_max(policy: LimitPolicy, horizon: float) -> int:
    """Invites of the greedy earliest schedule in ``[0, horizon)`` (module docstring)."""
    windows = policy.windows.get(INVITE, [])
    if any(w.limit == 0 for w in windows):
        return 0
    if not windows and policy.pause_min <= 0:
        raise ValueError("no invite window and no pause: the maximum is unbounded")
    times: list[float] = []
    while True:
        bounds = [0.0]
        if times:
            bounds.append(times[-1] + policy.pause_min)
        bounds += [times[-w.limit] + w.seconds for w in windows if len(times) >= w.limit]
        if max(bounds) >= horizon:
            return len(times)
        times.append(max(bounds))


@dataclass
class Violations:
    """What the independent recount found; every figure must be 0."""

    window: int = 0
    pause: int = 0
    blocked: int = 0


def overfull(times: Sequence[float], window: Window) -> int:
    """Actions (sorted times) at which the window ending there holds more than its limit."""
    bad, lo = 0, 0
    for t in times:
        while times[lo] + window.seconds <= t:
            lo += 1
        bad += bisect_right(times, t) - lo > window.limit
    return bad


def recount(sim: Sim) -> Violations:
    """Every check from the action log and the answers only (module docstring)."""
    policy, v = sim.policy, Violations()
    log: dict[int, list[Action]] = defaultdict(list)
    for action in sim.actions:
        log[action.account].append(action)
    for actions in log.values():
        actions.sort(key=lambda a: a.at)
        for kind, windows in policy.windows.items():
            times = [a.at for a in actions if a.kind is kind]
            v.window += sum(overfull(times, w) for w in windows)
        for task in sim.tasks.values():
            times = [a.at for a in actions if a.kind is INVITE and a.task_id == task.task_id]
            v.window += sum(overfull(times, w) for w in task.limits)
        v.pause += sum(a.at + policy.pause_min > b.at for a, b in itertools.pairwise(actions))
    for block in sim.blocks:
        if block.outcome is Outcome.FLOOD_WAIT:
            assert block.retry_after is not None
            until = block.at + block.retry_after * (1 + policy.flood_margin_ratio) + policy.flood_margin
        else:
            until = block.at + policy.quarantine_seconds
        times = [a.at for a in log[block.account]]
        v.blocked += bisect_left(times, until) - bisect_left(times, block.at)
    return v


@dataclass
class Run:
    """One simulated scenario with its checks and timings."""

    name: str
    sim: Sim
    violations: Violations
    simulate_s: float
    check_s: float

    def healthy(self) -> list[int]:
        return [a for a in range(self.sim.n) if a not in self.sim.quarantined and not self.sim.state[a].disabled]

    def sends(self) -> Counter[int]:
        return Counter(a.account for a in self.sim.actions)

    def ratio(self, bound: int) -> tuple[float, int, int]:
        healthy, sends = self.healthy(), self.sends()
        achieved = sum(sends[a] for a in healthy)
        return (achieved / (bound * len(healthy)) if healthy else math.nan), achieved, bound * len(healthy)


def simulate(name: str, tasks: list[Task], args: argparse.Namespace) -> Run:
    t = time.perf_counter()
    sim = Sim(tasks, args)
    sim.run()
    simulated = time.perf_counter()
    violations = recount(sim)
    return Run(name, sim, violations, simulated - t, time.perf_counter() - simulated)


def baseline_heap_loop(n_events: int) -> float:
    """Wall time of pushing and popping the same number of events, nothing else."""
    t = time.perf_counter()
    heap: list[tuple[float, int]] = []
    for i in range(n_events):
        heapq.heappush(heap, (T0 + (i * 7919 % 1000), i))
        if len(heap) > 400:
            heapq.heappop(heap)
    while heap:
        heapq.heappop(heap)
    return time.perf_counter() - t


def describe(run: Run, bound: int, args: argparse.Namespace) -> None:
    sim, v = run.sim, run.violations
    ratio, achieved, most = run.ratio(bound)
    healthy = run.healthy()
    sends = run.sends()
    print(f"[{run.name}] " + "; ".join(
        f"{t.task_id} ({t.priority.name.lower()}, {len(t.targets)} targets, {len(t.accounts)} accounts"
        + (f", own limit {[(w.limit, w.seconds) for w in t.limits]}" if t.limits else "") + ")"
        for t in sim.tasks.values()))
    print(f"  sends/theoretical_max = {ratio:.3f} ({achieved} / {most} over {len(healthy)} healthy accounts); "
          f"sends per healthy account {dict(sorted(Counter(sends[a] for a in healthy).items()))}")
    print(f"  window violations {v.window}; pause < {sim.policy.pause_min:g} s: {v.pause}; "
          f"actions during cooldown/quarantine: {v.blocked}")
    print(f"  outcomes {dict(sorted((o.value, n) for o, n in sim.outcomes.items()))}; "
          f"{len(sim.quarantined)} accounts quarantined, {sim.reassigned} targets handed over; "
          f"healthy accounts that ran out of work: {len(set(healthy) & sim.ran_dry)}")
    print(f"  work_for queries on timers and work.assigned: {sim.queries} ({len(sim.actions)} claimed, "
          f"{sim.empty_picks} found nothing allowed yet); reconciler wake-ups every {args.reconcile_interval:g} s "
          f"answered from the quiet mark, no query: {sim.reconciler_skips} "
          f"({sim.reconciler_skips / (args.hours * HOUR):.1f}/s)")
    if len(sim.tasks) > 1:
        shared = [a for a in healthy if sum(a in t.accounts for t in sim.tasks.values()) > 1]
        per_task = {t: Counter(a.account for a in sim.actions if a.task_id == t) for t in sim.tasks}
        spread = {t: (min(c[a] for a in shared), max(c[a] for a in shared)) for t, c in per_task.items()} \
            if shared else {}
        print(f"  per-task sends on the {len(shared)} healthy shared accounts: " + ", ".join(
            f"{t} {sum(c[a] for a in shared)} (per account {spread[t][0]}-{spread[t][1]})"
            for t, c in per_task.items()))
        for task in sim.tasks.values():
            if task.limits:
                with_own = sim.policy.override(windows={INVITE: [*sim.policy.windows[INVITE], *task.limits]})
                own = theoretical_max(with_own, args.hours * HOUR)
                print(f"  {task.task_id}'s own limit alone would allow {own} per account")
        print("  per-task sends, all accounts: " + ", ".join(f"{t} {sum(c.values())}" for t, c in per_task.items()))
    print(f"  events {sim.events}; simulate {run.simulate_s:.2f} s, check {run.check_s:.2f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=float, default=48.0)
    p.add_argument("--accounts", type=int, default=200)
    p.add_argument("--targets", type=int, default=30_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flood", type=float, default=0.03, help="share of attempts answered FloodWait")
    p.add_argument("--peerflood", type=float, default=0.01, help="share of attempts answered PeerFlood")
    p.add_argument("--flood-wait-min", type=float, default=30.0)
    p.add_argument("--flood-wait-max", type=float, default=600.0)
    p.add_argument("--latency", type=float, default=0.3, help="seconds an attempt is in flight")
    p.add_argument("--reconcile-interval", type=float, default=10.0,
                   help="reconciler period in s (service default 10), for the query count; 0 = none")
    p.add_argument("--shared", type=int, default=50, help="accounts serving three tasks in the second scenario")
    args = p.parse_args(argv)

    started = time.perf_counter()
    policy = LimitPolicy.telegram_default()
    bound = theoretical_max(policy, args.hours * HOUR)
    print(f"scheduler efficiency: {args.hours:g} h simulated, {args.accounts} accounts, {args.targets} targets, "
          f"seed {args.seed}, FloodWait {args.flood:.1%}, PeerFlood {args.peerflood:.1%}")
    print(f"policy: invite windows {[(w.limit, w.seconds) for w in policy.windows[INVITE]]}, pause "
          f"{policy.pause_min:g}-{policy.pause_max:g} s -> theoretical max per healthy account = {bound}")
    runs = [simulate("one task", one_task(args), args), simulate("three tasks", three_tasks(args), args)]
    wall_s = sum(r.simulate_s + r.check_s for r in runs)
    events = sum(r.sim.events for r in runs)
    base_s = baseline_heap_loop(events)
    for run in runs:
        print()
        describe(run, bound, args)

    print()
    print("== summary ==")
    for run in runs:
        ratio, achieved, most = run.ratio(bound)
        print(f"sends/theoretical_max ({run.name}) = {ratio:.3f}   ({achieved} / {most}, "
              f"{len(run.healthy())} healthy accounts; goal >= 0.99)")
    violations = [r.violations for r in runs]
    print(f"window_violations = {sum(v.window for v in violations)}   (both scenarios, recounted from the action "
          f"log; pause {sum(v.pause for v in violations)}, cooldown/quarantine {sum(v.blocked for v in violations)})")
    print(f"wall_time_s = {wall_s:.2f}   (simulate + check, both scenarios, {events} events; bare heapq loop "
          f"over as many events {base_s:.3f} s = {wall_s / base_s:.0f}x; whole process "
          f"{time.perf_counter() - started:.2f} s)")
    first = runs[0].sim
    invited = first.outcomes[Outcome.INVITED]
    print(f"one task: sends = {len(first.actions)}, invited = {invited} "
          f"(invited / theoretical max of all accounts = {invited / (bound * args.accounts):.3f})")
    ok = all(r.ratio(bound)[0] >= 0.99 for r in runs) and not any(
        v.window or v.pause or v.blocked for v in violations)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The service's Prometheus metric catalogue and its recording functions.

Every metric lives on a dedicated :class:`~prometheus_client.CollectorRegistry`
owned by a :class:`Metrics` instance, never on prometheus-client's global
``REGISTRY``: two apps (or two tests) in one process then cannot collide on
duplicate names. Code records through the module-level functions below, which
act on the process default (:func:`default`); tests call :func:`reset` for a
fresh catalogue, or build their own ``Metrics()`` and call its methods.

Label values are low-cardinality by construction: every label takes its value
from an enum or a known set, and anything else raises :class:`LabelValueError`
(so a user, task, target or account id can never become a series). Where the
set is small the children are created up front at zero, because
``increase()`` over a series that is born at 1 sees no increase and an alert
on "first dead letter" would never fire.

Which gauges are cluster-wide: the leader's maintenance timers compute tasks
by state, accounts by health, pending targets, consumer lag, stats drift,
stalled tasks and group membership from PostgreSQL and the broker. A worker
that loses the leadership calls :func:`set_leader` ``(False)``, which zeroes
or drops them, so its stale numbers never compete with the new leader's;
queries aggregate them with ``max``. Counters, histograms,
``invite_last_result_timestamp_seconds`` and ``invite_dependency_up`` are
per process (``sum``/``max``/``min`` across instances).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from models.outcomes import Outcome
from models.tasks import TaskKind, TaskStatus, allowed_commands, transition

from .platforms.registry import available_platforms

__all__ = [
    "TOPIC_ROLES",
    "AccountHealth",
    "BlockKind",
    "CallAction",
    "DeadLetterReason",
    "Dependency",
    "ImportResult",
    "ImportSource",
    "LabelValueError",
    "Metrics",
    "RetryReason",
    "account_blocked",
    "claim_to_result_observed",
    "dead_letter",
    "default",
    "import_duration_observed",
    "invite_result",
    "platform_call_observed",
    "render",
    "reset",
    "retry",
    "set_accounts_by_health",
    "set_consumer_group_members",
    "set_consumer_lag",
    "set_dependency_up",
    "set_leader",
    "set_pending_targets",
    "set_running_tasks_stalled",
    "set_running_tasks_without_healthy_account",
    "set_stats_drift",
    "set_tasks_by_state",
    "targets_imported",
    "task_transitioned",
]


# --------------------------------------------------------------------------
# Label vocabularies
# --------------------------------------------------------------------------


class LabelValueError(ValueError):
    """A label value outside its known set: a bug, never a new series."""


class BlockKind(StrEnum):
    """How an account was stopped: FloodWait, PeerFlood, or dead."""

    COOLDOWN = "cooldown"
    QUARANTINE = "quarantine"
    DISABLED = "disabled"


class AccountHealth(StrEnum):
    """Health of a sender account as the accounts gauge counts it."""

    ACTIVE = "active"
    COOLDOWN = "cooldown"
    RESTRICTED = "restricted"
    DISABLED = "disabled"


class RetryReason(StrEnum):
    """Why a target went back to the queue.

    The first five are the retryable outcome scopes (``models.outcomes``);
    the last two come from the sender and the reconciler.
    """

    TRANSIENT = "transient"
    ACCOUNT_TEMPORARY = "account_temporary"
    ACCOUNT_RESTRICTED = "account_restricted"
    ACCOUNT_DEAD = "account_dead"
    TASK_FATAL = "task_fatal"
    DELIVERY_UNKNOWN = "delivery_unknown"
    INFLIGHT_TIMEOUT = "inflight_timeout"


class DeadLetterReason(StrEnum):
    """The four ways ``streams/consume.py`` parks a message."""

    INVALID_EVENT = "invalid_event"
    UNEXPECTED_TYPE = "unexpected_type"
    UNPROCESSABLE = "unprocessable"
    HANDLER_ERROR = "handler_error"


class ImportSource(StrEnum):
    """Where an audience came from."""

    API = "api"
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"
    PARSER = "parser"


class ImportResult(StrEnum):
    """What became of an imported row."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class CallAction(StrEnum):
    """Calls to a platform through the Integration Service."""

    INVITE = "invite"
    MESSAGE = "message"
    LOOKUP = "lookup"


class Dependency(StrEnum):
    """External services whose health is exported."""

    KAFKA = "kafka"
    POSTGRES = "postgres"
    REDIS = "redis"
    INTEGRATION_SERVICE = "integration_service"
    VAULT = "vault"


# Topic roles as in streams/topics.py TOPIC_NAMES (adapters may not import
# streams; tests/unit/test_metrics.py keeps the two equal). The label is the
# role, not the prefixed name, so dashboards work whatever INVITE_TOPIC_PREFIX is.
TOPIC_ROLES: Final = ("tasks", "targets", "account-work", "results", "accounts", "dead-letters")
UNKNOWN_TOPIC: Final = "unknown"
# Partitions are label values too; bound them so a garbage number cannot explode.
MAX_PARTITIONS: Final = 1024
NO_STATUS: Final = "none"  # from_status of a task's creation

_CALL_RESULTS = ("ok", "error")

# Seconds. Platform calls go through HTTP plus Telegram (sandbox: ~20 ms);
# claim-to-result adds the retries and the lost-reply lookup, up to the
# in-flight timeout (120 s default); imports of 10k-row batches take seconds.
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_CLAIM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_IMPORT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


_E = TypeVar("_E", bound=StrEnum)


def _one_of(enum: type[_E], value: object, label: str) -> _E:
    try:
        return enum(str(value))  # str(): StrEnum members of other enums (TaskKind) match by value
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise LabelValueError(f"{label}={value!r} is not one of: {allowed}") from None


def _platform(value: str) -> str:
    # The registry is the known set: a platform without an adapter cannot act.
    key = str(value).lower()
    if key not in available_platforms():
        raise LabelValueError(f"platform={value!r} is not a registered platform: {available_platforms()}")
    return key


def topic_role(name: str) -> str:
    """The role label of a topic given its role or its prefixed name.

    ``"invite.account-work"`` -> ``"account-work"``; ``"?"`` (consume's
    "no current event") -> ``"unknown"``; anything else is rejected.
    """
    if name in TOPIC_ROLES:
        return name
    if name in ("?", "", UNKNOWN_TOPIC):
        return UNKNOWN_TOPIC
    for role in sorted(TOPIC_ROLES, key=len, reverse=True):
        if name.endswith(role) and name[-len(role) - 1] in ".-_":
            return role
    raise LabelValueError(f"topic={name!r} is none of the service's topics {TOPIC_ROLES}")


def _count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")
    return value


def _seconds(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"duration must be finite, got {value!r}")
    return max(0.0, float(value))  # a clock step back must not poison the histogram


def _legal_transitions() -> list[tuple[str, str]]:
    pairs = [(NO_STATUS, TaskStatus.DRAFT.value)]
    for status in TaskStatus:
        pairs += [(status.value, transition(status, cmd).value) for cmd in allowed_commands(status)]
    return pairs


# --------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------


class Metrics:
    """Every metric of the service, on its own registry.

    Build one per process (the module default) or per test; pass a
    ``registry`` to share one with other collectors (e.g. faust's sensors,
    see ``streams/web/metrics.py``).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry

        # ---- counters ------------------------------------------------------
        self.task_transitions = Counter(
            "invite_task_transitions_total", "Task state changes applied (from_status=none: created).",
            ["from_status", "to_status"], registry=r,
        )
        self.results = Counter(
            "invite_results_total", "Attempt results projected for the first time, by normalized outcome.",
            ["platform", "outcome"], registry=r,
        )
        self.account_blocks = Counter(
            "invite_account_blocks_total", "Accounts stopped: cooldown (FloodWait), quarantine (PeerFlood), disabled.",
            ["platform", "kind"], registry=r,
        )
        self.retries = Counter(
            "invite_retries_total", "Targets sent back to the queue for another attempt, by reason.",
            ["platform", "reason"], registry=r,
        )
        self.dead_letters = Counter(
            "invite_dead_letters_total", "Messages parked on the dead-letter topic.",
            ["topic", "reason_class"], registry=r,
        )
        self.targets_imported = Counter(
            "invite_targets_imported_total", "Imported audience rows by what became of them.",
            ["source", "result"], registry=r,
        )
        self.platform_calls = Counter(
            "invite_platform_calls_total",
            "Calls to the Integration Service; error = no answer (outage, timeout, HTTP error).",
            ["platform", "action", "result"], registry=r,
        )

        # ---- histograms ----------------------------------------------------
        self.platform_call_duration = Histogram(
            "invite_platform_call_duration_seconds", "Latency of one Integration Service call, retries included.",
            ["platform", "action"], buckets=_CALL_BUCKETS, registry=r,
        )
        self.claim_to_result = Histogram(
            "invite_claim_to_result_seconds", "From claiming a target to its result.",
            buckets=_CLAIM_BUCKETS, registry=r,
        )
        self.import_duration = Histogram(
            "invite_import_duration_seconds", "Time to validate and store one targets.imported batch.",
            buckets=_IMPORT_BUCKETS, registry=r,
        )

        # ---- gauges (cluster-wide: set by the leader) ----------------------
        self.tasks = Gauge("invite_tasks", "Tasks by status.", ["status"], registry=r)
        self.accounts = Gauge("invite_accounts", "Sender accounts of live tasks by health.", ["health"], registry=r)
        self.pending_targets = Gauge(
            "invite_pending_targets", "Targets of running and paused tasks not yet done.", registry=r
        )
        self.consumer_lag = Gauge(
            "invite_consumer_lag", "Messages behind the end offset, per topic role and partition.",
            ["topic", "partition"], registry=r,
        )
        self.stats_drift = Gauge(
            "invite_stats_drift", "Targets whose count differs between the statistics table and PostgreSQL.",
            registry=r,
        )
        self.running_tasks_without_healthy_account = Gauge(
            "invite_running_tasks_without_healthy_account", "Running tasks none of whose accounts may act.",
            registry=r,
        )
        self.running_tasks_stalled = Gauge(
            "invite_running_tasks_stalled",
            "Running tasks with open targets and no result for longer than the stall threshold.",
            registry=r,
        )
        self.consumer_group_members = Gauge(
            "invite_consumer_group_members", "Members of the app's consumer group.", registry=r
        )
        self.consumer_group_expected_members = Gauge(
            "invite_consumer_group_expected_members", "Workers the deployment expects (0: not configured).",
            registry=r,
        )

        # ---- gauges (per process) ------------------------------------------
        self.leader = Gauge("invite_leader", "1 on the worker that runs the leader timers.", registry=r)
        self.dependency_up = Gauge(
            "invite_dependency_up", "1 if the last health check of the dependency passed.", ["dependency"],
            registry=r,
        )
        self.last_result_timestamp = Gauge(
            "invite_last_result_timestamp_seconds",
            "Unix time of the last result this worker projected (or of its start, if none yet).",
            registry=r,
        )
        # Start at "now": a restart must not look like results stopped long ago.
        self.last_result_timestamp.set(time.time())

        self._preinitialize()

    def _preinitialize(self) -> None:
        platforms = available_platforms()
        for src, dst in _legal_transitions():
            self.task_transitions.labels(src, dst)
        for p in platforms:
            for outcome in Outcome:
                self.results.labels(p, outcome.value)
            for kind in BlockKind:
                self.account_blocks.labels(p, kind.value)
            for reason in RetryReason:
                self.retries.labels(p, reason.value)
            for action in CallAction:
                self.platform_call_duration.labels(p, action.value)
                for result in _CALL_RESULTS:
                    self.platform_calls.labels(p, action.value, result)
        for topic in (*TOPIC_ROLES, UNKNOWN_TOPIC):
            for rc in DeadLetterReason:
                self.dead_letters.labels(topic, rc.value)
        for source in ImportSource:
            for ir in ImportResult:
                self.targets_imported.labels(source.value, ir.value)
        self._zero_cluster_gauges()

    def _zero_cluster_gauges(self) -> None:
        for status in TaskStatus:
            self.tasks.labels(status.value).set(0)
        for health in AccountHealth:
            self.accounts.labels(health.value).set(0)
        self.consumer_lag.clear()
        for gauge in (
            self.pending_targets, self.stats_drift, self.running_tasks_without_healthy_account,
            self.running_tasks_stalled, self.consumer_group_members, self.consumer_group_expected_members,
        ):
            gauge.set(0)

    # ---- counters ----------------------------------------------------------

    def task_transitioned(self, from_status: TaskStatus | str | None, to_status: TaskStatus | str) -> None:
        """A task changed state (call only when the change was applied, not on a no-op)."""
        src = NO_STATUS if from_status in (None, NO_STATUS) else _one_of(TaskStatus, from_status, "from_status")
        dst = _one_of(TaskStatus, to_status, "to_status")
        self.task_transitions.labels(str(src), dst.value).inc()

    def invite_result(self, platform: str, outcome: Outcome | str) -> None:
        """A result counted once (after the idempotent projection said "applied")."""
        self.results.labels(_platform(platform), _one_of(Outcome, outcome, "outcome").value).inc()
        self.last_result_timestamp.set(time.time())

    def account_blocked(self, platform: str, kind: BlockKind | str) -> None:
        """An account went into cooldown or quarantine, or was disabled."""
        self.account_blocks.labels(_platform(platform), _one_of(BlockKind, kind, "kind").value).inc()

    def retry(self, platform: str, reason: RetryReason | str) -> None:
        """A target goes back to the queue for another attempt."""
        self.retries.labels(_platform(platform), _one_of(RetryReason, reason, "reason").value).inc()

    def dead_letter(self, topic: str, reason_class: DeadLetterReason | str) -> None:
        """A message was parked; ``topic`` is the source topic (role or full name)."""
        rc = _one_of(DeadLetterReason, reason_class, "reason_class")
        self.dead_letters.labels(topic_role(topic), rc.value).inc()

    def targets_imported_batch(
        self, source: ImportSource | str, accepted: int, rejected: int, duplicate: int = 0
    ) -> None:
        """One import batch: rows accepted, rejected as invalid, and dropped as duplicates."""
        src = _one_of(ImportSource, source, "source").value
        for result, n in (
            (ImportResult.ACCEPTED, accepted), (ImportResult.REJECTED, rejected), (ImportResult.DUPLICATE, duplicate)
        ):
            if _count(n, result.value):
                self.targets_imported.labels(src, result.value).inc(n)

    # ---- histograms --------------------------------------------------------

    def platform_call_observed(
        self, platform: str, action: CallAction | TaskKind | str, seconds: float, ok: bool
    ) -> None:
        """One Integration Service call: its latency and whether it got an answer.

        ``ok`` means the service answered, even if the answer is a platform
        error (FLOOD_WAIT ...); ``False`` is our outage (IntegrationError, timeout).
        """
        labels = (_platform(platform), _one_of(CallAction, str(action), "action").value)
        self.platform_call_duration.labels(*labels).observe(_seconds(seconds))
        self.platform_calls.labels(*labels, "ok" if ok else "error").inc()

    def claim_to_result_observed(self, seconds: float) -> None:
        """Time from claiming a target to its result."""
        self.claim_to_result.observe(_seconds(seconds))

    def import_duration_observed(self, seconds: float) -> None:
        """Time one import batch took."""
        self.import_duration.observe(_seconds(seconds))

    # ---- gauges ------------------------------------------------------------

    def set_tasks_by_state(self, counts: Mapping[TaskStatus | str, int]) -> None:
        """Tasks per status; a status missing from ``counts`` is set to 0."""
        values = {s.value: 0 for s in TaskStatus}
        for status, n in counts.items():
            values[_one_of(TaskStatus, status, "status").value] = _count(n, "task count")
        for status, n in values.items():
            self.tasks.labels(status).set(n)

    def set_accounts_by_health(self, counts: Mapping[AccountHealth | str, int]) -> None:
        """Accounts per health; a health missing from ``counts`` is set to 0."""
        values = {h.value: 0 for h in AccountHealth}
        for health, n in counts.items():
            values[_one_of(AccountHealth, health, "health").value] = _count(n, "account count")
        for health, n in values.items():
            self.accounts.labels(health).set(n)

    def set_pending_targets(self, n: int) -> None:
        self.pending_targets.set(_count(n, "pending targets"))

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        """Lag of the app's group on one partition (topic by role or full name)."""
        if isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition < MAX_PARTITIONS:
            raise LabelValueError(f"partition={partition!r} is not in [0, {MAX_PARTITIONS})")
        role = topic_role(topic)
        if role == UNKNOWN_TOPIC:
            raise LabelValueError("consumer lag needs a known topic")
        self.consumer_lag.labels(role, str(partition)).set(_count(lag, "lag"))

    def clear_consumer_lag(self) -> None:
        """Drop every lag series (e.g. before re-exporting after a partition change)."""
        self.consumer_lag.clear()

    def set_stats_drift(self, n: int) -> None:
        self.stats_drift.set(_count(n, "drift"))

    def set_running_tasks_without_healthy_account(self, n: int) -> None:
        self.running_tasks_without_healthy_account.set(_count(n, "tasks"))

    def set_running_tasks_stalled(self, n: int) -> None:
        self.running_tasks_stalled.set(_count(n, "tasks"))

    def set_consumer_group_members(self, members: int, expected: int | None = None) -> None:
        """Members of the consumer group; ``expected`` = workers the deployment runs, if known."""
        self.consumer_group_members.set(_count(members, "members"))
        if expected is not None:
            self.consumer_group_expected_members.set(_count(expected, "expected members"))

    def set_dependency_up(self, name: Dependency | str, up: bool) -> None:
        self.dependency_up.labels(_one_of(Dependency, name, "dependency").value).set(1 if up else 0)

    def set_leader(self, is_leader: bool) -> None:
        """Leadership changed; a former leader drops its cluster-wide numbers."""
        self.leader.set(1 if is_leader else 0)
        if not is_leader:
            self._zero_cluster_gauges()

    # ---- exposition --------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and its Content-Type, negotiated from ``Accept``.

        Without an Accept header (curl) the classic text format 0.0.4;
        Prometheus itself asks for OpenMetrics and gets it.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def names(self) -> set[str]:
        """Every sample name this catalogue can expose (``_total``, ``_bucket`` ... included)."""
        return sample_names(self.registry.collect())


def sample_names(families: Iterable[object]) -> set[str]:
    """Sample names of metric families by type (also works on registries not yet sampled)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created", ""),
        "gauge": ("",),
        "info": ("_info",),
        "stateset": ("",),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "unknown": ("",),
    }
    names: set[str] = set()
    for family in families:
        name, kind = family.name, family.type  # type: ignore[attr-defined]
        names |= {name + s for s in suffixes.get(kind, ("",))}
    return names


# --------------------------------------------------------------------------
# The process default and the recording functions agents call
# --------------------------------------------------------------------------

_default = Metrics()


def default() -> Metrics:
    """The catalogue the module-level functions record into."""
    return _default


def reset() -> Metrics:
    """Replace the process default with a fresh catalogue (tests); returns it."""
    global _default
    _default = Metrics()
    return _default


def task_transitioned(from_status: TaskStatus | str | None, to_status: TaskStatus | str) -> None:
    """A task changed state (``from_status=None`` for a creation)."""
    _default.task_transitioned(from_status, to_status)


def invite_result(platform: str, outcome: Outcome | str) -> None:
    """One result, counted once; also stamps ``invite_last_result_timestamp_seconds``."""
    _default.invite_result(platform, outcome)


def account_blocked(platform: str, kind: BlockKind | str) -> None:
    """An account was put in cooldown, quarantine, or disabled."""
    _default.account_blocked(platform, kind)


def retry(platform: str, reason: RetryReason | str) -> None:
    """A target goes back to the queue."""
    _default.retry(platform, reason)


def dead_letter(topic: str, reason_class: DeadLetterReason | str) -> None:
    """A message from ``topic`` was parked."""
    _default.dead_letter(topic, reason_class)


def targets_imported(source: ImportSource | str, accepted: int, rejected: int, duplicate: int = 0) -> None:
    """Rows of one import batch by fate."""
    _default.targets_imported_batch(source, accepted, rejected, duplicate)


def platform_call_observed(platform: str, action: CallAction | TaskKind | str, seconds: float, ok: bool) -> None:
    """One Integration Service call."""
    _default.platform_call_observed(platform, action, seconds, ok)


def claim_to_result_observed(seconds: float) -> None:
    _default.claim_to_result_observed(seconds)


def import_duration_observed(seconds: float) -> None:
    _default.import_duration_observed(seconds)


def set_tasks_by_state(counts: Mapping[TaskStatus | str, int]) -> None:
    _default.set_tasks_by_state(counts)


def set_accounts_by_health(counts: Mapping[AccountHealth | str, int]) -> None:
    _default.set_accounts_by_health(counts)


def set_pending_targets(n: int) -> None:
    _default.set_pending_targets(n)


def set_consumer_lag(topic: str, partition: int, lag: int) -> None:
    _default.set_consumer_lag(topic, partition, lag)


def set_stats_drift(n: int) -> None:
    _default.set_stats_drift(n)


def set_running_tasks_without_healthy_account(n: int) -> None:
    _default.set_running_tasks_without_healthy_account(n)


def set_running_tasks_stalled(n: int) -> None:
    _default.set_running_tasks_stalled(n)


def set_consumer_group_members(members: int, expected: int | None = None) -> None:
    _default.set_consumer_group_members(members, expected)


def set_dependency_up(name: Dependency | str, up: bool) -> None:
    _default.set_dependency_up(name, up)


def set_leader(is_leader: bool) -> None:
    _default.set_leader(is_leader)


def render(accept: str | None = None, metrics: Metrics | None = None) -> tuple[bytes, str]:
    """``(body, content_type)`` for ``/metrics``."""
    return (metrics or _default).render(accept)

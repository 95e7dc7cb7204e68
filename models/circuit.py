"""Circuit breaker for a service we depend on: stop calling while it is down.

Pure: the state is a small frozen value and every function takes ``now``.
After ``failure_threshold`` consecutive calls that found the service
unavailable (after the client's own retries), the circuit opens for
``reset_seconds``; then calls are allowed again, and the first one that fails
opens it again at once (half-open: one more chance, not a fresh count).
Any answer from the service, even an error about the request, closes it.

While the circuit is open the account schedulers do not claim targets, so an
outage pauses sending instead of spending targets and limit slots on calls
that cannot succeed (issue 5: "sending pauses and resumes by itself").
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BreakerPolicy(BaseModel):
    """When to open and how long to stay open."""

    model_config = ConfigDict(frozen=True)

    failure_threshold: int = Field(default=5, ge=1)
    reset_seconds: float = Field(default=15.0, gt=0)


class Breaker(BaseModel):
    """Consecutive failures and, when open, until when."""

    model_config = ConfigDict(frozen=True)

    failures: int = 0
    open_until: float | None = None

    def allows(self, now: float) -> bool:
        return self.open_until is None or now >= self.open_until

    def is_open(self, now: float) -> bool:
        return not self.allows(now)


def after_success(breaker: Breaker) -> Breaker:
    return Breaker() if breaker.failures or breaker.open_until is not None else breaker


def after_failure(breaker: Breaker, now: float, policy: BreakerPolicy) -> Breaker:
    failures = breaker.failures + 1
    if failures >= policy.failure_threshold:
        return Breaker(failures=failures, open_until=now + policy.reset_seconds)
    return breaker.model_copy(update={"failures": failures})

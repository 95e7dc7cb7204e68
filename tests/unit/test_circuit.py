"""The Integration Service circuit breaker, on a controlled clock."""

from __future__ import annotations

from models.circuit import Breaker, BreakerPolicy, after_failure, after_success

POLICY = BreakerPolicy(failure_threshold=3, reset_seconds=10.0)


def fail(breaker: Breaker, times: int, now: float) -> Breaker:
    for _ in range(times):
        breaker = after_failure(breaker, now, POLICY)
    return breaker


def test_closed_until_the_threshold():
    breaker = fail(Breaker(), 2, now=100.0)
    assert breaker.allows(100.0) and breaker.failures == 2
    opened = fail(breaker, 1, now=101.0)
    assert opened.is_open(101.0) and opened.open_until == 111.0


def test_open_refuses_until_the_reset_time_then_allows():
    opened = fail(Breaker(), 3, now=0.0)
    assert not opened.allows(9.999)
    assert opened.allows(10.0)


def test_half_open_failure_reopens_at_once():
    opened = fail(Breaker(), 3, now=0.0)
    reopened = after_failure(opened, 10.5, POLICY)  # the first call after the reset failed
    assert reopened.is_open(10.5) and reopened.open_until == 20.5


def test_success_closes_and_forgets():
    opened = fail(Breaker(), 3, now=0.0)
    assert after_success(opened) == Breaker()
    assert fail(after_success(fail(Breaker(), 2, 0.0)), 2, 1.0).allows(1.0)  # the count started over

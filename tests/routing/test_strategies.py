"""The pure parts of routing: strategies, cooldowns, backoff."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from imagegate.providers.upstream import retry_after
from imagegate.routing.backoff import backoff_delay
from imagegate.routing.balance import Balancer
from imagegate.routing.cooldown import Cooldowns


@dataclass(frozen=True)
class S:
    key: str
    weight: int = 1

    @property
    def deployment_key(self) -> str:
        return self.key


A, B, C = S("a"), S("b"), S("c")


def test_round_robin_takes_each_in_turn_per_group() -> None:
    balancer = Balancer()
    picks = [balancer.choose("g", "round_robin", [A, B, C]).key for _ in range(6)]
    assert picks == ["a", "b", "c", "a", "b", "c"]
    assert balancer.choose("other", "round_robin", [A, B, C]).key == "a"  # its own turn


def test_weighted_is_smooth_and_exact() -> None:
    balancer = Balancer()
    slots = [S("a", 5), S("b", 1), S("c", 1)]
    picks = [balancer.choose("g", "weighted", slots).key for _ in range(7)]
    assert picks == ["a", "a", "b", "a", "c", "a", "a"]  # interleaved, not a burst
    many = Counter(balancer.choose("g", "weighted", slots).key for _ in range(700))
    assert many == {"a": 500, "b": 100, "c": 100}


def test_least_in_flight_prefers_the_idlest_and_rotates_ties() -> None:
    balancer = Balancer()
    balancer.started("a")
    balancer.started("a")
    balancer.started("b")
    assert balancer.choose("g", "least_in_flight", [A, B, C]).key == "c"
    balancer.started("c")
    balancer.started("c")
    assert balancer.choose("g", "least_in_flight", [A, B, C]).key == "b"
    for key in ("a", "a", "b", "c", "c"):
        balancer.ended(key)
    assert balancer.in_flight("a") == 0
    ties = {balancer.choose("g", "least_in_flight", [A, B, C]).key for _ in range(3)}
    assert ties == {"a", "b", "c"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cooldown_after_k_failures_then_over_with_time() -> None:
    clock = Clock()
    cool = Cooldowns(failures=3, seconds=30, max_seconds=300, clock=clock)
    assert cool.failed("a") is None and cool.failed("a") is None
    assert not cool.cooling("a")
    assert cool.failed("a") == 30
    assert cool.cooling("a") and not cool.cooling("b")
    clock.now += 29.9
    assert cool.cooling("a")
    clock.now += 0.2
    assert not cool.cooling("a")


def test_a_success_ends_the_streak() -> None:
    cool = Cooldowns(failures=2, seconds=30, clock=Clock())
    cool.failed("a")
    cool.succeeded("a")
    assert cool.failed("a") is None  # a fresh streak of one


def test_retry_after_and_refused_keys_cool_at_once_capped() -> None:
    clock = Clock()
    cool = Cooldowns(failures=5, seconds=30, max_seconds=60, clock=clock)
    assert cool.failed("a", retry_after=7) == 7
    assert cool.remaining("a") == pytest.approx(7)
    assert cool.failed("b", retry_after=3600) == 60  # never past the cap
    assert cool.failed("c", at_once=True) == 30
    assert cool.ends("a") < cool.ends("c") < cool.ends("b")


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    assert backoff_delay(0, 0.5, 8, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, 0.5, 8, rand=lambda: 1.0) == 4.0
    assert backoff_delay(10, 0.5, 8, rand=lambda: 1.0) == 8.0  # capped
    assert backoff_delay(3, 0.5, 8, rand=lambda: 0.25) == 1.0
    assert backoff_delay(100, 0.5, 8, rand=lambda: 0.0) == 0.0


def test_retry_after_header_reading() -> None:
    assert retry_after({"Retry-After": "7"}) == 7
    assert retry_after({"retry-after": "1.5"}) == 1.5
    assert retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after({"retry-after": "-3"}) is None
    assert retry_after({}) is None

"""The three strategies that spread requests over a model's deployments (or a route's targets).

All three choose among the slots they are handed (the router has already set aside those in
cooldown) and keep their state per group, a route name or a card id: a bounded set, fixed by the
catalog and the config file. The state is per process, like the cooldowns.

- ``round_robin``: each in turn.
- ``weighted``: smooth weighted round robin: over any run of total-weight picks each slot gets
  exactly its weight, interleaved (weights 5,1,1 give a a b a c a a, not a a a a a b c), and
  deterministic, so it is testable without a random seed.
- ``least_in_flight``: the slot whose deployment has the fewest edits running in this process;
  ties go round robin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar

Strategy = Literal["round_robin", "weighted", "least_in_flight"]
STRATEGIES: tuple[Strategy, ...] = ("round_robin", "weighted", "least_in_flight")


class Slot(Protocol):
    @property
    def key(self) -> str: ...  # unique within its group: weighted state is kept by it

    @property
    def deployment_key(self) -> str: ...  # where in-flight edits are counted

    @property
    def weight(self) -> int: ...


S = TypeVar("S", bound=Slot)


class Balancer:
    def __init__(self) -> None:
        self._cursor: dict[str, int] = {}
        self._current: dict[str, dict[str, int]] = {}
        self._in_flight: dict[str, int] = {}

    def choose(self, group: str, strategy: Strategy, slots: Sequence[S]) -> S:
        if not slots:
            raise ValueError("nothing to choose from")
        if len(slots) == 1:
            return slots[0]
        if strategy == "weighted":
            return self._weighted(group, slots)
        start = self._cursor.get(group, 0)
        self._cursor[group] = start + 1
        turn = [slots[(start + i) % len(slots)] for i in range(len(slots))]
        if strategy == "least_in_flight":
            return min(turn, key=lambda slot: self._in_flight.get(slot.deployment_key, 0))
        return turn[0]

    def _weighted(self, group: str, slots: Sequence[S]) -> S:
        current = self._current.setdefault(group, {})
        total = 0
        best: S | None = None
        for slot in slots:
            current[slot.key] = current.get(slot.key, 0) + slot.weight
            total += slot.weight
            if best is None or current[slot.key] > current[best.key]:
                best = slot
        assert best is not None
        current[best.key] -= total
        return best

    # -- in flight, counted around each attempt ------------------------------------------------
    def started(self, deployment_key: str) -> None:
        self._in_flight[deployment_key] = self._in_flight.get(deployment_key, 0) + 1

    def ended(self, deployment_key: str) -> None:
        left = self._in_flight.get(deployment_key, 0) - 1
        if left > 0:
            self._in_flight[deployment_key] = left
        else:
            self._in_flight.pop(deployment_key, None)

    def in_flight(self, deployment_key: str) -> int:
        return self._in_flight.get(deployment_key, 0)

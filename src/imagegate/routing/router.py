"""Choosing the deployment that serves a model.

Every deployment names its provider and, optionally, the cards it serves (Azure deployments
serve the ids the user chose; a config file's ``deployments`` entry the ``models`` it lists).
A card served by several deployments is balanced among them by a strategy (``balance.py``);
a route (``plan.py``) balances over every deployment of every one of its targets. Deployments
in cooldown (``cooldown.py``) are passed over while any other is available; when all of them
are cooling, the one whose rest ends first is still tried, so failures never make a model
unavailable by themselves. The retry loop that uses this is ``dispatch.py``.

The router owns the deployments' HTTP clients and closes them at shutdown.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from imagegate.catalog.cards import ModelCard
from imagegate.core.errors import ServiceUnavailable
from imagegate.core.redact import register_secret
from imagegate.providers.base import Deployment, EditJob
from imagegate.routing.balance import Balancer, Strategy
from imagegate.routing.cooldown import Cooldowns
from imagegate.routing.plan import Route, RoutingPlan


@dataclass(frozen=True, slots=True)
class Slot:
    """One place an attempt can go: a candidate job on one deployment that serves its card."""

    job: EditJob
    deployment: Deployment
    weight: int = 1

    @property
    def key(self) -> str:
        return f"{self.job.card.id}@{self.deployment.key}"

    @property
    def deployment_key(self) -> str:
        return self.deployment.key


class Router:
    def __init__(
        self,
        deployments: Iterable[Deployment],
        plan: RoutingPlan | None = None,
        *,
        cooldowns: Cooldowns | None = None,
        balancer: Balancer | None = None,
    ) -> None:
        self._deployments = list(deployments)
        self.plan = plan or RoutingPlan()
        self.cooldowns = cooldowns or Cooldowns()
        self.balancer = balancer or Balancer()
        for deployment in self._deployments:
            # An upstream's error may quote the key it was sent; scrub it wherever it shows.
            register_secret(deployment.secret())

    @property
    def strategy(self) -> Strategy:
        return self.plan.strategy

    def deployments(self, card: ModelCard) -> list[Deployment]:
        return [
            deployment
            for deployment in self._deployments
            if deployment.provider == card.provider
            and (not deployment.cards or card.id in deployment.cards)
        ]

    def serves(self, card: ModelCard) -> bool:
        return bool(self.deployments(card))

    def route(self, name: str) -> Route | None:
        return self.plan.routes.get(name)

    def fallbacks_of(self, card_id: str) -> tuple[str, ...]:
        return self.plan.fallbacks.get(card_id, ())

    def slots(self, jobs: Sequence[EditJob], weights: dict[str, int] | None = None) -> list[Slot]:
        """Every (job, deployment) pair of these candidate jobs, weighted by target weight
        times deployment weight."""
        weights = weights or {}
        return [
            Slot(job, deployment, weights.get(job.card.id, 1) * deployment.weight)
            for job in jobs
            for deployment in self.deployments(job.card)
        ]

    def choose(
        self, group: str, strategy: Strategy, slots: Sequence[Slot], tried: Collection[str]
    ) -> Slot:
        """The slot for the next attempt: one not in cooldown and not yet tried by this request
        if there is one, else any not in cooldown, else the one whose cooldown ends first.
        Deployments at their ``max_in_flight`` are passed over; if all are, 503."""
        open_ = [slot for slot in slots if not self._full(slot.deployment)]
        if not open_:
            raise ServiceUnavailable(
                "Every deployment of this model is at its max_in_flight; try again shortly.",
                code="deployments_busy",
                headers={"Retry-After": "1"},
            )
        ready = [slot for slot in open_ if not self.cooldowns.cooling(slot.deployment_key)]
        fresh = [slot for slot in ready if slot.deployment_key not in tried]
        pool = fresh or ready
        if not pool:
            return min(open_, key=lambda slot: self.cooldowns.ends(slot.deployment_key))
        return self.balancer.choose(group, strategy, pool)

    def _full(self, deployment: Deployment) -> bool:
        cap = deployment.max_in_flight
        return cap is not None and self.balancer.in_flight(deployment.key) >= cap

    async def aclose(self) -> None:
        for deployment in self._deployments:
            if deployment.client is not None:
                await deployment.client.aclose()

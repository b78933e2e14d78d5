"""Offer policy: how long an agent has to answer an offer, which offers are answered at
once, and what a missed offer does to the agent (docs/offer-policy.md).

Each key is looked up in the task's queue (`queues.<q>.offer`), then in its channel
(`channels.<ch>.offer`), key by key; a key set in neither falls back to the engine's
options (`reservation_timeout`; `auto_accept`, which answers every offer at once and
wins over everything here).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from omniroute.grammar import Expression

from .contexts import Contexts
from .errors import Problem
from .options import EngineOptions
from .spec import Deployment, OfferPolicy
from .state import Agent, Task

STAY = "stay"
NOT_READY = "not_ready"


@attrs.frozen
class OfferTerms:
    """How one offer is made: answered at once, or with a timeout (None: never)."""

    auto: bool
    timeout: float | None
    #: for the task's history (what `explain` shows): where the terms came from, when the
    #: deployment set them; None when they are the engine's options alone
    why: str | None = None


def default_terms(options: EngineOptions) -> OfferTerms:
    """The terms of every offer when the deployment sets no offer policy."""
    if options.auto_accept:
        return OfferTerms(True, None)
    return OfferTerms(False, options.reservation_timeout)


class OfferPolicies:
    """The offer policy of one deployment, for one engine."""

    def __init__(self, deployment: Deployment, options: EngineOptions, contexts: Contexts) -> None:
        self.deployment = deployment
        self.options = options
        self._contexts = contexts
        self._default = default_terms(options)
        self.active = any(q.offer is not None for q in deployment.queues.values()) or any(
            c.offer is not None for c in deployment.channel_settings.values()
        )

    def _policies(self, task: Task) -> Iterator[OfferPolicy]:
        """The task's queue's offer keys, then its channel's."""
        queue = self.deployment.queue_of(task)
        if queue is not None and queue.offer is not None:
            yield queue.offer
        channel = self.deployment.channel_settings.get(task.channel)
        if channel is not None and channel.offer is not None:
            yield channel.offer

    def terms(self, task: Task, agent: Agent) -> OfferTerms:
        """The terms of offering `task` to `agent` now."""
        if not self.active or self.options.auto_accept:
            return self._default
        for policy in self._policies(task):
            answer = policy.auto_answer
            if answer is None:
                continue
            if isinstance(answer, Expression):
                answer = answer.evaluate(self._contexts.expression_context(task, agent)) is True
            if answer:
                return OfferTerms(True, None, f"auto-answered ({policy.where}.auto_answer)")
            break
        for policy in self._policies(task):
            if policy.timeout is not None:
                why = f"reservation times out after {policy.timeout:g} s ({policy.where}.timeout)"
                return OfferTerms(False, policy.timeout, why)
        return OfferTerms(False, self.options.reservation_timeout)

    def on_timeout(self, task: Task) -> tuple[str, str | None]:
        """What a missed offer of `task` does to its agent, and the key path that says so
        (None: the default, `stay`)."""
        for policy in self._policies(task):
            if policy.on_timeout is not None:
                return policy.on_timeout, f"{policy.where}.on_timeout"
        return STAY, None


def offer_warnings(queue_policies: Iterable[OfferPolicy | None]) -> Iterator[Problem]:
    """Queue offer keys that can never apply: a `timeout` or `on_timeout` beside
    `auto_answer: true` (a queue's keys come first, so its offers never ring). A channel's
    may still apply, to queues that set auto_answer otherwise."""
    for policy in queue_policies:
        if policy is None or policy.auto_answer is not True:
            continue
        for key in ("timeout", "on_timeout"):
            if getattr(policy, key) is not None:
                yield Problem(
                    f"{policy.where}.{key}",
                    "never applies: auto_answer is true here, so these offers never ring; "
                    "fix: remove it, or make auto_answer an expression",
                    "warning",
                )

"""toggle_to_one: Twilio Flex's omni-channel capacity management.

An agent with a chat capacity above 1 and a chat backlog would otherwise be locked into
chat: each finished chat is replaced by the next, and the agent never qualifies for voice.
Right after an agent accepts a task (of any channel), if the tasks it holds on the
plugin's channel now fill its capacity there and that capacity is above 1, the capacity
drops to 1 and the previous value is remembered. When the agent accepts "the next piece
of work" (a task reserved after the drop; accepting a reservation made before it restores
nothing), or at logout, the remembered value comes back. A capacity of 1 the plugin did
not set is never touched, unless `default_max_capacity` is given: then a capacity of 1
with nothing remembered is taken for one the toggle lowered (as Twilio's feature does
when its local storage is empty) and restored to that value at the next acceptance. A
capacity the operator gives (`set_agent`, any channel) ends the toggle: the remembered
value is forgotten, so the operator's capacities stand.

It relies on workflow expressions that keep channels mutually exclusive, such as
`worker.channel.voice.available_capacity_percentage == 100` for chat work and
`worker.channel.chat.available_capacity_percentage == 100` for voice work; `omniroute
check` warns when a deployment enables the plugin without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from omniroute.core import EventHandler, PluginContext, Problem, checks, hookimpl
from omniroute.core.spec import Deployment
from omniroute.core.state import Agent, Reservation, Task

NAME = "toggle_to_one"


def _at_least_two(instance: Any, attribute: Any, value: int | None) -> None:
    if value is not None and value < 2:
        raise ValueError(f"must be at least 2 (a capacity to toggle down from), got {value}")


@attrs.frozen
class ToggleToOneSection:
    #: the channel whose capacity toggles between its configured value and 1
    channel: str = "chat"
    #: the capacity to restore to when none was remembered (Twilio's "default max
    #: capacity"); None: a capacity of 1 the plugin did not lower is left alone
    default_max_capacity: int | None = attrs.field(default=None, validator=_at_least_two)


@hookimpl
def omniroute_config_section() -> type:
    return ToggleToOneSection


@hookimpl
def omniroute_validate(deployment: Deployment, section: ToggleToOneSection) -> Iterable[Problem]:
    channel = section.channel
    if deployment.channels and channel not in deployment.channels:
        yield Problem(
            f"{NAME}.channel",
            f"unknown channel {channel!r} (channels: {', '.join(deployment.channels)})",
        )
        return
    references = {
        ref
        for _, expression in checks.deployment_expressions(deployment)
        for ref in expression.references
    }
    guard = f"worker.channel.{channel}.available_capacity_percentage"
    others = [other for other in deployment.channels if other != channel]
    if guard not in references:
        yield Problem(
            NAME,
            f"no expression reads {guard}: work of other channels can still reach an agent busy on "
            f"{channel}; add `{guard} == 100` to the targets of that work",
            "warning",
        )
    if others and not any(
        f"worker.channel.{other}.available_capacity_percentage" in references for other in others
    ):
        yield Problem(
            NAME,
            f"no expression reads worker.channel.<other channel>.available_capacity_percentage: {channel} work "
            f"can still reach an agent busy elsewhere; add `worker.channel.{others[0]}.available_capacity_percentage == 100` "
            f"to the targets of {channel} work",
            "warning",
        )


def _offer_to(task: Task, agent_id: str) -> Reservation | None:
    """The reservation by which the agent holds the task: a transfer to it pending, else
    the task's own (accepting the transfer later makes it the task's reservation)."""
    transfer = task.transfer
    if transfer is not None and transfer.agent == agent_id:
        return transfer
    return task.reservation


@hookimpl
def omniroute_event_handlers(
    context: PluginContext, section: ToggleToOneSection
) -> Iterable[EventHandler]:
    channel = section.channel
    default = section.default_max_capacity

    def restore(agent: Agent) -> bool:
        mine = context.agent_state(agent)
        mine.pop("reserved_before", None)
        remembered = mine.pop("remembered_capacity", None)
        if remembered is None:
            return False
        context.set_capacity(agent, channel, remembered)
        return True

    def reserved_before_the_drop(task: Task, agent: Agent) -> bool:
        reservation = task.reservation
        before = context.agent_state(agent).get("reserved_before", ())
        return reservation is None or reservation.id in before

    def accepted(task: Task | None, agent: Agent | None) -> None:
        if agent is None or task is None:
            return
        mine = context.agent_state(agent)
        if "remembered_capacity" in mine:
            # Only "that work", the next assignment after the drop, restores the capacity:
            # a chat reserved together with the one that filled the channel does not.
            if not reserved_before_the_drop(task, agent):
                restore(agent)
            return
        if (
            default is not None
            and agent.capacity.get(channel, 0) == 1
            and not mine.get("operator_set")
        ):
            context.set_capacity(agent, channel, default)
            return
        capacity = agent.capacity.get(channel, 0)
        if capacity > 1 and agent.held_count(channel) >= capacity:
            held = [context.task(task_id) for ids in agent.held.values() for task_id in ids]
            mine["remembered_capacity"] = capacity
            mine["reserved_before"] = sorted(
                offer.id
                for held_task in held
                if held_task is not None and (offer := _offer_to(held_task, agent.id)) is not None
            )
            mine.pop("operator_set", None)
            context.set_capacity(agent, channel, 1)

    def logout(_task: Task | None, agent: Agent | None) -> None:
        if agent is not None:
            restore(agent)

    def capacity_changed(_task: Task | None, agent: Agent | None) -> None:
        # The operator's capacities win: a value remembered from before would otherwise
        # come back at the next acceptance, over what the operator just gave (issue 12,
        # item 9: chat capacity set 0 -> 1, then one pass offered and accepted two chats).
        if agent is not None:
            mine = context.agent_state(agent)
            mine.pop("remembered_capacity", None)
            mine.pop("reserved_before", None)
            mine["operator_set"] = True

    return [
        EventHandler("accepted", accepted),
        EventHandler("logout", logout),
        EventHandler("capacity_changed", capacity_changed),
    ]

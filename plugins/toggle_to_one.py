"""toggle_to_one: Twilio Flex's omni-channel capacity management.

An agent with a chat capacity above 1 and a chat backlog would otherwise be locked into
chat: each finished chat is replaced by the next, and the agent never qualifies for voice.
Right after an agent accepts a task (of any channel), if the tasks it holds on the
plugin's channel now fill its capacity there and that capacity is above 1, the capacity
drops to 1 and the previous value is remembered. On the agent's next acceptance of any
task, or at logout, the remembered value comes back. A capacity of 1 the plugin did not
set is never touched.

It relies on workflow expressions that keep channels mutually exclusive, such as
`worker.channel.voice.available_capacity_percentage == 100` for chat work and
`worker.channel.chat.available_capacity_percentage == 100` for voice work; `omniroute
check` warns when a deployment enables the plugin without them.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from omniroute.core import EventHandler, PluginContext, Problem, checks, hookimpl
from omniroute.core.spec import Deployment
from omniroute.core.state import Agent, Task

NAME = "toggle_to_one"


@attrs.frozen
class ToggleToOneSection:
    #: the channel whose capacity toggles between its configured value and 1
    channel: str = "chat"


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


@hookimpl
def omniroute_event_handlers(
    context: PluginContext, section: ToggleToOneSection
) -> Iterable[EventHandler]:
    channel = section.channel

    def restore(agent: Agent) -> bool:
        remembered = context.agent_state(agent).pop("remembered_capacity", None)
        if remembered is None:
            return False
        context.set_capacity(agent, channel, remembered)
        return True

    def accepted(_task: Task | None, agent: Agent | None) -> None:
        if agent is None or restore(agent):
            return
        capacity = agent.capacity.get(channel, 0)
        if capacity > 1 and agent.held_count(channel) >= capacity:
            context.agent_state(agent)["remembered_capacity"] = capacity
            context.set_capacity(agent, channel, 1)

    def logout(_task: Task | None, agent: Agent | None) -> None:
        if agent is not None:
            restore(agent)

    return [EventHandler("accepted", accepted), EventHandler("logout", logout)]

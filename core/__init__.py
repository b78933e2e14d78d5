"""The routing core: deployment config, pluggy hooks, the pipeline and the engine.

>>> from omniroute.core import Engine, EngineOptions, load_deployment
>>> engine = Engine(load_deployment({"queues": {"support": {}}}), options=EngineOptions(auto_accept=True))
>>> _ = engine.add_agent("ana", channels={"chat": 2})
>>> _ = engine.create_task("c1", channel="chat")
>>> [(offer.task, offer.agent, offer.at) for offer in engine.offers]
[('c1', 'ana', 0.0)]
"""

from . import checks, events
from .components import (
    ArrivalCheck,
    EventHandler,
    Filter,
    Indexing,
    Preference,
    RankingKey,
    TaskOrdering,
)
from .config import load_deployment, read_mapping_file
from .context import PluginContext
from .decisions import Candidate, Decision
from .engine import DEFAULT_START, Engine, EngineOptions
from .errors import (
    ConcurrentWriteError,
    DeploymentError,
    EventError,
    OmnirouteError,
    PluginError,
    Problem,
)
from .events import Outcome
from .hookspecs import hookimpl
from .spec import Deployment, ServiceLevel
from .state import Agent, Offer, Reservation, Task

__all__ = [
    "DEFAULT_START",
    "Agent",
    "ArrivalCheck",
    "Candidate",
    "ConcurrentWriteError",
    "Decision",
    "Deployment",
    "DeploymentError",
    "Engine",
    "EngineOptions",
    "EventError",
    "EventHandler",
    "Filter",
    "Indexing",
    "Offer",
    "OmnirouteError",
    "Outcome",
    "PluginContext",
    "PluginError",
    "Preference",
    "Problem",
    "RankingKey",
    "Reservation",
    "ServiceLevel",
    "Task",
    "TaskOrdering",
    "checks",
    "events",
    "hookimpl",
    "load_deployment",
    "read_mapping_file",
]

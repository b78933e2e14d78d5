"""Workflow filters that test one attribute for text are decided by a dictionary lookup;
the placements must be those of evaluating each filter in turn."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute.core import Engine, load_deployment
from omniroute.core.workflow import literal_table

FILTERS = [
    {"expression": 'skill == "sales"', "targets": [{"queue": "sales"}]},
    {"expression": 'task.skill = "support"', "targets": [{"queue": "support"}]},
    {"expression": 'skill == "sales"', "targets": [{"queue": "support"}]},
    {"expression": 'skill == ""', "targets": [{"queue": "support"}]},
]


def deployment(extra: list[dict[str, Any]]) -> Any:
    return load_deployment(
        {
            "queues": {"sales": {}, "support": {}, "other": {}},
            "workflow": {"filters": FILTERS + extra, "default_queue": "other"},
        }
    )


LOOKED_UP = deployment([])
# A filter no dictionary can decide sends the same workflow down the expressions.
EVALUATED = deployment([{"expression": "1 == 2", "targets": [{"queue": "sales"}]}])


def test_only_literal_filters_make_a_table() -> None:
    assert LOOKED_UP.workflow is not None
    assert EVALUATED.workflow is not None
    assert literal_table(LOOKED_UP.workflow.filters) == ("skill", {"sales": 0, "support": 1, "": 3})
    assert literal_table(EVALUATED.workflow.filters) is None


values = st.one_of(
    st.sampled_from(["sales", "support", "", "Sales", "sales "]),
    st.integers(),
    st.none(),
    st.lists(st.sampled_from(["sales", "support"]), max_size=2),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(skills=st.lists(st.one_of(st.just("missing"), values), min_size=1, max_size=8))
def test_a_lookup_places_tasks_as_the_expressions_do(skills: list[Any]) -> None:
    placed = []
    for source in (LOOKED_UP, EVALUATED):
        engine = Engine(source)
        for number, skill in enumerate(skills):
            attributes = {} if skill == "missing" else {"skill": skill}
            engine.create_task(f"t{number}", "chat", attributes)
        placed.append([(task.queue, task.filter_index) for task in engine.tasks])
    assert placed[0] == placed[1]


def test_a_lookup_on_a_built_in_name_reads_the_built_in() -> None:
    """`task.channel` is the task's channel even when an attribute has that name."""
    by_channel = load_deployment(
        {
            "channels": {"chat": {}, "voice": {}},
            "queues": {"chats": {}, "calls": {}, "other": {}},
            "workflow": {
                "filters": [
                    {"expression": 'channel == "chat"', "targets": [{"queue": "chats"}]},
                    {"expression": 'channel == "voice"', "targets": [{"queue": "calls"}]},
                ],
                "default_queue": "other",
            },
        }
    )
    assert by_channel.workflow is not None
    assert literal_table(by_channel.workflow.filters) is not None
    engine = Engine(by_channel)
    engine.create_task("c1", "chat", {"channel": "voice"})
    engine.create_task("v1", "voice", {"skill": "sales"})
    assert [engine.task("c1").queue, engine.task("v1").queue] == ["chats", "calls"]

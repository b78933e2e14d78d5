"""Agent attributes take a new stamp on every change, so caches keyed on it cannot go stale."""

from __future__ import annotations

import copy
import json
import pickle

from omniroute.core.state import Agent, Attributes


def agent() -> Agent:
    return Agent("ana", 0, {"skills": {"sales": 1}}, (), {"chat": 1})


def test_an_agent_converts_plain_attributes_and_keeps_them_equal() -> None:
    ana = agent()
    assert isinstance(ana.attributes, Attributes)
    assert ana.attributes == {"skills": {"sales": 1}}
    assert json.loads(json.dumps(ana.attributes)) == {"skills": {"sales": 1}}
    assert {**ana.attributes} == {"skills": {"sales": 1}}


def test_every_change_takes_a_new_stamp() -> None:
    ana = agent()
    seen = {ana.attributes.stamp}
    changes = [
        lambda a: a.__setitem__("level", 2),
        lambda a: a.pop("level"),
        lambda a: a.setdefault("team", "north"),
        lambda a: a.update(level=3),
        lambda a: a.__delitem__("level"),
        lambda a: a.__ior__({"x": 1}),
        lambda a: a.popitem(),
        lambda a: a.clear(),
    ]
    for change in changes:
        change(ana.attributes)
        assert ana.attributes.stamp not in seen
        seen.add(ana.attributes.stamp)


def test_replaced_and_copied_attributes_take_new_stamps() -> None:
    ana = agent()
    first = ana.attributes.stamp
    saved = ana.saved()
    # an edit in an event replaces the attributes (the undo log keeps the old ones as is)
    ana.attributes = Attributes({**ana.attributes, "skills": {"sales": 5}})
    ana.put_back(saved)
    assert ana.attributes == {"skills": {"sales": 1}}
    assert ana.attributes.stamp not in (first, 0)
    clone = ana.copy()
    assert isinstance(clone.attributes, Attributes)
    assert clone.attributes.stamp != ana.attributes.stamp
    assert type(ana.attributes.copy()) is dict
    for again in (copy.deepcopy(ana.attributes), pickle.loads(pickle.dumps(ana.attributes))):
        assert isinstance(again, Attributes)
        assert again == ana.attributes

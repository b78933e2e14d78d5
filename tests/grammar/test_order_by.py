"""order_by clauses: sort keys where a missing attribute sorts last in both directions."""

from __future__ import annotations

from typing import Any

from omniroute.grammar import compile_order_by


def _sorted_ids(source: str, workers: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    order = compile_order_by(source, **kwargs)
    return [w["id"] for w in sorted(workers, key=lambda w: order.key({"worker": w}))]


WORKERS = [
    {"id": "a", "level": 2, "name": "zoe"},
    {"id": "b", "level": 5, "name": "amy"},
    {"id": "c", "name": "bob"},
    {"id": "d", "level": 5, "name": "carl"},
    {"id": "e", "level": None, "name": "dan"},
]


def test_descending_puts_missing_last() -> None:
    assert _sorted_ids("worker.level DESC", WORKERS) == ["b", "d", "a", "c", "e"]


def test_ascending_puts_missing_last() -> None:
    assert _sorted_ids("worker.level ASC", WORKERS) == ["a", "b", "d", "c", "e"]
    assert _sorted_ids("worker.level", WORKERS) == ["a", "b", "d", "c", "e"]


def test_ties_fall_to_the_next_clause() -> None:
    assert _sorted_ids("worker.level DESC, worker.name DESC", WORKERS) == ["d", "b", "a", "e", "c"]
    assert _sorted_ids("worker.level desc, worker.name asc", WORKERS)[:2] == ["b", "d"]


def test_default_root_and_references() -> None:
    order = compile_order_by("level DESC, worker.name", default_root="worker")
    assert order.references == {"worker.level", "worker.name"}
    assert order.clauses == (("worker.level", True), ("worker.name", False))
    assert _sorted_ids("level DESC", WORKERS, default_root="worker")[0] == "b"


def test_mixed_kinds_sort_totally() -> None:
    workers = [
        {"id": "n", "v": 3},
        {"id": "s", "v": "x"},
        {"id": "b", "v": True},
        {"id": "l", "v": [1]},
        {"id": "o", "v": {"k": 1}},
    ]
    assert _sorted_ids("worker.v ASC", workers) == ["n", "s", "b", "l", "o"]
    assert _sorted_ids("worker.v DESC", workers)[-2:] == ["l", "o"]
    assert _sorted_ids("worker.v DESC", workers)[:3] == ["n", "s", "b"]


def test_nested_and_indexed_paths() -> None:
    workers = [
        {"id": "a", "scores": [1, 9], "channel": {"chat": {"free": 1}}},
        {"id": "b", "scores": [3], "channel": {"chat": {"free": 2}}},
    ]
    assert _sorted_ids("worker.scores[1] DESC", workers) == ["a", "b"]
    assert _sorted_ids("worker.channel.chat.free DESC", workers) == ["b", "a"]


def test_nan_sorts_as_missing_in_both_directions() -> None:
    for direction in ("ASC", "DESC"):
        order = compile_order_by(f"worker.level {direction}")
        agents = [{"id": "nan", "level": float("nan")}, {"id": "two", "level": 2}, {"id": "none"}]
        ranked = sorted(agents, key=lambda agent: order.key({"worker": agent}))
        assert ranked[0]["id"] == "two"
        assert order.key({"worker": agents[0]}) == order.key({"worker": agents[2]})

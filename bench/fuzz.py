"""A seeded fuzzer for every input omniroute reads (issue 12).

    python -m bench.fuzz [--seed 1] [--expressions 20000] [--files 2000] [--streams 50] [--json]

Four families, each from `random.Random(f"{seed}/{family}")`, so a run is reproducible and
any failing input can be regenerated from its seed and index:

- **expressions, grammar-aware**: sentences of the language with long references, long
  and huge numbers, deep nesting, big arrays, every operator spelling, NUL and odd
  characters in strings; each that compiles is evaluated fast and safe on hostile
  contexts (NaN, infinity, 5,000-digit numbers and numeric strings, deep data), and the
  two must agree;
- **expressions, byte-level**: the same sentences mutated character by character;
- **files**: deployments, scenarios and workloads built from the examples, with values
  replaced by NaN, infinity, huge or negative numbers, deep nesting, odd keys and
  wrong kinds, written as YAML or JSON (TOML from templates), then sometimes mutated as
  bytes or re-encoded; loaded, and run when they load (small ones only);
- **event streams**: random calls of the public Engine methods on a deployment with
  every built-in plugin.

An outcome is a kind of result (`compiled`, `ExpressionError`, `loaded`, `DeploymentError`,
...). Anything else is a *finding*: `crash:<exception>`, `disagree`, `slow`. The CI suite
(tests/hardening/test_fuzz.py) runs small counts and requires no findings; this command
runs as many as asked and prints the counts.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from omniroute.contrib.scenario import load_scenario, run
from omniroute.contrib.simulator import simulate
from omniroute.contrib.workload import load_workload
from omniroute.core import (
    DeploymentError,
    Engine,
    EngineOptions,
    OmnirouteError,
    load_deployment,
)
from omniroute.grammar import ExpressionError, compile_expression
from omniroute.grammar.parser import (
    MAX_ARRAY_LENGTH,
    MAX_DEPTH,
    MAX_NUMBER_LENGTH,
    MAX_PATH_LENGTH,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: An input that takes longer than this is a finding.
SLOW_SECONDS = 10.0

Outcomes = collections.Counter[str]

# --- expressions ----------------------------------------------------------------------------

ROOTS = ["task", "worker", "workers", "taskrouter"]
NAMES = ["a", "b", "x", "level", "skills", "language", "$v", "_", "channel", "in_", "notes"]
COMPARE = ["==", "=", "!=", "<", "<=", ">", ">=", "HAS", "has", ">-", "CONTAINS", "contains"]
ODD_CHARACTERS = ["\0", "\n", "\r", "\t", "é", "\u202e", "\ud800", "😀", "\\", "{", "}", "%", "'"]


class ExpressionMaker:
    """Sentences of the language, most ordinary, some at or over a limit."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def space(self) -> str:
        return self.rng.choice([" ", " ", " ", "  ", "\n", "\t", " \r\n "])

    def keyword(self, word: str) -> str:
        choice = self.rng.random()
        if choice < 0.6:
            return word
        if choice < 0.8:
            return word.lower()
        return "".join(self.rng.choice((c.upper(), c.lower())) for c in word)

    def path_length(self) -> int:
        roll = self.rng.random()
        if roll < 0.85:
            return self.rng.randint(1, 4)
        if roll < 0.95:
            return self.rng.randint(MAX_PATH_LENGTH - 3, MAX_PATH_LENGTH + 3)
        return self.rng.choice([199, 400, 3000])

    def reference(self) -> str:
        parts = [self.rng.choice(ROOTS) if self.rng.random() < 0.8 else self.rng.choice(NAMES)]
        for _ in range(self.path_length() - 1):
            if self.rng.random() < 0.15:
                index = self.rng.choice(["0", "1", "10", "9" * self.rng.randint(1, 120)])
                parts.append(f"[{index}]")
            else:
                parts.append("." + self.rng.choice(NAMES))
        return "".join(parts)

    def number(self) -> str:
        roll = self.rng.random()
        sign = "-" if self.rng.random() < 0.2 else ""
        if roll < 0.7:
            return sign + str(self.rng.randint(0, 1000))
        if roll < 0.85:
            return f"{sign}{self.rng.randint(0, 99)}.{self.rng.randint(0, 99)}"
        digits = self.rng.choice(
            [MAX_NUMBER_LENGTH - 1, MAX_NUMBER_LENGTH, MAX_NUMBER_LENGTH + 1, 400, 4400]
        )
        text = "".join(self.rng.choice("0123456789") for _ in range(digits))
        if self.rng.random() < 0.5:
            cut = self.rng.randint(1, max(1, digits - 1))
            text = text[:cut] + "." + text[cut:]
        return sign + text

    def string(self) -> str:
        quote = self.rng.choice(['"', "'"])
        length = self.rng.choice([0, 1, 3, 8, 30])
        alphabet = [*"abc 5-_.", *ODD_CHARACTERS]
        text = "".join(self.rng.choice(alphabet) for _ in range(length))
        return quote + text.replace(quote, "").replace("\n", " ") + quote

    def literal(self, arrays: bool = True) -> str:
        roll = self.rng.random()
        if roll < 0.35:
            return self.number()
        if roll < 0.7:
            return self.string()
        if roll < 0.85 or not arrays:
            return self.keyword(self.rng.choice(["TRUE", "FALSE", "NULL"]))
        size = self.rng.choice(
            [0, 1, 3, 5, MAX_ARRAY_LENGTH, MAX_ARRAY_LENGTH + 1]
            if self.rng.random() < 0.05
            else [0, 1, 2, 3, 5]
        )
        items = ",".join(self.literal(arrays=self.rng.random() < 0.1) for _ in range(size))
        return f"[{items}]"

    def operand(self) -> str:
        return self.reference() if self.rng.random() < 0.6 else self.literal()

    def comparison(self) -> str:
        roll = self.rng.random()
        s = self.space
        if roll < 0.6:
            return f"{self.operand()}{s()}{self.rng.choice(COMPARE)}{s()}{self.operand()}"
        if roll < 0.75:
            op = self.rng.choice([self.keyword("IN"), "<-"])
            return f"{self.operand()}{s()}{op}{s()}{self.operand()}"
        if roll < 0.85:
            return f"{self.operand()}{s()}{self.keyword('NOT')} {self.keyword('IN')}{s()}{self.operand()}"
        return self.operand()

    def condition(self, depth: int) -> str:
        if depth <= 0 or self.rng.random() < 0.35:
            return self.comparison()
        roll = self.rng.random()
        s = self.space
        if roll < 0.2:
            return f"{self.rng.choice([self.keyword('NOT') + ' ', '!'])}{self.condition(depth - 1)}"
        if roll < 0.4:
            return f"({s()}{self.condition(depth - 1)}{s()})"
        op = self.rng.choice([self.keyword("AND"), "&&", self.keyword("OR"), "||"])
        parts = [self.condition(depth - 1) for _ in range(self.rng.randint(2, 4))]
        return f"{s()}{op}{s()}".join(parts)

    def expression(self) -> str:
        roll = self.rng.random()
        if roll < 0.9:
            return self.condition(self.rng.randint(0, 4))
        if roll < 0.95:  # at and over the depth limit
            depth = self.rng.randint(MAX_DEPTH - 3, MAX_DEPTH + 3)
            return "NOT " * depth + self.comparison()
        depth = self.rng.randint(MAX_DEPTH - 3, MAX_DEPTH + 3)
        return "(" * depth + self.comparison() + ")" * depth

    def mutate(self, text: str) -> str:
        """Byte-level: characters inserted, deleted, replaced, or the text cut."""
        chars = list(text)
        for _ in range(self.rng.randint(1, 6)):
            roll = self.rng.random()
            position = self.rng.randint(0, len(chars))
            if roll < 0.4:
                alphabet = [*"()[].,'\"=!<>-&|0123456789 ", *ODD_CHARACTERS]
                chars.insert(position, self.rng.choice(alphabet))
            elif roll < 0.7 and chars:
                del chars[min(position, len(chars) - 1)]
            elif roll < 0.9 and chars:
                chars[min(position, len(chars) - 1)] = chr(self.rng.randint(0, 0x2FF))
            else:
                chars = chars[:position]
        if self.rng.random() < 0.05:
            chars = list(bytes(self.rng.randint(0, 255) for _ in range(30)).decode("latin-1"))
        return "".join(chars)


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON-like value of the kinds that once broke evaluation, and ordinary ones."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice([math.nan, math.inf, -math.inf])
    if roll < 0.14:
        return rng.choice([10**5000, -(10**400), 2**63, 10**4300])
    if roll < 0.2:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([300, 4301, 5000])))
        return rng.choice([digits, "-" + digits, digits + ".5", "0." + digits])
    if roll < 0.26:
        return rng.choice(["a\0b", "\ud800", "", "5", "-3.25", "x" * 10_000])
    if roll < 0.5:
        return rng.choice([None, True, False, 0, 1, -1, 3, 2.5, "a", "b", "en", "es"])
    if roll < 0.6 and depth < 3:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.65:
        value: Any = []
        for _ in range(rng.choice([50, 500])):
            value = [value]
        return value
    if depth < 3:
        return {rng.choice(NAMES): hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return rng.randint(-5, 5)


def hostile_context(rng: random.Random) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for root in ROOTS:
        if rng.random() < 0.8:
            context[root] = (
                {name: hostile_value(rng) for name in rng.sample(NAMES, rng.randint(0, 6))}
                if rng.random() < 0.85
                else hostile_value(rng)
            )
    return context


def fuzz_expressions(
    seed: int, count: int, contexts_each: int = 4, outcomes: Outcomes | None = None
) -> Outcomes:
    """Grammar-aware and byte-level expressions; counts outcomes, findings included."""
    outcomes = outcomes if outcomes is not None else collections.Counter()
    rng = random.Random(f"{seed}/expressions")
    maker = ExpressionMaker(rng)
    for index in range(count):
        text = maker.expression()
        family = "grammar"
        if rng.random() < 0.3:
            text, family = maker.mutate(text), "bytes"
        root = rng.choice([None, None, "task", "worker"])
        started = time.perf_counter()
        try:
            expression = compile_expression(text, default_root=root)
        except ExpressionError:
            outcomes[f"expression/{family}/ExpressionError"] += 1
            continue
        except Exception as error:
            outcomes[f"FINDING crash:{type(error).__name__} compiling #{index}"] += 1
            continue
        outcomes[f"expression/{family}/compiled"] += 1
        for _ in range(contexts_each):
            context = hostile_context(rng)
            try:
                fast = expression.evaluate(context)
                safe = expression.evaluate_safely(context)
            except Exception as error:
                outcomes[f"FINDING crash:{type(error).__name__} evaluating #{index}"] += 1
                break
            outcomes["expression/evaluations"] += 1
            if fast is not safe or not isinstance(fast, bool):
                outcomes[f"FINDING disagree #{index}"] += 1
        if time.perf_counter() - started > SLOW_SECONDS:
            outcomes[f"FINDING slow expression #{index}"] += 1
    return outcomes


# --- files ------------------------------------------------------------------------------------


def _example(name: str) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _paths(item, (*prefix, position))


def _replace(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if isinstance(data, dict):
        return {**data, head: _replace(data[head], tuple(rest), new)}
    copy = list(data)
    copy[head] = _replace(copy[head], tuple(rest), new)
    return copy


def file_value(rng: random.Random) -> Any:
    """A replacement value for a key of a file: the classes of issue 12, and plain ones."""
    roll = rng.random()
    if roll < 0.15:
        return rng.choice([math.nan, math.inf, -math.inf])
    if roll < 0.25:
        return rng.choice([0, -1, -0.5, 2**53, 2**53 + 1, 10**30, 1e300, 99999999999])
    if roll < 0.35:
        return rng.choice(["0", "-5s", "99999999999d", ".inf", "1e400", "2026-02-30", "x @ y"])
    if roll < 0.42:
        nested: Any = "x"
        for _ in range(rng.choice([63, 64, 65, 200])):
            nested = [nested] if rng.random() < 0.5 else {"k": nested}
        return nested
    if roll < 0.5:
        return {rng.choice(["a\0b", "c\nd", "x @ y", "é", "", " "]): rng.choice([1, "x", None])}
    if roll < 0.6:
        return rng.choice([None, True, [], {}, "", [1, 2], {"a": 1}])
    if roll < 0.7:
        return rng.choice([1, 5, 30, "30s", "5m", "2h", 0.5, 100, "300/h", "5/m"])
    return hostile_value(rng)


def _sized(rng: random.Random, family: str, data: dict[str, Any]) -> dict[str, Any]:
    """Counts, rates and durations at and over the limits of core/limits.py."""
    if family == "workload":
        roll = rng.random()
        if roll < 0.4:
            agents = [
                {**data["agents"][0], "count": rng.choice([1, 1000, 100_000, 100_001, 10**9])}
            ]
            return {**data, "agents": agents}
        if roll < 0.7:
            rate = rng.choice(["1000/s", "1001/s", "99999999999/s", "1/s", "3600000"])
            return {**data, "traffic": [{**data["traffic"][0], "rate": rate}]}
        return {**data, "duration": rng.choice([3155760000, 3155760001, "100d", 0, -1])}
    if family == "scenario":
        count = rng.choice([1, 1000, 1_000_000, 1_000_001, 10**9])
        stream = {"at": 0, "every": 1, "count": count, "create": {"id": "s{n}", "channel": "chat"}}
        return {**data, "events": [*data.get("events", []), stream]}
    return data


def _dump(rng: random.Random, data: Any, family: str) -> tuple[str, bytes]:
    roll = rng.random()
    if roll < 0.5:
        text = yaml.safe_dump(data, allow_unicode=rng.random() < 0.5)
        suffix = ".yaml"
    else:
        text = json.dumps(data, ensure_ascii=rng.random() < 0.5, default=str)
        suffix = ".json"
    raw = text.encode("utf-8", errors="surrogatepass")
    roll = rng.random()
    if roll < 0.1:
        raw = text.encode("utf-16")
    elif roll < 0.15:
        raw = text.encode("latin-1", errors="replace")
    elif roll < 0.3:
        chars = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            if not chars:
                break
            position = rng.randrange(len(chars))
            chars[position] = rng.choice([0, 0xFF, 0x80, ord("["), ord("{"), ord(":"), ord('"')])
        raw = bytes(chars)
    elif roll < 0.35:
        raw = raw[: rng.randint(0, len(raw))]
    return suffix, raw


TOML_TEMPLATES = [
    'plugins = ["off_hours"]\n[queues.q]\ntarget_workers = "1 == 1"\n[off_hours.calendars.c]\nweekly = {{mon = "{v}"}}\n',
    '[queues.q]\n[workflow]\ndefault_queue = "q"\n[[workflow.filters]]\nexpression = "1==1"\ntargets = [{{queue = "q", timeout = {v}}}]\n',
    "[queues.{v}]\n",
]
TOML_VALUES = ["nan", "inf", "-inf", "9" * 5000, "[" * 5000, "1979-05-27T07:32:00Z", '"x"', "1.5"]


def fuzz_files(seed: int, count: int, outcomes: Outcomes | None = None) -> Outcomes:
    """Deployments, scenarios and workloads with hostile values, loaded and (if small) run."""
    outcomes = outcomes if outcomes is not None else collections.Counter()
    rng = random.Random(f"{seed}/files")
    bases: list[tuple[str, dict[str, Any]]] = [
        ("deployment", _example("contact-center/deployment.yaml")),
        ("deployment", _example("capacity_share/deployment.yaml")),
        ("deployment", _example("off_hours/deployment.yaml")),
        ("deployment", _example("weighted_cascade/deployment.yaml")),
        ("scenario", _inline(_example("contact-center/decline-reroute.yaml"), "contact-center")),
        ("scenario", _inline(_example("off_hours/holiday.yaml"), "off_hours")),
        ("workload", _small_workload(_example("contact-center/workload.yaml"))),
    ]
    with tempfile.TemporaryDirectory(prefix="omniroute-fuzz-") as folder:
        for index in range(count):
            family, base = rng.choice(bases)
            if rng.random() < 0.08:
                family = "deployment"
                suffix = ".toml"
                raw = rng.choice(TOML_TEMPLATES).format(v=rng.choice(TOML_VALUES)).encode()
            else:
                data = base
                if rng.random() < 0.15:
                    data = _sized(rng, family, data)
                for _ in range(rng.choice([0, 1, 1, 2, 3])):
                    path = rng.choice(list(_paths(data)))
                    data = _replace(data, path, file_value(rng))
                try:
                    suffix, raw = _dump(rng, data, family)
                except (ValueError, TypeError, RecursionError, yaml.YAMLError):
                    outcomes["file/unwritable"] += 1  # the generator's limit, not ours
                    continue
            path = Path(folder) / f"{family}-{index}{suffix}"
            path.write_bytes(raw)
            _load_and_run(family, path, index, outcomes)
    return outcomes


def _inline(scenario: dict[str, Any], folder: str) -> dict[str, Any]:
    return {**scenario, "deployment": _example(f"{folder}/{scenario['deployment']}")}


def _small_workload(workload: dict[str, Any]) -> dict[str, Any]:
    return {
        **workload,
        "deployment": _example("contact-center/deployment.yaml"),
        "duration": "30m",
        "agents": [{**agent, "count": 2} for agent in workload["agents"]],
    }


def _load_and_run(family: str, path: Path, index: int, outcomes: Outcomes) -> None:
    started = time.perf_counter()
    loaders: dict[str, Callable[[Path], Any]] = {
        "deployment": load_deployment,
        "scenario": load_scenario,
        "workload": load_workload,
    }
    try:
        loaded = loaders[family](path)
    except DeploymentError:
        outcomes[f"file/{family}/DeploymentError"] += 1
    except Exception as error:
        outcomes[f"FINDING crash:{type(error).__name__} loading {family} #{index}"] += 1
    else:
        outcomes[f"file/{family}/loaded"] += 1
        try:
            if family == "scenario":
                run(loaded)
                outcomes["file/scenario/ran"] += 1
            elif (
                family == "workload"
                and _expected_arrivals(loaded) < 3000
                and len(loaded.agents) <= 250
            ):
                # Big rosters are the engine's scale, measured by bench/scale.py; the
                # point here is that they load or are refused. (A roster of 1,000 agents
                # simulates 30 minutes in about 4 s: near SLOW_SECONDS on a loaded
                # machine, which would make the finding a matter of load, not of the file.)
                simulate(loaded)
                outcomes["file/workload/simulated"] += 1
        except OmnirouteError:
            outcomes[f"file/{family}/OmnirouteError running"] += 1
        except Exception as error:
            outcomes[f"FINDING crash:{type(error).__name__} running {family} #{index}"] += 1
    if time.perf_counter() - started > SLOW_SECONDS:
        outcomes[f"FINDING slow {family} #{index}"] += 1


def _expected_arrivals(workload: Any) -> float:
    return float(
        sum(
            sum(stream.rates) * workload.duration / len(stream.rates) for stream in workload.streams
        )
    )


# --- event streams --------------------------------------------------------------------------


def fuzz_streams(
    seed: int, count: int, steps: int = 150, outcomes: Outcomes | None = None
) -> Outcomes:
    """Random calls of the public Engine methods, every built-in plugin active.

    Each call either applies or raises an OmnirouteError; anything else is a finding.
    """
    outcomes = outcomes if outcomes is not None else collections.Counter()
    rng = random.Random(f"{seed}/streams")
    deployment = load_deployment(EXAMPLES / "contact-center" / "deployment.yaml")
    channels = [*deployment.channels, "fax"]
    groups = ["in_house", "bpo", "overflow", "nobody"]
    for stream in range(count):
        engine = Engine(
            deployment,
            options=EngineOptions(
                auto_accept=rng.random() < 0.5,
                reservation_timeout=rng.choice([None, 5.0, 60.0]),
            ),
        )
        agents: list[str] = []
        tasks: list[str] = []
        started = time.perf_counter()
        for step in range(steps):
            action = rng.choice(
                [
                    "add_agent",
                    "create_task",
                    "create_task",
                    "accept",
                    "decline",
                    "complete",
                    "advance",
                ]
            )
            try:
                if action == "add_agent":
                    agent_id = f"a{len(agents) + rng.choice([0, 0, -1])}"
                    capacity = {
                        rng.choice(channels): rng.choice([0, 1, 2, 5])
                        for _ in range(rng.randint(0, 3))
                    }
                    attributes = {"skills": {"sales": rng.randint(0, 3)}, "x": hostile_value(rng)}
                    engine.add_agent(agent_id, capacity, attributes, tuple(rng.sample(groups, 1)))
                    agents.append(agent_id)
                elif action == "create_task":
                    task_id = f"t{len(tasks) + rng.choice([0, 0, -1])}"
                    attributes = {
                        "type": rng.choice(["sales", "support", hostile_value(rng)]),
                        "language": rng.choice(["en", "es", None]),
                    }
                    engine.create_task(
                        task_id, rng.choice(channels), attributes, rng.randint(-2, 5)
                    )
                    tasks.append(task_id)
                elif action == "advance":
                    engine.advance_to(engine.now + rng.choice([0.0, 1.0, 30.0, 600.0]))
                else:
                    target = rng.choice(tasks) if tasks and rng.random() < 0.9 else "nobody"
                    getattr(engine, action)(target)
                outcomes[f"stream/{action}/ok"] += 1
            except OmnirouteError:
                outcomes[f"stream/{action}/OmnirouteError"] += 1
            except Exception as error:
                outcomes[f"FINDING crash:{type(error).__name__} stream #{stream} step {step}"] += 1
                break
        if time.perf_counter() - started > SLOW_SECONDS:
            outcomes[f"FINDING slow stream #{stream}"] += 1
    return outcomes


def findings(outcomes: Outcomes) -> list[str]:
    return sorted(key for key in outcomes if key.startswith("FINDING"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--expressions", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=2_000)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    outcomes: Outcomes = collections.Counter()
    fuzz_expressions(args.seed, args.expressions, outcomes=outcomes)
    fuzz_files(args.seed, args.files, outcomes=outcomes)
    fuzz_streams(args.seed, args.streams, outcomes=outcomes)
    elapsed = time.perf_counter() - started
    if args.json:
        print(
            json.dumps(
                {"seed": args.seed, "seconds": round(elapsed, 1), **dict(sorted(outcomes.items()))}
            )
        )
    else:
        print(f"seed {args.seed}, {elapsed:.1f} s")
        for key, value in sorted(outcomes.items()):
            print(f"{value:>10}  {key}")
    return 1 if findings(outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

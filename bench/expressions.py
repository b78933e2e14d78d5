"""Expression evaluation: omniroute against a hand-written lambda and three peers.

    python -m bench.expressions [--contexts 1000] [--repeat 5]

Every evaluator gets the same 1,000 varied contexts (missing attributes included) and must
agree with omniroute on each of them before it is timed; a peer that cannot express an
expression is reported as such. Prints microseconds per evaluation and ratios.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from omniroute.grammar import KNOWN_ROOTS, compile_expression
from omniroute.grammar.expression import _compile_cached

Context = dict[str, Any]

LANGUAGES = ["en", "es", "pt", "fr", "de"]
SKILLS = ["support", "billing", "sales", "tech", "vip"]


def make_contexts(count: int, seed: int = 1) -> list[Context]:
    rng = random.Random(seed)
    contexts = []
    for _ in range(count):
        worker: dict[str, Any] = {
            "languages": rng.sample(LANGUAGES, rng.randint(1, 3)),
            "skills": rng.sample(SKILLS, rng.randint(0, 3)),
            "region": rng.choice(["emea", "amer", "apac"]),
            "status": rng.choice(["ready", "ready", "not_ready"]),
            "channel": {
                "chat": {"available_capacity_percentage": rng.choice([0, 25, 50, 75, 100])}
            },
        }
        if rng.random() < 0.85:  # some agents have no level at all
            worker["level"] = rng.randint(1, 5)
        task = {
            "type": rng.choice(["support", "support", "sales", "vip"]),
            "language": rng.choice(LANGUAGES),
            "priority": rng.randint(0, 5),
            "channel": rng.choice(["chat", "chat", "voice"]),
            "age": rng.randint(0, 900),
        }
        contexts.append({"task": task, "worker": worker})
    return contexts


def _get(mapping: dict[str, Any], *path: str) -> Any:
    for key in path:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping


TEN_CLAUSES = (
    'task.type == "support" AND task.language IN worker.languages AND worker.level >= 2'
    ' AND worker.skills HAS "billing" AND task.priority > 1 AND worker.region != "apac"'
    ' AND task.channel == "chat" AND worker.channel.chat.available_capacity_percentage >= 25'
    ' AND task.age < 600 AND worker.status == "ready"'
)

# name -> (omniroute source, hand-written lambda, simpleeval source, rule-engine source, CEL source)
CASES: dict[str, tuple[str, Callable[[Context], bool], str, str, str]] = {
    "skill check (2 clauses)": (
        'worker.skills HAS "support" AND worker.level >= 3',
        lambda c: "support" in c["worker"]["skills"] and c["worker"].get("level", 0) >= 3,
        '"support" in worker["skills"] and worker.get("level", 0) >= 3',
        "'support' in worker['skills'] and worker&['level'] >= 3",
        '"support" in worker.skills && has(worker.level) && worker.level >= 3',
    ),
    "IN/OR mix": (
        'task.language IN ["es", "pt"] OR (task.type == "vip" AND task.language IN worker.languages)',
        lambda c: (
            c["task"]["language"] in ("es", "pt")
            or (c["task"]["type"] == "vip" and c["task"]["language"] in c["worker"]["languages"])
        ),
        'task["language"] in ("es", "pt") or (task["type"] == "vip" and task["language"] in worker["languages"])',
        "task['language'] in ['es', 'pt'] or (task['type'] == 'vip' and task['language'] in worker['languages'])",
        'task.language in ["es", "pt"] || (task.type == "vip" && task.language in worker.languages)',
    ),
    "nested capacity compare": (
        "worker.channel.chat.available_capacity_percentage >= 50",
        lambda c: c["worker"]["channel"]["chat"]["available_capacity_percentage"] >= 50,
        'worker["channel"]["chat"]["available_capacity_percentage"] >= 50',
        "worker['channel']['chat']['available_capacity_percentage'] >= 50",
        "worker.channel.chat.available_capacity_percentage >= 50",
    ),
    "ten-clause chain": (
        TEN_CLAUSES,
        lambda c: (
            (t := c["task"])["type"] == "support"
            and t["language"] in (w := c["worker"])["languages"]
            and w.get("level", 0) >= 2
            and "billing" in w["skills"]
            and t["priority"] > 1
            and w["region"] != "apac"
            and t["channel"] == "chat"
            and w["channel"]["chat"]["available_capacity_percentage"] >= 25
            and t["age"] < 600
            and w["status"] == "ready"
        ),
        'task["type"] == "support" and task["language"] in worker["languages"]'
        ' and worker.get("level", 0) >= 2 and "billing" in worker["skills"] and task["priority"] > 1'
        ' and worker["region"] != "apac" and task["channel"] == "chat"'
        ' and worker["channel"]["chat"]["available_capacity_percentage"] >= 25'
        ' and task["age"] < 600 and worker["status"] == "ready"',
        "task['type'] == 'support' and task['language'] in worker['languages']"
        " and worker&['level'] >= 2 and 'billing' in worker['skills'] and task['priority'] > 1"
        " and worker['region'] != 'apac' and task['channel'] == 'chat'"
        " and worker['channel']['chat']['available_capacity_percentage'] >= 25"
        " and task['age'] < 600 and worker['status'] == 'ready'",
        'task.type == "support" && task.language in worker.languages'
        " && has(worker.level) && worker.level >= 2"
        ' && "billing" in worker.skills && task.priority > 1 && worker.region != "apac"'
        ' && task.channel == "chat" && worker.channel.chat.available_capacity_percentage >= 25'
        ' && task.age < 600 && worker.status == "ready"',
    ),
}


def time_per_call(function: Callable[[Any], Any], inputs: list[Any], repeat: int) -> float:
    """Best-of-`repeat` seconds per call over all inputs, looping enough to last ~50 ms."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            for item in inputs:
                function(item)
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            break
        loops *= 2
    best = elapsed
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(loops):
            for item in inputs:
                function(item)
        best = min(best, time.perf_counter() - start)
    return best / (loops * len(inputs))


def _peer_simpleeval(source: str) -> Callable[[Context], bool] | None:
    try:
        from simpleeval import EvalWithCompoundTypes
    except ImportError:
        return None
    evaluator = EvalWithCompoundTypes(functions={})
    evaluator.functions = {}
    parsed = evaluator.parse(source)

    def run(context: Context) -> bool:
        evaluator.names = context
        try:
            return bool(evaluator.eval(source, previously_parsed=parsed))
        except Exception:
            return False

    return run


def _peer_rule_engine(source: str) -> Callable[[Context], bool] | None:
    try:
        import rule_engine
    except ImportError:
        return None
    rule = rule_engine.Rule(source, context=rule_engine.Context(default_value=None))

    def run(context: Context) -> bool:
        try:
            return bool(rule.matches(context))
        except rule_engine.errors.EngineError:
            return False

    return run


def _peer_cel(source: str) -> tuple[Callable[[Any], bool], Callable[[Context], Any]] | None:
    """CEL needs its own value types: contexts are converted once, before timing."""
    try:
        import celpy
    except ImportError:
        return None
    environment = celpy.Environment()
    program = environment.program(environment.compile(source))

    def run(activation: Any) -> bool:
        try:
            return bool(program.evaluate(activation))
        except Exception:
            return False

    def convert(context: Context) -> Any:
        return {name: celpy.json_to_cel(value) for name, value in context.items()}

    return run, convert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--skip-peers", action="store_true", help="time omniroute and the lambda only"
    )
    args = parser.parse_args(argv)
    contexts = make_contexts(args.contexts)
    print(f"Python {sys.version.split()[0]}; {len(contexts)} contexts; best of {args.repeat}\n")

    header = f"{'expression':<26}{'omniroute':>11}{'lambda':>9}{'simpleeval':>12}{'rule-engine':>13}{'cel-python':>12}"
    print("microseconds per evaluation")
    print(header)
    ratios_lambda, ratios_simpleeval = [], []
    for name, (source, hand_written, simple_source, rule_source, cel_source) in CASES.items():
        expression = compile_expression(source)
        ours = expression.evaluate
        expected = [ours(context) for context in contexts]

        def guarded(context: Context, fn: Callable[[Context], bool] = hand_written) -> bool:
            try:
                return fn(context)
            except (KeyError, TypeError):
                return False

        results = {"omniroute": time_per_call(ours, contexts, args.repeat)}
        lambda_answers = [guarded(context) for context in contexts]
        assert lambda_answers == expected, f"the lambda disagrees with omniroute on {name}"
        results["lambda"] = time_per_call(hand_written, contexts, args.repeat)
        peers: dict[str, float | None] = {
            "simpleeval": None,
            "rule-engine": None,
            "cel-python": None,
        }
        if not args.skip_peers:
            for peer, build in (
                ("simpleeval", _peer_simpleeval),
                ("rule-engine", _peer_rule_engine),
            ):
                runner = build(simple_source if peer == "simpleeval" else rule_source)
                if runner is None:
                    continue
                if [runner(context) for context in contexts] != expected:
                    print(f"  note: {peer} disagrees with omniroute on {name}; not timed")
                    continue
                peers[peer] = time_per_call(runner, contexts, args.repeat)
            cel = _peer_cel(cel_source)
            if cel is not None:
                run, convert = cel
                activations = [convert(context) for context in contexts]
                if [run(activation) for activation in activations] == expected:
                    peers["cel-python"] = time_per_call(run, activations, max(1, args.repeat // 2))
                else:
                    print(f"  note: cel-python disagrees with omniroute on {name}; not timed")

        def cell(value: float | None, width: int) -> str:
            return f"{value * 1e6:>{width}.3f}" if value is not None else f"{'-':>{width}}"

        print(
            f"{name:<26}{cell(results['omniroute'], 11)}{cell(results['lambda'], 9)}"
            f"{cell(peers['simpleeval'], 12)}{cell(peers['rule-engine'], 13)}{cell(peers['cel-python'], 12)}"
        )
        ratios_lambda.append(results["omniroute"] / results["lambda"])
        if peers["simpleeval"] is not None:
            ratios_simpleeval.append(peers["simpleeval"] / results["omniroute"])

    def geomean(values: list[float]) -> float:
        return math.exp(statistics.fmean(math.log(value) for value in values))

    print()
    print(
        f"omniroute / lambda, geometric mean:      {geomean(ratios_lambda):.2f}x  (target <= 1.5x)"
    )
    if ratios_simpleeval:
        print(
            f"simpleeval / omniroute, geometric mean:  {geomean(ratios_simpleeval):.1f}x  (target >= 20x)"
        )

    ten = CASES["ten-clause chain"][0]
    cold = time_per_call(
        lambda _: _compile_cached.__wrapped__(ten, None, KNOWN_ROOTS), [None], args.repeat
    )
    compile_expression(ten)
    cached = time_per_call(lambda _: compile_expression(ten), [None] * 100, args.repeat)
    print()
    print(f"compile, ten-clause, cold:    {cold * 1e6:8.1f} us  (target < 300 us)")
    print(f"compile, ten-clause, cached:  {cached * 1e6:8.3f} us  (target < 2 us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Issue 12, item 10: the cost of an event must not grow with the waiting tasks.

One agent (busy with one chat, so nothing more can be offered) and N chats created one
after another, with the default options (decision records, undo log). Prints the time
to create them and the time per event for the first and the last tenth.

    python -m bench.backlog --tasks 2000 [--options default|simulator]
"""

from __future__ import annotations

import argparse
import time

from omniroute.core import Engine, EngineOptions, load_deployment

DEPLOYMENT = {"channels": {"chat": {}}, "queues": {"support": {}}}


def run(tasks: int, simulator: bool) -> dict[str, float]:
    options = (
        EngineOptions(record_decisions=False, transactional=False) if simulator else EngineOptions()
    )
    engine = Engine(load_deployment(DEPLOYMENT), options=options)
    engine.add_agent("a1", {"chat": 1})
    times = []
    start = time.perf_counter()
    for number in range(tasks):
        before = time.perf_counter()
        engine.create_task(f"t{number}", "chat")
        times.append(time.perf_counter() - before)
    total = time.perf_counter() - start
    tenth = max(1, tasks // 10)
    return {
        "total_s": round(total, 3),
        "first_tenth_ms_per_event": round(1000 * sum(times[:tenth]) / tenth, 3),
        "last_tenth_ms_per_event": round(1000 * sum(times[-tenth:]) / tenth, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--options", choices=["default", "simulator"], default="default")
    args = parser.parse_args()
    print(
        args.tasks, "tasks,", args.options, "options:", run(args.tasks, args.options == "simulator")
    )


if __name__ == "__main__":
    main()

"""Same decisions as another build: `omniroute simulate --json`, byte for byte.

    python -m bench.same_decisions --baseline /path/to/other/venv/bin/omniroute

Runs the contact-center demo and 15-minute runs of both bench.scale workloads at 1,000
agents through this checkout's `omniroute` and through the baseline's (a build of an
earlier commit, installed in its own virtual environment), and compares the outputs with
`cmp`. Prints one line per workload and exits 1 if any differs.

Three things are left out, each because the baseline predates it, and none changes a
decision or a figure: the `schema` field every `--json` output carries since the CLI
conventions; the demo's deployment-wide `service_level` (issue 11), which the baseline
cannot read (its value, 80% in 20 s, is the workload's own); and the keys issue 11 added
to the output (`service_level_target`, `service_level_met`, ...): keys of this build's
output that the baseline's lacks at the same place are dropped and listed, so a figure
or decision that changed still shows.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scale import workload

ROOT = Path(__file__).parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the other build's omniroute command")
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--agents", type=int, default=1000)
    args = parser.parse_args(argv)
    ours = shutil.which("omniroute") or str(Path(sys.executable).parent / "omniroute")
    with tempfile.TemporaryDirectory() as folder:
        inputs = {"contact-center demo": demo_without_service_level(Path(folder))}
        for plugin in ("least_occupancy", "capacity_share"):
            path = Path(folder) / f"scale-{plugin}.json"
            path.write_text(json.dumps(workload(args.agents, args.minutes, plugin)))
            inputs[f"bench.scale {plugin}, {args.agents} agents, {args.minutes:g} min"] = path
        differ = 0
        for label, path in inputs.items():
            outputs = []
            seconds = []
            for command in (ours, args.baseline):
                out = Path(folder) / f"{len(outputs)}-{path.stem}.json"
                start = time.perf_counter()
                with out.open("w") as sink:
                    subprocess.run(
                        [command, "simulate", str(path), "--json"],
                        stdout=sink,
                        stderr=subprocess.PIPE,  # warnings of missing service levels
                        check=True,
                    )
                seconds.append(time.perf_counter() - start)
                outputs.append(out)
            loaded = [json.loads(output.read_text()) for output in outputs]
            for figures in loaded:
                figures.pop("schema", None)
            added: set[str] = set()
            loaded[0] = only_keys_of(loaded[0], loaded[1], "", added)
            for output, figures in zip(outputs, loaded, strict=True):
                output.write_text(json.dumps(figures, indent=2) + "\n")
            same = subprocess.run(["cmp", "-s", *map(str, outputs)]).returncode == 0
            differ += not same
            print(
                f"{'identical' if same else 'DIFFERENT'}  {label}  "
                f"({outputs[0].stat().st_size} bytes; this build {seconds[0]:.1f} s, "
                f"baseline {seconds[1]:.1f} s)"
            )
            if added:
                print(f"    keys only this build has, left out: {', '.join(sorted(added))}")
    return 1 if differ else 0


def demo_without_service_level(folder: Path) -> Path:
    """A copy of the contact-center demo without its top-level `service_level` (issue 11),
    which the baseline cannot read; it is measured, never routed on, so no decision and
    no figure at the workload's 20 s threshold changes."""
    copy = folder / "contact-center"
    shutil.copytree(ROOT / "examples" / "contact-center", copy)
    deployment = copy / "deployment.yaml"
    lines = deployment.read_text().splitlines(keepends=True)
    deployment.write_text("".join(line for line in lines if not line.startswith("service_level:")))
    return copy / "workload.yaml"


def only_keys_of(ours: Any, theirs: Any, path: str, added: set[str]) -> Any:
    """`ours` without the mapping keys that `theirs` lacks at the same place (their paths,
    with list positions as [], go in `added`)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        kept = {}
        for key, value in ours.items():
            where = f"{path}.{key}" if path else key
            if key in theirs:
                kept[key] = only_keys_of(value, theirs[key], where, added)
            else:
                added.add(re.sub(r"^by_(queue|channel|group)\.[^.]+", r"by_\1.<name>", where))
        return kept
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [only_keys_of(a, b, f"{path}[]", added) for a, b in zip(ours, theirs, strict=True)]
    return ours


if __name__ == "__main__":
    raise SystemExit(main())

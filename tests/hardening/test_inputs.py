"""Issue 12: hostile and careless files end in a clear problem with file and key path.

One test per class of finding: bad bytes and syntax (item 6), NaN and infinity (4),
durations that make no sense (3), sizes (5), every problem of a section at once and
duplicate keys (7), odd key names (11), and the CLI's handling of all of these.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from omniroute.contrib.scenario import load_scenario, run_file
from omniroute.contrib.simulator import simulate
from omniroute.contrib.workload import load_workload
from omniroute.core import DeploymentError, load_deployment, read_mapping_file
from omniroute.core.limits import MAX_AGENTS, MAX_EVENTS, MAX_NESTING
from tests.contrib.helpers import run_cli

QUEUE = {"queues": {"q": {}}}


def _problems(call: Any) -> str:
    with pytest.raises(DeploymentError) as caught:
        call()
    text = str(caught.value)
    assert "Traceback" not in text
    return text


# --- item 6: any bytes end in data or a DeploymentError naming the file ------------------

BAD_FILES: list[tuple[str, bytes, str]] = [
    ("latin1.yaml", "a: café\n".encode("latin-1"), "not UTF-8 text: byte 0xe9 at line 1"),
    ("binary.json", bytes(range(256)), "not UTF-8 text"),
    ("date.yaml", b"start: 2026-02-30\n", "day is out of range for month (line 1, column 8)"),
    ("bigint.yaml", b"x: " + b"9" * 5000 + b"\n", "not valid YAML"),
    ("bigint.json", b'{"x": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ("bigint.toml", b"x = " + b"9" * 5000 + b"\n", "not valid TOML"),
    ("listkey.yaml", b"? [a, b] : 1\n", "a key must be text or a number, not list"),
    ("deep.json", b"[" * 5000 + b"]" * 5000, "nests deeper than"),
    ("deep.toml", b"a = " + b"[" * 5000 + b"]" * 5000, "nests deeper than"),
    ("deep.yaml", b"a: " + b"[" * 100_000 + b"]" * 100_000, "nests deeper than"),
    ("deepish.json", b"[" * (MAX_NESTING + 5) + b"]" * (MAX_NESTING + 5), "nests deeper than"),
    ("dup.json", b'{"queues": {}, "queues": {}}', "key 'queues' is given twice"),
    ("dup.yaml", b"queues: {}\nqueues: {}\n", "key 'queues' is given twice"),
    ("tag.yaml", b"a: !!timestamp x\n", "not valid YAML"),
    ("python.yaml", b"a: !!python/object/apply:os.system [ls]\n", "not valid YAML"),
    ("nul.json", b'{"a": "\x00"}', "not valid JSON"),
    ("weird.txt", b"a: 1\n", "unknown file type '.txt'"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES, ids=[n for n, _, _ in BAD_FILES])
def test_a_bad_file_is_a_problem_naming_the_file(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    text = _problems(lambda: read_mapping_file(path))
    assert text.startswith(str(path))
    assert message in text


def test_an_endless_file_stops_at_the_size_limit(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert "larger than 16 MiB" in _problems(lambda: read_mapping_file(link))


def test_a_folder_or_missing_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert "cannot read the file" in _problems(lambda: read_mapping_file(tmp_path / "dir.yaml"))
    assert "cannot read the file" in _problems(lambda: read_mapping_file(tmp_path / "no.yaml"))


def test_keys_with_nul_and_newline_keep_their_paths(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text('queues:\n  "a\\0b": {task_order: up}\n  "c\\nd": {bogus: 1}\n')
    text = _problems(lambda: load_deployment(path))
    assert 'queues["a\\x00b"].task_order: must be one of' in text
    assert 'queues["c\\nd"].bogus: unknown key' in text


def test_a_queue_named_with_an_at_sign_keeps_its_path() -> None:
    text = _problems(
        lambda: load_deployment({"queues": {"x @ y": {"target_workers": "a ==", "task_ordr": 1}}})
    )
    assert 'queues["x @ y"].task_ordr: unknown key' in text
    assert 'queues["x @ y"].target_workers: expression ends too early' in text


# --- item 7: duplicate keys, merge keys, every problem of a section ----------------------


def test_yaml_merge_keys_work(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "base: &base {target_workers: 'skills HAS \"x\"'}\n"
        "queues:\n  a:\n    <<: *base\n    task_order: lifo\n  b: {<<: *base}\n"
    )
    raw = read_mapping_file(path)
    assert raw["queues"]["a"] == {"target_workers": 'skills HAS "x"', "task_order": "lifo"}
    assert raw["queues"]["b"] == {"target_workers": 'skills HAS "x"'}


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {
                "capacity_share": {
                    "channels": {"chat": {"share": 200, "required_spare": -1, "max_per_agent": -3}}
                }
            },
            ["chat.share:", "chat.required_spare:", "chat.max_per_agent:"],
        ),
        (
            {"least_occupancy": {"reroute_delay": -1, "max_concurrent": {"q": 0, "r": -1}}},
            ["reroute_delay:", "max_concurrent.q:", "max_concurrent.r:"],
        ),
        (
            {
                "off_hours": {
                    "calendars": {
                        "c": {
                            "timezone": "Mars/Base",
                            "weekly": {"mon": "x", "tue": "25:00-26:00"},
                            "holidays": ["2026-02-30"],
                        }
                    }
                }
            },
            ["c.timezone:", "c.weekly.mon:", "c.weekly.tue:", "c.holidays[0]:"],
        ),
        (
            {
                "weighted_cascade": {
                    "queues": {"q": {"primary": {"a": 20}, "secondary": {"b": 50}, "max_wait": -1}}
                }
            },
            [
                "q.max_wait:",
                "must sum to 100, not 20",
                "sum to 100, not 50",
            ],
        ),
    ],
)
def test_a_plugin_section_reports_every_problem(
    section: dict[str, Any], expected: list[str]
) -> None:
    (plugin,) = section
    text = _problems(lambda: load_deployment({**QUEUE, "plugins": [plugin], **section}))
    for part in expected:
        assert part in text, (part, text)


# --- issue 11: problems that hid each other ------------------------------------------------

HIDING = {
    "plugins": [
        "capacity_share",
        "least_occupancy",
        "weighted_cascade",
        "toggle_to_one",
        "off_hours",
    ],
    "channels": {"chat": {}, "callback": {}},
    "queues": {"q": {"target_workers": "x ==", "profile": "nope", "task_order": "up"}},
    "capacity_share": {"profiles": {"vip": {"channel": "chat", "shar": 25}}},
    "least_occupancy": {"reroute": 3, "max_concurrent": {"q": 0, "other": 2}},
    "weighted_cascade": {
        "queues": {
            "q": {"primary": {"a": 50}},
            "zz": {"primary": {"a": 100}, "secondary": {"b": 100}},
        }
    },
    "toggle_to_one": {"channel": "sms", "default_max": 2},
    "off_hours": {"queues": {"zz": {"calendar": "nothing"}}},
}


def test_no_problem_hides_another() -> None:
    """An unknown key in a capacity_share profile hid the error about a channel without
    defaults; any error anywhere hid every plugin's own checks. Each plugin's section
    here has a shape problem and a problem only its check finds; the queue has a bad
    expression and a bad key."""
    text = _problems(lambda: load_deployment(HIDING, name="hiding"))
    for part in [
        "capacity_share.profiles.vip.shar: unknown key",
        "capacity_share.channels.callback: channel 'callback' has no Bright Pattern default",
        "queues.q.profile: unknown capacity_share profile 'nope'",
        "least_occupancy.reroute: unknown key",
        "least_occupancy.max_concurrent.q: must be at least 1, got 0",
        "least_occupancy.max_concurrent.other: unknown queue 'other'",
        "weighted_cascade.queues.q: primary: percentages must sum to 100, not 50",
        "weighted_cascade.queues.zz: unknown queue 'zz'",
        "toggle_to_one.default_max: unknown key",
        "toggle_to_one.channel: unknown channel 'sms'",
        "off_hours.queues.zz: unknown queue 'zz'",
        "off_hours.queues.zz.calendar: unknown calendar 'nothing'",
        "queues.q.target_workers: expression ends too early",
        "queues.q.task_order: must be one of 'fifo', 'lifo', got 'up'",
    ]:
        assert part in text, (part, text)
    assert "required key is missing" not in text
    assert text.startswith("hiding: 14 problems")


# --- items 3 and 4: every number finite, every duration sensible ---------------------------

NOT_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", NOT_FINITE, ids=str)
@pytest.mark.parametrize(
    ("where", "deployment"),
    [
        (
            "workflow.filters[0].targets[0].timeout",
            lambda v: {
                **QUEUE,
                "workflow": {
                    "filters": [{"expression": "1==1", "targets": [{"queue": "q", "timeout": v}]}]
                },
            },
        ),
        (
            "least_occupancy.reroute_delay",
            lambda v: {
                **QUEUE,
                "plugins": ["least_occupancy"],
                "least_occupancy": {"reroute_delay": v},
            },
        ),
        (
            "weighted_cascade.queues.q.primary.a",
            lambda v: {
                **QUEUE,
                "plugins": ["weighted_cascade"],
                "weighted_cascade": {"queues": {"q": {"primary": {"a": v, "b": 50}}}},
            },
        ),
        (
            "capacity_share.channels.chat.share",
            lambda v: {
                **QUEUE,
                "plugins": ["capacity_share"],
                "capacity_share": {"channels": {"chat": {"share": v}}},
            },
        ),
    ],
)
def test_nan_and_infinity_are_refused_in_deployments(
    where: str, deployment: Any, value: float
) -> None:
    text = _problems(lambda: load_deployment(deployment(value)))
    assert f"{where}: expected a finite number" in text


@pytest.mark.parametrize("spelling", [".nan", ".inf", "-.inf", ".NaN"])
def test_yaml_nan_and_infinity_are_refused_at_their_path(tmp_path: Path, spelling: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        f"queues: {{q: {{}}}}\nworkflow:\n  filters:\n    - {{expression: '1==1', targets: [{{queue: q, timeout: {spelling}}}]}}\n"
    )
    assert "workflow.filters[0].targets[0].timeout: expected a finite number" in _problems(
        lambda: load_deployment(path)
    )


def _scenario(tmp_path: Path, options: str = "", events: str = "[]", expect: str = "{}") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\ndeployment: {{queues: {{q: {{}}}}}}\nagents: [{{id: a, channels: {{chat: 1}}}}]\n"
        f"options: {{{options}}}\nevents: {events}\nexpect: {expect}\n"
    )
    return path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("reservation_timeout: 0", "options.reservation_timeout: must be a positive duration"),
        ("reservation_timeout: -5", "options.reservation_timeout: a duration cannot be negative"),
        ("reservation_timeout: .nan", "options.reservation_timeout: expected a finite number"),
        ("until: .inf", "options.until: expected a finite number"),
        ("until: 1.0e+300", "options.until: a duration may be at most"),
    ],
)
def test_scenario_options_must_make_sense(tmp_path: Path, options: str, message: str) -> None:
    assert message in _problems(lambda: load_scenario(_scenario(tmp_path, options)))


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{share: [{queue: q, groups: {g: 0.5}, tolerance: .nan}]}", "expected a finite number"),
        (
            "{share: [{queue: q, groups: {g: 0.5}, tolerance: 2}]}",
            "share[0].tolerance: must be a fraction",
        ),
        ("{share: [{queue: q, groups: {g: 1.5}}]}", "share[0].groups.g: must be a fraction"),
    ],
)
def test_share_expectations_must_make_sense(tmp_path: Path, expect: str, message: str) -> None:
    assert message in _problems(lambda: load_scenario(_scenario(tmp_path, expect=expect)))


def test_an_evaluation_window_of_zero_is_refused() -> None:
    section = {"queues": {"q": {"max_wait": "1m", "evaluation_window": 0}}}
    text = _problems(
        lambda: load_deployment({**QUEUE, "plugins": ["off_hours"], "off_hours": section})
    )
    assert "off_hours.queues.q.evaluation_window: must be a positive duration" in text


def test_at_of_infinity_is_refused(tmp_path: Path) -> None:
    path = _scenario(tmp_path, events="[{at: .inf, create: {id: c1, channel: chat}}]")
    assert "events[0].at: expected a finite number" in _problems(lambda: load_scenario(path))


WORKLOAD = {
    "deployment": {"queues": {"q": {}}},
    "duration": "1h",
    "agents": [{"count": 2, "channels": {"chat": 1}}],
    "traffic": [{"channel": "chat", "rate": "10/h", "handle_time": "1m"}],
}


def _workload(**changes: Any) -> dict[str, Any]:
    traffic = {**WORKLOAD["traffic"][0], **changes.pop("traffic", {})}  # type: ignore[index]
    return {**WORKLOAD, **changes, "traffic": [traffic]}


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        (_workload(duration=math.nan), "duration: expected a finite number"),
        (_workload(duration=0), "duration: must be a positive duration"),
        (_workload(duration=math.inf), "duration: expected a finite number"),
        (_workload(traffic={"rate": math.inf}), "traffic[0].rate: expected a finite number"),
        (_workload(traffic={"rate": "99999999999/s"}), "traffic[0].rate: a rate may be at most"),
        (_workload(traffic={"rate": "9" * 400 + "/s"}), "traffic[0].rate: expected a rate such as"),
        (_workload(traffic={"handle_time": {"exponential": math.inf}}), "expected a finite number"),
        (_workload(traffic={"handle_time": {"exponential": "99999999999d"}}), "at most"),
        (
            _workload(traffic={"handle_time": {"lognormal": {"mean": "1s", "sd": "100d"}}}),
            "sd may be at most 1000 times the mean",
        ),
        (
            _workload(traffic={"attributes": {"language": {"es": math.nan, "en": 1}}}),
            "traffic[0].attributes.language.es: expected a finite number",
        ),
        (_workload(seed=10**30), "seed: a whole number must be between"),
        (
            _workload(traffic={"attributes": {"language": {"es": 1e308, "en": 1e308}}}),
            "traffic[0].attributes.language: the weights add up to infinity",
        ),
    ],
)
def test_workload_numbers_are_finite_and_in_range(workload: dict[str, Any], message: str) -> None:
    assert message in _problems(lambda: load_workload(workload))


# --- item 5: sizes are refused up front ---------------------------------------------------


def test_a_billion_agents_is_refused_before_expanding() -> None:
    workload = _workload(agents=[{"count": 10**9, "channels": {"chat": 1}}])
    assert f"the limit is {MAX_AGENTS}" in _problems(lambda: load_workload(workload))


def test_a_billion_events_is_refused_before_expanding(tmp_path: Path) -> None:
    events = "[{at: 0, every: 1, count: 1000000000, create: {id: 'c{n}', channel: chat}}]"
    text = _problems(lambda: load_scenario(_scenario(tmp_path, events=events)))
    assert f"more than {MAX_EVENTS}" in text


def test_rates_implying_billions_of_arrivals_are_refused() -> None:
    workload = _workload(duration="3000d", traffic={"rate": "1000/s"})
    assert "the limit is 10000000" in _problems(lambda: load_workload(workload))


# --- item 11: the simulator's figures with nothing answered, and its JSON ---------------


def test_nothing_answered_gives_null_figures(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workload = _workload(agents=[{"count": 1, "channels": {"voice": 1}}])
    result = simulate(load_workload(workload))
    figures = result.figures()
    assert figures["answered"] == 0
    assert figures["interactions"] > 0
    assert figures["service_level"] is None
    assert figures["mean_wait"] is None
    path = tmp_path / "w.json"
    path.write_text(json.dumps(workload))
    code, out, _ = run_cli(capsys, "simulate", str(path), "--json")
    assert code == 0
    parsed = json.loads(out, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert parsed["service_level"] is None
    code, out, _ = run_cli(capsys, "simulate", str(path))
    assert "no answered interactions" in out


def test_plot_neither_follows_links_nor_overwrites(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps(WORKLOAD))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    charts = tmp_path / "charts"
    charts.mkdir()
    (charts / "wait-distribution.png").symlink_to(victim)
    code, _, err = run_cli(capsys, "simulate", str(path), "--plot", str(charts))
    assert code == 2
    assert "wait-distribution.png already exist" in err
    assert victim.read_text() == "precious"
    code, _, err = run_cli(capsys, "simulate", str(path), "--plot", str(charts), "--overwrite")
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not (charts / "wait-distribution.png").is_symlink()


# --- item 6: in `omniroute test DIR`, a bad file fails alone ----------------------------


def test_every_kind_of_bad_file_fails_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name, data, _ in BAD_FILES:
        if name.endswith((".yaml", ".json", ".toml")):
            (tmp_path / name).write_bytes(data)
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "fine.yaml").write_text(
        "name: fine\ndeployment: {}\nevents: []\nexpect: {offers: []}\n"
    )
    code, out, err = run_cli(capsys, "test", str(tmp_path))
    assert code == 1
    assert "PASS  fine" in out
    assert "Traceback" not in out + err
    assert "internal error" not in out + err
    last = out.strip().splitlines()[-1]
    assert last.startswith("1 passed, ")
    assert int(last.split()[2]) >= 10


def test_a_scenario_that_crashes_the_runner_fails_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from omniroute.contrib import scenario as scenarios

    def explode(_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(scenarios, "run", explode)
    result = run_file(_scenario(tmp_path))
    assert not result.passed
    assert "internal error while running: RuntimeError: boom" in result.failures[0]


def test_billion_laughs_still_loads_fast(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        previous = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    data = read_mapping_file(path)
    assert isinstance(data, dict)
    assert yaml  # the safe loader, not a Python object

"""Small hostile-input guarantees that the acceptance folders do not show one by one."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from kitchen_gitops import load
from kitchen_gitops.errors import ConfigError
from kitchen_gitops.findings import Location
from kitchen_gitops.limits import ChildFailed, TimeLimitExceeded, run_bounded
from kitchen_gitops.load import MAX_FILE_BYTES, parse_text, read_regular_file
from kitchen_gitops.policy.library import violation_location
from kitchen_gitops.sandbox import json_scalar
from kitchen_gitops.write import write_report

FALLBACK = Location("environments/dev.yaml", 1, 1)


@pytest.mark.parametrize("at", [
    None, "catalog/x.yaml:3", {"file": 3}, {"file": ""}, {"file": "a\nb.yaml", "line": 1},
    {"file": "x.yaml", "line": "abc"}, {"file": "x.yaml", "line": -1}, {"file": "x.yaml", "line": 1.5},
    {"file": "x.yaml", "line": True}, {"file": "x.yaml", "line": 10**30}, {"file": "x.yaml", "col": [1]},
])
def test_a_malformed_violation_location_falls_back(at: object) -> None:
    assert violation_location(at, FALLBACK) == FALLBACK


def test_a_well_formed_violation_location_is_kept() -> None:
    assert violation_location({"file": "c/x.yaml", "line": 3, "col": 2.0}, FALLBACK) == Location("c/x.yaml", 3, 2)
    assert violation_location({"file": "c/x.yaml"}, FALLBACK) == Location("c/x.yaml", 0, 0)


@pytest.mark.parametrize("value", ["\x7f", "\x85", "\u2028", "\u202e", "\ufeff"])
def test_rendered_json_scalars_escape_what_yaml_would_break_on(value: str) -> None:
    import yaml

    text = json_scalar(f"a{value}b")
    assert value not in text
    assert yaml.safe_load(f"k: {text}\n") == {"k": f"a{value}b"}


def test_rendered_json_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        json_scalar(float("inf"))


def test_the_size_limit_reads_at_most_one_byte_more(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES * 3))
    assert len(read_regular_file(big)) == MAX_FILE_BYTES + 1
    doc, problems = parse_text(read_regular_file(big), big, "big.yaml")
    assert doc is None and problems[0].rule_id == "load.too-large"


def test_the_worst_alias_bomb_is_refused_before_it_expands(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 30)]
    text = "\n".join(lines)
    events = sum(1 for _ in YAML(typ="safe").parse(io.StringIO(text)))
    read: list[object] = []

    class CountedYAML(YAML):
        def parse(self, stream: Any) -> Iterator[Any]:
            for event in super().parse(stream):
                read.append(event)
                yield event

        def compose_all(self, stream: Any) -> Any:
            raise AssertionError("an alias bomb reached the composer")

    monkeypatch.setattr(load, "YAML", CountedYAML)
    monkeypatch.setattr(load, "_YAML", None)
    doc, problems = parse_text(text.encode(), Path("x.yaml"), "x.yaml")
    assert doc is None and problems[0].rule_id == "load.alias"
    # refused from the first few levels of the event stream, counted, before any expansion
    assert len(read) < 100 < events, (len(read), events)


def test_write_report_is_whole_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_report(target, "{}\n")
    assert target.read_text() == "{}\n"
    with pytest.raises(ConfigError):
        write_report(tmp_path, "x")
    with pytest.raises(ConfigError):
        write_report(tmp_path / "missing" / "r.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_bounded_work_answers_fails_and_times_out() -> None:
    assert run_bounded(lambda: 6 * 7, seconds=10) == 42
    with pytest.raises(ConfigError, match="passed through"):
        run_bounded(lambda: (_ for _ in ()).throw(ConfigError("passed through")), seconds=10)
    with pytest.raises(ChildFailed, match="ran out of memory"):
        run_bounded(lambda: len(" " * (3 << 30)), seconds=10, memory_bytes=1 << 30)
    # work that never ends by itself: only the limit can end the call
    with pytest.raises(TimeLimitExceeded):
        run_bounded(lambda: threading.Event().wait(), seconds=0.5)


def test_inline_bounds_stop_a_loop_and_restore_the_process_limits() -> None:
    import resource
    import signal

    from kitchen_gitops.limits import run_inline_bounded

    before = resource.getrlimit(resource.RLIMIT_AS), signal.getsignal(signal.SIGALRM)
    assert run_inline_bounded(lambda: 6 * 7, seconds=10, memory_bytes=1 << 30) == 42

    def spin() -> None:
        while True:
            pass

    with pytest.raises(TimeLimitExceeded):  # spin never returns: only the limit ends it
        run_inline_bounded(spin, seconds=0.5)
    with pytest.raises(MemoryError):
        run_inline_bounded(lambda: len(" " * (3 << 30)), seconds=10, memory_bytes=1 << 30)
    assert (resource.getrlimit(resource.RLIMIT_AS), signal.getsignal(signal.SIGALRM)) == before

"""``kitchen check`` renders and evaluates environments in worker processes: the result is
the same as in one process, and an error in a worker stops the run as it would in one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from kitchen_gitops.pipeline import CheckOptions, check
from tests.conftest import copy_catalog

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def changed(tmp_path: Path) -> Path:
    root = copy_catalog(REPO, tmp_path / "repo")
    flavor = root / "catalog/flavors/faq-answerer@v3.yaml"
    flavor.write_text(flavor.read_text().replace("source: s3://lora/faq-answerer/v3/",
                                                 "source: s3://lora/faq-answerer/v2/"))
    router = root / "catalog/flavors/ticket-router@v1-2.yaml"
    router.write_text(router.read_text().replace("rank: 8\n", "rank: 48\n"))  # stale rendered/ too
    return root


def test_workers_and_one_process_agree(changed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITCHEN_JOBS", "1")
    serial = check(CheckOptions(changed))
    monkeypatch.setenv("KITCHEN_JOBS", "3")
    parallel = check(CheckOptions(changed))
    assert serial.findings == parallel.findings
    assert {f.rule_id for f in serial.findings} >= {"policy.storage-naming", "render.stale"}
    assert {f.environment for f in serial.findings} == {"dev", "prod", "staging"}
    assert serial.exit_code == parallel.exit_code == 1


def test_an_error_in_a_worker_is_a_configuration_error(changed: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITCHEN_JOBS", "2")
    template = changed / "templates/namespace.yaml.j2"
    template.write_text(template.read_text() + "{{ no_such_value }}\n")
    assert main(["check", "--root", str(changed)]) == 2
    err = capsys.readouterr().err
    assert "namespace.yaml.j2" in err and "no_such_value" in err and "Traceback" not in err


def test_jobs_must_be_a_number(changed: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITCHEN_JOBS", "many")
    assert main(["check", "--root", str(changed)]) == 2
    assert "KITCHEN_JOBS" in capsys.readouterr().err


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 3), (16, 17)])
def test_one_worker_more_than_the_cpus(cpus: int, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three environments on two CPUs: a third worker keeps both busy to the end; on one
    CPU everything stays in the process."""
    import os

    from kitchen_gitops import pipeline

    monkeypatch.delenv("KITCHEN_JOBS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    assert pipeline._jobs(CheckOptions(REPO)) == workers
    assert pipeline._jobs(CheckOptions(REPO, engine="opa")) == 1
    monkeypatch.setenv("KITCHEN_JOBS", "2")
    assert pipeline._jobs(CheckOptions(REPO)) == 2


def test_a_run_collects_cycles_less_often_and_puts_the_thresholds_back(
        changed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """While a check runs, the cyclic collector's first threshold is raised (a large
    catalog's objects live to the end of the run); after it, and after a run that stops on
    a configuration error, the process has its own thresholds again."""
    import gc

    import kitchen_gitops.pipeline as pipeline

    monkeypatch.setenv("KITCHEN_JOBS", "1")
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []
    render = pipeline.render_environment  # type: ignore[attr-defined]

    def spy(*args: object, **kwargs: object) -> object:
        during.append(gc.get_threshold())
        return render(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "render_environment", spy)
    check(CheckOptions(changed))
    assert during and {t[0] for t in during} == {pipeline.COLLECT_AFTER} != {before[0]}
    assert gc.get_threshold() == before
    broken = copy_catalog(REPO, tmp_path / "broken")
    template = broken / "templates/namespace.yaml.j2"
    template.write_text(template.read_text() + "{{ no_such_value }}\n")
    assert main(["check", "--root", str(broken)]) == 2
    assert "no_such_value" in capsys.readouterr().err
    assert gc.get_threshold() == before

"""The gate's cache as its user meets it: a warm run finds what a cold run stored and
finds the same things; a corrupted, foreign, committed or linked cache is ignored (and
said so with --verbose), never trusted; the folder stays within its size bound.

What the cache did is read from its counters (``--verbose``), never from a clock."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pytest

from kitchen_gitops.cache import FOLDER, PACK_AGE, Cache, _records
from kitchen_gitops.cli import main
from kitchen_gitops.sandbox import _environment
from tests.conftest import git

ARGS = ["check", "--no-render-check", "--verbose"]


@dataclasses.dataclass(frozen=True)
class One:
    x: int


@dataclasses.dataclass(frozen=True)
class Other:
    x: int


class Text(str):
    pass


@pytest.fixture
def cached(example_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KITCHEN_CACHE", raising=False)
    return example_repo


def _run(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, list[str]]:
    code = main([*ARGS, *extra, "--root", str(root)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, [line for line in err.splitlines() if line.startswith("cache")]


def _entries(root: Path, kind: str) -> list[Path]:
    return sorted(p for p in (root / FOLDER / kind).rglob("*") if p.is_file())


def test_warm_run_finds_everything_the_cold_run_stored(cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, notes = _run(cached, capsys)
    assert "cache environment: 0 found, 3 computed, 3 stored" in notes
    documents = len(list((cached / "catalog").rglob("*.yaml"))) + len(list((cached / "environments").rglob("*.yaml")))
    assert f"cache document: 0 found, {documents} computed, {documents} stored" in notes
    again, out2, notes2 = _run(cached, capsys)
    assert (again, out2) == (code, out)
    assert notes2 == [f"cache document: {documents} found, 0 computed, 0 stored",
                      "cache environment: 3 found, 0 computed, 0 stored",
                      "cache policy-data: 1 found, 0 computed, 0 stored"]


def test_an_edit_recomputes_and_the_edit_back_finds_the_first_entries(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flavor = next(iter(sorted((cached / "catalog" / "flavors").glob("*.yaml"))))
    original = flavor.read_bytes()
    first = _run(cached, capsys)
    flavor.write_bytes(original.replace(b"rank: ", b"rank: 1", 1))  # another rank: another key
    edited = _run(cached, capsys)
    assert "cache environment: 0 found, 3 computed, 3 stored" in edited[2]
    assert any(n.startswith("cache document:") and ", 1 computed, 1 stored" in n for n in edited[2])
    assert edited[:2] != first[:2]  # the edit is found (the rank is out of range or unsupported)
    flavor.write_bytes(original)
    back = _run(cached, capsys)
    assert back[:2] == first[:2]
    assert "cache environment: 3 found, 0 computed, 0 stored" in back[2]


@pytest.mark.parametrize("damage", ["truncated", "edited payload", "another key", "another format", "no header",
                                    "empty"])
def test_a_damaged_or_foreign_entry_is_ignored_and_reported(
        damage: str, cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(cached, capsys)
    entries = _entries(cached, "environment")
    victim, other = entries[0], entries[1]
    raw = victim.read_bytes()
    header, _, payload = raw.partition(b"\n")
    if damage == "truncated":
        victim.write_bytes(raw[: len(raw) // 2])
    elif damage == "edited payload":  # the payload changed by hand, its length and header kept
        victim.write_bytes(header + b"\n" + payload[:-1] + (b" " if payload[-1:] != b" " else b"\n"))
    elif damage == "another key":  # another environment's entry copied over it
        victim.write_bytes(other.read_bytes())
    elif damage == "another format":
        victim.write_bytes(raw.replace(b"kitchen-cache/1", b"kitchen-cache/0", 1))
    elif damage == "no header":
        victim.write_bytes(payload)
    else:
        victim.write_bytes(b"")
    again = _run(cached, capsys)
    assert again[:2] == first[:2]
    ignored = [n for n in again[2] if n.startswith("cache: ignored")]
    assert len(ignored) == 1 and victim.name in ignored[0], again[2]
    assert "cache environment: 2 found, 1 computed, 1 stored" in again[2]
    assert "cache environment: 3 found, 0 computed, 0 stored" in _run(cached, capsys)[2]


@pytest.mark.parametrize("damage", ["truncated", "edited payload", "not records", "a record cut short"])
def test_a_damaged_pack_of_parsed_files_is_ignored_reported_and_written_again(
        damage: str, cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The parsed catalog files live in one pack; a pack that does not prove itself, or
    whose records are not exactly records, is ignored whole and every file parsed again."""
    import hashlib

    first = _run(cached, capsys)
    (pack,) = _entries(cached, "document-pack")
    raw = pack.read_bytes()
    header, _, payload = raw.partition(b"\n")
    if damage == "truncated":
        pack.write_bytes(raw[: len(raw) // 2])
    elif damage == "edited payload":
        pack.write_bytes(raw[:-1] + (b" " if raw[-1:] != b" " else b"\n"))
    else:  # a header that proves the payload, around a payload that is not a pack
        body = b"kind: Flavor\n" if damage == "not records" else payload[:-1]
        fields = header.split(b" ")
        fields[3], fields[4] = hashlib.sha256(body).hexdigest().encode(), str(len(body)).encode()
        pack.write_bytes(b" ".join(fields) + b"\n" + body)
    documents = _counts(first[2], "document")[2]  # the files the cold run stored
    again = _run(cached, capsys)
    assert again[:2] == first[:2]
    ignored = [n for n in again[2] if n.startswith("cache: ignored")]
    assert len(ignored) == 1 and pack.name in ignored[0], again[2]
    assert f"cache document: 0 found, {documents} computed, {documents} stored" in again[2]
    assert _counts(_run(cached, capsys)[2], "document") == (documents, 0, 0)


def test_a_packed_entry_its_reader_refuses_is_parsed_again(cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A record under a file's key whose payload is not a parsed document (a forged pack
    with a valid header): that file is parsed again; the others are found."""
    import hashlib

    first = _run(cached, capsys)
    (pack,) = _entries(cached, "document-pack")
    header, _, payload = pack.read_bytes().partition(b"\n")
    head, _, rest = payload.partition(b"\n")
    key, size, age = head.split(b" ")
    forged = b'{"data": [], "paths": [], "marks": []}'
    body = b"%s %d %s\n%s%s" % (key, len(forged), age, forged, rest[int(size):])
    fields = header.split(b" ")
    fields[3], fields[4] = hashlib.sha256(body).hexdigest().encode(), str(len(body)).encode()
    pack.write_bytes(b" ".join(fields) + b"\n" + body)
    again = _run(cached, capsys)
    assert again[:2] == first[:2]
    assert any(key.decode() in n and "not a parsed document" in n for n in again[2]), again[2]
    assert any(n.startswith("cache document:") and ", 1 computed, 1 stored" in n for n in again[2]), again[2]


def test_a_packed_entry_unused_for_a_while_is_dropped(tmp_path: Path) -> None:
    """Another branch's parsed files stay in the pack for PACK_AGE writes, then go."""
    folder = tmp_path / FOLDER
    first = Cache(folder)
    pack = first.pack("document")
    pack.put("a" * 64, b"kept")
    pack.put("b" * 64, b"dropped")
    pack.flush()
    for run in range(PACK_AGE + 1):
        pack = Cache(folder).pack("document")
        assert pack.read("a" * 64, bytes, "refused") == b"kept"
        assert "b" * 64 in pack.records  # not read: unused since the first write
        pack.put(f"{run:064x}", b"new")  # another file: the pack is written again
        pack.flush()
    assert sorted(Cache(folder).pack("document").records) == sorted(
        ["a" * 64, *(f"{run:064x}" for run in range(PACK_AGE + 1))])


def test_an_entry_with_a_valid_digest_but_not_findings_is_refused(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A forged entry whose header matches its payload: the reader still checks the shape."""
    import hashlib

    first = _run(cached, capsys)
    victim = _entries(cached, "environment")[0]
    header = victim.read_bytes().partition(b"\n")[0].split(b" ")
    bad_severity = b'[["rule", "nonsense-severity", "m", ["f", 1, 1], null, "", "", "", "", ""]]'
    for payload in (b'{"not": "a list"}', bad_severity, b"[[1, 2, 3]]"):
        header[3], header[4] = hashlib.sha256(payload).hexdigest().encode(), str(len(payload)).encode()
        victim.write_bytes(b" ".join(header) + b"\n" + payload)
        again = _run(cached, capsys)
        assert again[:2] == first[:2]
        assert any("not a list of findings" in n for n in again[2]), again[2]


def test_a_forged_empty_result_cannot_hide_findings_once_an_input_changes(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An entry is found only under the digest of what the work read: an edit that adds a
    finding is another key, whatever the folder holds."""
    import hashlib

    _run(cached, capsys)
    for victim in _entries(cached, "environment"):  # every stored result replaced by "no findings"
        header = victim.read_bytes().partition(b"\n")[0].split(b" ")
        header[3], header[4] = hashlib.sha256(b"[]").hexdigest().encode(), b"2"
        victim.write_bytes(b" ".join(header) + b"\n[]")
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    flavor.write_text(flavor.read_text().replace("rank: 32", "rank: 128"))
    code, out, _ = _run(cached, capsys)
    assert code == 1 and "policy.lora-rank" in out


def test_a_cache_git_tracks_is_not_used(cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(cached, capsys)
    git(cached, "init", "-q")
    git(cached, "add", "-A", "-f")
    git(cached, "commit", "-qm", "a pull request that commits a cache")
    again = _run(cached, capsys)
    assert again[:2] == first[:2]
    assert again[2] == [f"cache: ignored {FOLDER}: Git tracks files in it (the cache never comes from a commit); "
                        "not used"]


@pytest.mark.parametrize("what", ["link", "file"])
def test_a_cache_that_is_a_link_or_a_file_is_not_used(
        what: str, cached: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(cached, capsys)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(cached / FOLDER, elsewhere)
    if what == "link":
        (cached / FOLDER).symlink_to(elsewhere)
    else:
        (cached / FOLDER).write_text("not a folder")
    again = _run(cached, capsys)
    assert again[:2] == first[:2]
    assert again[2] == [f"cache: ignored {FOLDER}: not a plain folder (a link or a file); not used"]


def test_no_cache_reads_and_writes_nothing(cached: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _run(cached, capsys, "--no-cache")
    assert not (cached / FOLDER).exists()
    monkeypatch.setenv("KITCHEN_CACHE", "off")
    _run(cached, capsys)
    assert not (cached / FOLDER).exists()


def test_the_folder_is_trimmed_to_its_bound_least_recently_used_first(tmp_path: Path) -> None:
    folder = tmp_path / FOLDER
    cache = Cache(folder, max_bytes=100_000)
    rng = random.Random(7)
    keys = [f"{rng.getrandbits(256):064x}" for _ in range(40)]
    for i, key in enumerate(keys):
        cache.put("document", key, b"x" * 5_000)
        os.utime(folder / "document" / key[:2] / key, (1_000_000 + i, 1_000_000 + i))
    cache.get("document", keys[0])  # used again: now the most recent
    cache.trim()
    sizes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert sizes <= 75_000
    assert cache.stats.removed > 0
    kept = {p.name for p in folder.rglob("*") if p.is_file()}
    assert keys[0] in kept and keys[1] not in kept and keys[-1] in kept


def test_an_unwritable_cache_is_reported_and_the_gate_still_runs(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cached / FOLDER).mkdir()
    (cached / FOLDER / "environment").write_text("a file where a folder of entries goes")
    (cached / FOLDER / "document-pack").write_text("a file where a folder of entries goes")
    code, out, notes = _run(cached, capsys)
    clean = _run(cached, capsys, "--no-cache")
    assert (code, out) == clean[:2]
    assert any(n.startswith("cache: ignored not writable") for n in notes), notes


def test_kitchen_max_mib_must_be_a_whole_number(cached: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITCHEN_CACHE_MAX_MIB", "lots")
    assert main([*ARGS, "--root", str(cached)]) == 2
    assert "$KITCHEN_CACHE_MAX_MIB='lots' is not a whole number of MiB" in capsys.readouterr().err


def test_an_edit_behind_a_link_is_an_edit(cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A catalog file and the templates folder reached through links inside the repository
    (which the gate reads): changing what they lead to changes the key."""
    shared = cached / "shared"
    shared.mkdir()
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    shutil.move(flavor, shared / "faq.yaml")
    flavor.symlink_to(Path("..", "..", "shared", "faq.yaml"))
    shutil.move(cached / "templates", shared / "templates")
    (cached / "templates").symlink_to(Path("shared", "templates"))
    first = _run(cached, capsys)
    assert first[0] == 0, first[1]
    (shared / "faq.yaml").write_text((shared / "faq.yaml").read_text().replace("rank: 32", "rank: 128"))
    code, out, notes = _run(cached, capsys)
    assert code == 1 and "policy.lora-rank" in out
    assert "cache environment: 0 found, 3 computed, 3 stored" in notes
    (shared / "faq.yaml").write_text((shared / "faq.yaml").read_text().replace("rank: 128", "rank: 32"))
    assert _run(cached, capsys)[:2] == first[:2]
    template = shared / "templates" / "namespace.yaml.j2"
    template.write_text(template.read_text() + "{# an edit behind the link #}\n")
    code, out, notes = _run(cached, capsys)
    assert (code, out) == first[:2]
    assert "cache environment: 0 found, 3 computed, 3 stored" in notes


def _digest(folder: Path, inside: Path, budget: Any = None) -> str:
    from kitchen_gitops.cache import Digest, Signatures, folder_digest

    d = Digest("t")
    folder_digest(folder, d, Signatures(), (inside,), budget)
    return d.hexdigest()


def test_a_link_out_of_the_repository_is_its_text_and_is_not_followed(tmp_path: Path) -> None:
    """No reader of the gate reads through a link that leaves the repository, so the
    digest does not either: a link to / was walked over the whole machine before (a
    minute, or a hang on a file that blocks).  What is outside does not move the key; the
    link's text does, and a link inside the repository is still followed."""
    from kitchen_gitops.cache import DigestBudget

    repo, outside = tmp_path / "repo", tmp_path / "outside"
    (repo / "catalog").mkdir(parents=True)
    outside.mkdir()
    (outside / "x.yaml").write_text("x: 1\n")
    (repo / "shared.yaml").write_text("y: 1\n")
    (repo / "catalog" / "away").symlink_to(outside)
    (repo / "catalog" / "root").symlink_to("/")
    (repo / "catalog" / "near.yaml").symlink_to(Path("..", "shared.yaml"))
    budget = DigestBudget()
    first = _digest(repo / "catalog", repo, budget)
    assert DigestBudget().entries - budget.entries == 4  # the folder and its three links
    (outside / "x.yaml").write_text("x: 2\n")
    assert _digest(repo / "catalog", repo) == first
    (repo / "shared.yaml").write_text("y: 2\n")  # behind a link inside the repository
    second = _digest(repo / "catalog", repo)
    assert second != first
    (repo / "catalog" / "away").unlink()
    (repo / "catalog" / "away").symlink_to(tmp_path / "elsewhere")
    assert _digest(repo / "catalog", repo) != second


def test_a_digest_reads_a_bounded_amount_and_the_gate_then_runs_without_it(
        cached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Links between folders of the repository can make a tree of any size (each folder
    linking ten times to the next): the digest stops at its budget, and the gate runs
    with nothing of the environments found or stored, and says so."""
    from kitchen_gitops import cache as cache_module
    from kitchen_gitops.cache import DigestBudget, DigestTooLarge

    chain = cached / "evaluations" / "chain"
    for level in range(12):
        (chain / str(level)).mkdir(parents=True)
        if level:
            for i in range(10):
                (chain / str(level - 1) / f"l{i}").symlink_to(Path("..", str(level)))
    monkeypatch.setattr(cache_module, "DIGEST_MAX_ENTRIES", 10_000)
    with pytest.raises(DigestTooLarge):
        _digest(cached / "evaluations", cached, DigestBudget())
    code, out, notes = _run(cached, capsys)
    assert (code, out) == _run(cached, capsys, "--no-cache")[:2]
    assert "more than 10,000 files and folders below the folders the gate reads" in "\n".join(notes)
    assert "cache environment:" not in "\n".join(notes)
    assert not _entries(cached, "environment")


def test_a_file_nested_deeper_than_a_digest_reads_is_not_missed(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The digest entered folders at most 40 deep and counted nothing below: an extra file
    committed 45 folders deep in an environment's output, after a run stored that
    environment, was not reported by the next run.  Now such an output is no digest: the
    environment is neither found nor stored, and the file is reported."""
    deep = cached / "rendered" / "dev" / Path(*["d"] * 45)
    deep.mkdir(parents=True)
    assert main(["check", "--verbose", "--root", str(cached)]) == 0
    (deep / "extra.yaml").write_text("kind: Secret\n")
    for extra in ([], ["--no-cache"]):
        capsys.readouterr()
        assert main(["check", "--verbose", *extra, "--root", str(cached)]) == 1
        out = capsys.readouterr().out
        assert "extra.yaml: [error] committed rendered output is no longer rendered" in out
    capsys.readouterr()
    main(["check", "--verbose", "--root", str(cached)])
    assert ("cache: ignored dev: its committed output holds more than a digest reads; the environment is "
            "neither found nor stored") in capsys.readouterr().err


def test_policies_that_read_the_clock_are_evaluated_every_run(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rule = cached / "policies" / "rules" / "lora_rank.rego"
    rule.write_text(rule.read_text() + "\n# time.now_ns() in a comment changes nothing\n"
                    "evaluated_at_ns := time.now_ns()\n")
    for _ in range(2):
        code, out, notes = _run(cached, capsys)
        assert code == 0, out
        assert notes[-1] == ("cache: ignored policies/rules/lora_rank.rego:"
                             f"{len(rule.read_text().splitlines())}: time.now_ns: the policies call a built-in "
                             "whose answer changes from run to run; no environment is stored")
        assert not _entries(cached, "environment")
    # a "#" in a string starts no comment: the call after it on the line still counts
    rule.write_text(rule.read_text().replace("evaluated_at_ns := time.now_ns()",
                                             'evaluated_at := concat("", ["#", sprintf("%d", [time.now_ns()])])'))
    code, out, notes = _run(cached, capsys)
    assert code == 0, out
    assert notes[-1].startswith(f"cache: ignored policies/rules/lora_rank.rego:{len(rule.read_text().splitlines())}: "
                                "time.now_ns: ")
    assert not _entries(cached, "environment")


def test_nothing_is_stored_when_an_input_changes_while_the_gate_runs(
        cached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor saving a file during the run: the work may have read other bytes than the
    key, so no environment is stored; the next run computes and stores them."""
    from kitchen_gitops import pipeline

    monkeypatch.setenv("KITCHEN_JOBS", "1")
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    real_run_all = pipeline._EnvironmentJob.run_all

    def saved_meanwhile(self: pipeline._EnvironmentJob, names: list[str], engine: object) -> object:
        flavor.write_text(flavor.read_text() + "# saved while the gate ran\n")
        return real_run_all(self, names, engine)

    monkeypatch.setattr(pipeline._EnvironmentJob, "run_all", saved_meanwhile)
    code, out, notes = _run(cached, capsys)
    assert code == 0, out
    assert "cache: ignored files the gate reads changed while it ran; no environment is stored" in notes
    assert not _entries(cached, "environment")
    monkeypatch.setattr(pipeline._EnvironmentJob, "run_all", real_run_all)
    assert "cache environment: 0 found, 3 computed, 3 stored" in _run(cached, capsys)[2]


def test_signatures_tell_a_file_that_changed_appeared_or_went(tmp_path: Path) -> None:
    from kitchen_gitops.cache import Digest, Signatures, folder_digest

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("x: 1\n")

    def signed() -> Signatures:
        s = Signatures()
        folder_digest(tmp_path / "a", Digest("t"), s)
        folder_digest(tmp_path / "missing", Digest("t"), s)
        return s

    s = signed()
    assert s.unchanged()
    (tmp_path / "a" / "x.yaml").write_text("x: 2\n")  # same size, other bytes
    assert not s.unchanged()
    s = signed()
    (tmp_path / "missing").mkdir()
    assert not s.unchanged()
    s = signed()
    (tmp_path / "a" / "x.yaml").unlink()
    assert not s.unchanged()


def test_a_cached_span_index_reads_like_the_parsed_one(tmp_path: Path) -> None:
    """Built when first read, it answers every way of reading a dict as the parser's does."""
    import copy
    import pickle

    from kitchen_gitops import document_cache
    from kitchen_gitops.load import parse_text

    raw = b"kind: Flavor\nname: x\nfiles:\n  a.json: ab\nlist:\n  - 1\n  - {b: 2}\n"
    doc, problems = parse_text(raw, tmp_path / "x.yaml", "catalog/flavors/x.yaml")
    assert doc is not None and not problems
    payload = document_cache.encode(doc)
    assert payload is not None
    ways = [lambda s: dict(s), lambda s: {**s}, lambda s: s.copy(), lambda s: pickle.loads(pickle.dumps(s)),
            copy.deepcopy, lambda s: dict(s.items()), lambda s: {k: s[k] for k in s},
            lambda s: {k: s.get(k) for k in list(s.keys())}]
    for way in ways:
        cached = document_cache.decode(payload, tmp_path / "x.yaml", "catalog/flavors/x.yaml")
        assert cached is not None and cached.data == doc.data
        assert way(cached.spans) == doc.spans
    cached = document_cache.decode(payload, tmp_path / "x.yaml", "catalog/flavors/x.yaml")
    assert cached is not None
    assert len(cached.spans) == len(doc.spans) and ("list", 1, "b") in cached.spans
    assert cached.location(("list", 1, "b"), value=True) == doc.location(("list", 1, "b"), value=True)


def test_a_policy_edit_reuses_the_render_and_a_template_comment_reuses_the_evaluation(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(cached, capsys)
    tenants = _tenants(first[2])[1]
    rule = cached / "policies" / "rules" / "lora_rank.rego"
    rule.write_text(rule.read_text() + "\n# a comment: another library, the same rendered objects\n")
    code, out, notes = _run(cached, capsys)
    assert (code, out) == first[:2]
    assert _tenants(notes) == (tenants, 0, 0)
    found, computed, stored = _counts(notes, "evaluated")  # each environment's input and its slices
    assert found == 0 and computed == stored > 3
    template = cached / "templates" / "namespace.yaml.j2"
    template.write_text(template.read_text() + "{# a comment: another template, the same policy input #}\n")
    code, out, notes = _run(cached, capsys)
    assert (code, out) == first[:2]
    assert _tenants(notes) == (0, tenants, tenants)
    assert _counts(notes, "evaluated") == (computed, 0, 0)
    rule.write_text(rule.read_text().replace("count(", "0 + count(", 1) if "count(" in rule.read_text()
                    else rule.read_text() + "\n# another\n")
    assert _run(cached, capsys)[:2] == first[:2]


def test_forged_stage_entries_cannot_hide_findings_once_an_input_changes(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    _run(cached, capsys)
    forged = {victim: b"[]" for victim in _entries(cached, "environment")}
    # every answer of the engine kept: no violation, for the whole input and every slice
    for victim in _entries(cached, "evaluated-pack"):
        records = _records(victim.read_bytes().partition(b"\n")[2])
        assert records
        forged[victim] = b"".join(b"%s 2 0\n{}" % key.encode() for key in sorted(records))
    # every tenant's unit kept: no object at all
    for victim in _entries(cached, "tenant-pack"):
        records = _records(victim.read_bytes().partition(b"\n")[2])
        assert records
        forged[victim] = b"".join(b"%s 2 0\n[]" % key.encode() for key in sorted(records))
    assert len(forged) > 6
    for victim, payload in forged.items():
        header = victim.read_bytes().partition(b"\n")[0].split(b" ")
        header[3], header[4] = hashlib.sha256(payload).hexdigest().encode(), str(len(payload)).encode()
        victim.write_bytes(b" ".join(header) + b"\n" + payload)
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    flavor.write_text(flavor.read_text().replace("rank: 32", "rank: 128"))
    code, out, _ = _run(cached, capsys)
    assert code == 1 and "policy.lora-rank" in out


def _forge_pack(victim: Path, forge: Callable[[bytes], bytes]) -> None:
    """Each entry of the pack ``victim`` as ``forge`` makes it, the pack proving itself."""
    records = _records(victim.read_bytes().partition(b"\n")[2])
    assert records is not None
    payload = b"".join(b"%s %d 0\n%s" % (key.encode(), len(made), made)
                       for key in sorted(records) for made in [forge(records[key][0])])
    header = victim.read_bytes().partition(b"\n")[0].split(b" ")
    header[3], header[4] = hashlib.sha256(payload).hexdigest().encode(), str(len(payload)).encode()
    victim.write_bytes(b" ".join(header) + b"\n" + payload)


def _one_more_byte(unit: bytes) -> bytes:
    """A unit whose last object says its item is one byte longer than the items hold."""
    digest, files = orjson.loads(unit)
    files[-1][2][-1][-1] += 1
    return orjson.dumps([digest, files])


@pytest.mark.parametrize("damage", ["removed", "forged", "lengths"])
def test_a_found_tenant_whose_items_the_cache_lost_is_rendered_again(
        cached: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    """A found tenant's items are read only for an input that is evaluated: where the
    cache lost them since (removed, an entry of another length whose pack proves itself,
    or files whose items add up to another length than the items kept), the environment
    is rendered again, each found tenant's items read at once, and the findings are those
    of a run without the cache; the next run finds them."""
    _run(cached, capsys)
    victims = _entries(cached, "tenant-pack" if damage == "lengths" else "tenant-items-pack")
    assert victims
    for victim in victims:
        if damage == "removed":
            victim.unlink()
        else:
            _forge_pack(victim, _one_more_byte if damage == "lengths" else lambda _: b"{}")
    rule = cached / "policies" / "rules" / "lora_rank.rego"
    rule.write_text(rule.read_text() + "\n# another library: every input evaluated, every item read\n")
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    flavor.write_text(flavor.read_text().replace("rank: 32", "rank: 128"))
    uncached = _run(cached, capsys, "--no-cache")
    assert uncached[0] == 1 and "policy.lora-rank" in uncached[1]
    code, out, notes = _run(cached, capsys)
    assert (code, out) == uncached[:2]
    assert any("items in" in n and "rendered again" in n for n in notes), notes
    again = _run(cached, capsys)
    assert again[:2] == uncached[:2] and not any("rendered again" in n for n in again[2])


def test_the_folder_keeps_itself_out_of_commits(cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A catalog repository whose .gitignore does not name the cache: ``git add -A`` still
    leaves it out."""
    git(cached, "init", "-q")
    _run(cached, capsys)
    git(cached, "add", "-A")
    import subprocess

    staged = subprocess.run(["git", "ls-files", "--", FOLDER], cwd=cached, capture_output=True, text=True,
                            check=True).stdout
    assert staged == ""
    assert (cached / FOLDER / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert "cache environment: 3 found, 0 computed, 0 stored" in _run(cached, capsys)[2]


def _counts(notes: list[str], kind: str) -> tuple[int, int, int]:
    """(found, computed, stored) of a kind of the cache's entries."""
    (line,) = [n for n in notes if n.startswith(f"cache {kind}:")]
    found, computed, stored = (int(part.split()[0]) for part in line.split(": ", 1)[1].split(", "))
    return found, computed, stored


def _objects(notes: list[str]) -> tuple[int, int, int]:
    """(found, computed, stored) of the rendered objects."""
    return _counts(notes, "object")


def _tenants(notes: list[str]) -> tuple[int, int, int]:
    """(found, computed, stored) of the tenants' rendered units."""
    return _counts(notes, "tenant")


def test_an_edit_renders_again_only_the_tenants_whose_files_changed(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tenant's objects are found by the files they come from (the environment, the
    tenant, its flavors and their bases): a tenant edit renders that tenant again, a
    flavor or base edit the tenants that serve it, an environment edit every tenant of
    that environment; every other tenant is found; the findings are those of a run
    without the cache."""
    cold = _run(cached, capsys)
    found, computed, stored = _tenants(cold[2])
    assert found == 0 and computed == stored > 3
    total = computed
    assert "cache environment: 3 found, 0 computed, 0 stored" in _run(cached, capsys)[2]

    def edited(path: Path, old: str, new: str) -> tuple[int, int, int]:
        text = path.read_text()
        assert old in text, (path, old)
        path.write_text(text.replace(old, new, 1))
        run = _run(cached, capsys)
        assert run[:2] == _run(cached, capsys, "--no-cache")[:2]
        counts = _tenants(run[2])
        assert counts[0] + counts[1] == total and counts[1] == counts[2], run[2]
        return counts

    tenant = cached / "catalog" / "tenants" / "customer-support.yaml"
    assert edited(tenant, "display_name: Customer Support", "display_name: Service Desk")[1] == 3
    # a flavor one tenant serves, in dev and staging (prod serves another version)
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    served = edited(flavor, "description:", "description: (edited)")[1]
    assert 0 < served < total // 2
    base = cached / "catalog" / "bases" / "qwen2-5-7b-instruct.yaml"
    assert 0 < edited(base, "description:", "description: (edited)")[1] < total
    environment = cached / "environments" / "dev.yaml"
    assert edited(environment, "\n", "\n# another dev environment file\n")[1] == sum(
        1 for t in (cached / "catalog" / "tenants").glob("*.yaml") if "dev:" in t.read_text())


def test_a_template_edit_finds_no_rendered_object(cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The templates folder's digest is in every object's key: a comment in one template,
    which changes no output, still renders every object again.  What the tenants give the
    environment besides their objects (their plans, their expectations) reads no template:
    every part is found."""
    cold = _run(cached, capsys)
    template = cached / "templates" / "namespace.yaml.j2"
    template.write_text("{# a comment #}" + template.read_text())
    edited = _run(cached, capsys)
    assert edited[:2] == _run(cached, capsys, "--no-cache")[:2]
    found, computed, _ = _objects(edited[2])
    assert found == 0 and computed > 0
    assert _tenants(edited[2])[0] == 0
    assert _counts(edited[2], "tenant-part") == (_counts(cold[2], "tenant-part")[2], 0, 0)


def test_an_object_rendered_other_than_intended_is_never_stored(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An object the closed world finds different from what kitchen intends is rendered,
    read and compared on every run: its finding cannot come from a stored object."""
    template = cached / "templates" / "resourcequota.yaml.j2"
    template.write_text(template.read_text().replace("spec:", "spec:\n  scopes: [NotTerminating]", 1))
    cold = _run(cached, capsys)
    assert cold[0] == 1 and "render.unintended" in cold[1], cold[1]
    _, computed, stored = _tenants(cold[2])
    quotas = sum(1 for _ in (cached / "rendered").rglob("resourcequota-*.yaml"))
    assert quotas and computed == quotas and stored == 0  # every tenant has a quota: none is kept
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    flavor.write_text("# another key for every environment\n" + flavor.read_text())
    again = _run(cached, capsys)
    assert again[:2] == cold[:2]
    assert _tenants(again[2]) == (0, quotas, 0)


def test_a_tenant_whose_command_line_drifts_is_never_stored(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A found tenant's manifests are not read again: its unit is kept only where the
    templates rendered the command lines the plan computed.  A template that appends its
    own ``--lora-modules`` makes every tenant that serves a model render again on every
    run, and each run finds the drift."""
    template = cached / "templates" / "inferenceservice.yaml.j2"
    old = "        - {{ a | tojson }}\n{%- endfor %}\n"
    assert old in template.read_text()
    template.write_text(template.read_text().replace(
        old, old + '        - "--lora-modules"\n        - "evil=/tmp/evil"\n'))
    cold = _run(cached, capsys)
    assert cold[0] == 1 and "render.vllm-args" in cold[1], cold[1]
    serving = {p.parent for p in (cached / "rendered").rglob("inferenceservice-*.yaml")}  # a tenant's folder
    _, computed, stored = _tenants(cold[2])
    assert serving and computed - stored == len(serving)
    rule = cached / "policies" / "rules" / "lora_rank.rego"
    rule.write_text(rule.read_text() + "\n# the environments' findings are not found whole\n")
    again = _run(cached, capsys)
    assert again[:2] == cold[:2]
    assert _tenants(again[2]) == (stored, computed - stored, 0)


def test_a_template_cannot_carry_state_from_one_render_to_the_next(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A macro module's namespace is made anew for every object: a counter kept in it
    cannot make an object's text depend on which objects were rendered before it, so a
    run that finds most objects in the cache renders the others as a run without it."""
    macros = cached / "templates" / "_macros.j2"
    macros.write_text(macros.read_text() + "{%- set seen = namespace(n=0) -%}\n"
                      "{%- macro count() -%}{%- set seen.n = seen.n + 1 -%}{{ seen.n }}{%- endmacro -%}\n")
    template = cached / "templates" / "namespace.yaml.j2"
    template.write_text(template.read_text().replace("apiVersion: v1", "# rendered {{ m.count() }}\napiVersion: v1"))
    assert main(["render", "--root", str(cached)]) == 0
    cold = _run(cached, capsys, "--render-check")
    assert cold[0] == 0, cold[1]
    assert {p.read_text().count("# rendered 1\n") for p in (cached / "rendered").rglob("namespace.yaml")} == {1}
    tenant = cached / "catalog" / "tenants" / "customer-support.yaml"
    tenant.write_text(tenant.read_text().replace("display_name: Customer Support", "display_name: Service Desk"))
    assert main(["render", "--root", str(cached)]) == 0
    capsys.readouterr()
    warm = _run(cached, capsys, "--render-check")
    assert warm[:2] == _run(cached, capsys, "--render-check", "--no-cache")[:2]
    assert warm[0] == 0 and _objects(warm[2])[0] > 0, warm


def test_an_object_key_tells_apart_what_a_template_can_tell_apart(tmp_path: Path) -> None:
    """Values JSON writes alike but a template renders differently (``|string`` shows a
    tuple as ``('a',)``, NaN as ``nan``) have different keys; a value of a type kitchen
    does not give templates has none (that object is rendered every time)."""
    from kitchen_gitops.render_memo import ObjectMemo

    memo = ObjectMemo(Cache(tmp_path / FOLDER), "dev", b"templates")
    alike = [[None], [float("nan")], [float("inf")], [("a",)], [["a"]], [1], [1.0], [True], [One(1)], [Other(1)],
             [{"a": 1, "b": 2}], [{"b": 2, "a": 1}]]
    keys = [memo.key("t.yaml.j2", values) for values in alike]
    assert None not in keys and len(set(keys)) == len(keys)
    assert memo.key("t.yaml.j2", [("a",)]) == keys[3]  # the same values: the same key
    assert memo.key("u.yaml.j2", [("a",)]) != keys[3]
    assert ObjectMemo(Cache(tmp_path / FOLDER), "dev", b"other templates").key("t.yaml.j2", [("a",)]) != keys[3]
    for foreign in ([Text("a")], [{"a"}], [{1: "a"}], [tmp_path], [lambda: 1]):
        assert memo.key("t.yaml.j2", foreign) is None


def test_a_template_edited_between_two_runs_of_one_process_is_rendered_as_edited(
        cached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that checks, sees a template edited and checks again (a test, a program
    calling kitchen) renders the edited template: the compiled one is never kept past an
    edit, and no object rendered from it is stored under the edited folder's key."""
    monkeypatch.setenv("KITCHEN_JOBS", "1")  # every render in this process
    first = _run(cached, capsys)
    assert first[0] == 0, first[1]
    template = cached / "templates" / "resourcequota.yaml.j2"
    template.write_text(template.read_text().replace("spec:", "spec:\n  scopes: [NotTerminating]", 1))
    edited = _run(cached, capsys)
    assert edited[0] == 1 and "render.unintended" in edited[1], edited[1]
    template.write_text(template.read_text() + "{{ no_such_value }}\n")
    code = main([*ARGS, "--root", str(cached)])
    assert code == 2 and "no_such_value" in capsys.readouterr().err


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates jinja2 compiles from now on, in this process."""
    names: list[str] = []
    compile_ = jinja2.Environment.compile

    def counted(self: jinja2.Environment, source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        names.append(str(name))
        return compile_(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    return names


def test_a_warm_run_compiles_only_the_templates_it_renders_with(
        cached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every template is compiled on a run that finds the templates folder for the first
    time (a syntax error in a template no object uses is found); once a run has compiled
    every template of the folder as it is, a run that renders one tenant again compiles
    the templates that tenant uses, and finds what a run without the cache finds."""
    monkeypatch.setenv("KITCHEN_JOBS", "1")  # every render in this process, counted
    compiled = _compiles(monkeypatch)
    templates = sorted(p.name for p in (cached / "templates").glob("*.j2"))
    _environment.cache_clear()
    assert _run(cached, capsys)[0] == 0
    assert sorted(set(compiled)) == templates
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    flavor.write_text(flavor.read_text().replace("description:", "description: (edited)", 1))
    _environment.cache_clear()  # as a new process would
    compiled.clear()
    warm = _run(cached, capsys)
    assert 0 < len(set(compiled)) < len(templates), compiled
    assert _counts(warm[2], "templates-compiled") == (3, 0, 0)
    assert warm[:2] == _run(cached, capsys, "--no-cache")[:2]
    # a template no object uses, broken: the folder is another folder, compiled whole
    (cached / "templates" / "unused.j2").write_text("{% if %}\n")
    _environment.cache_clear()
    code = main([*ARGS, "--root", str(cached)])
    err = capsys.readouterr().err
    assert code == 2 and "unused.j2:1" in err and "Traceback" not in err, err


def test_the_dashboard_is_found_by_the_environment_and_the_namespaces_it_shows(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The environment's dashboard is kept by what it is made of (the environment's file
    and its tenants' namespaces): an edit of either makes it again, as ``kitchen render``
    writes it (the committed output is compared), and any other edit finds it."""
    check = ["check", "--verbose", "--root", str(cached)]

    def rendered_then_checked() -> tuple[int, int, int]:
        assert main(["render", "--root", str(cached)]) == 0
        code = main(check)
        out, err = capsys.readouterr()
        assert code == 0, out
        return _counts([line for line in err.splitlines() if line.startswith("cache")], "derived")

    assert rendered_then_checked() == (0, 3, 3)
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    flavor.write_text(flavor.read_text().replace("description:", "description: (edited)", 1))
    assert rendered_then_checked() == (3, 0, 0)
    dev = cached / "environments" / "dev.yaml"
    dev.write_text(dev.read_text().replace("display_name: Development", "display_name: Development (shared)"))
    assert rendered_then_checked() == (2, 1, 1)
    (cached / "catalog" / "tenants" / "legal-ai.yaml").unlink()  # its namespaces leave the dashboards
    found, made, _ = rendered_then_checked()
    assert made > 0 and found + made == 3


def test_a_tenant_unit_is_kept_only_where_json_gives_it_back_exactly(tmp_path: Path) -> None:
    """A manifest value JSON would give back as something else (a float that is not
    finite reads back as null) or cannot hold (a timestamp, a set, bytes, an integer
    beyond 64 bits, text that is not Unicode) keeps the tenant's unit out of the cache;
    null, finite floats and plain values are kept, and read back as they were."""
    import datetime as dt

    import orjson

    from kitchen_gitops.render_memo import TenantMemo

    def unit(value: object, text: str = "kind: X\n") -> list:  # type: ignore[type-arg]
        return [("t/x.yaml", text, [("v1", "X", "x", "t", ("catalog/tenants/t.yaml", 1, 1), ("a.yaml",),
                                     {"kind": "X", "value": value})])]

    cache = Cache(tmp_path / FOLDER)
    memo = TenantMemo(cache, "dev", b"templates", "contributions")
    kept = [None, 1.5, -0.0, 2**63 - 1, "null", [1, "a", {"b": None}], True]
    refused = [float("nan"), float("inf"), -float("inf"), dt.date(2026, 1, 1), {1, 2}, b"x", 2**64, "\udc80"]
    for i, value in enumerate([*kept, *refused]):
        memo.put(f"{i:064x}", "t", unit(value))
    memo.put("f" * 64, "t", unit(1, text="\udc80"))
    memo.flush()
    again = TenantMemo(Cache(tmp_path / FOLDER), "dev", b"templates", "contributions")
    for i, value in enumerate(kept):
        found = again.get(f"{i:064x}", "t")
        assert found is not None
        ((path, digest, ((*meta, item, namespace),)),) = found
        assert (path, digest, tuple(meta), namespace) == ("t/x.yaml", hashlib.sha256(b"kind: X\n").hexdigest(),
                                                          unit(value)[0][2][0][:6], None)
        assert orjson.loads(item.json()) == {"manifest": {"kind": "X", "value": value}, "file": "rendered/dev/t/x.yaml",
                                      "_source": {"file": "catalog/tenants/t.yaml", "line": 1, "col": 1},
                                      "sources": ["a.yaml"]}
    for i in range(len(kept), len(kept) + len(refused)):
        assert again.get(f"{i:064x}", "t") is None
    assert again.get("f" * 64, "t") is None


def _engine_inputs(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, bytes | None]]]:
    """What the engine is handed from now on, one list per environment: each request's
    query and input text, each item a found tenant keeps read from the cache (the requests
    are made in this process: one worker)."""
    import kitchen_gitops.policy.gate as gate
    from kitchen_gitops.input_items import input_json

    monkeypatch.setenv("KITCHEN_JOBS", "1")
    texts: list[list[tuple[str, bytes | None]]] = []
    requests_of = gate.requests_of

    def spy(*args: object, **kwargs: object) -> object:
        made = requests_of(*args, **kwargs)  # type: ignore[arg-type]
        texts.append([(r.path, input_json(r.doc)) for r in made])
        return made

    monkeypatch.setattr(gate, "requests_of", spy)
    return texts


def test_tenants_found_in_the_cache_give_the_engine_the_input_a_render_gives(
        cached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenant found in the cache goes into the policy input as the JSON it was kept as:
    the engine is handed, byte for byte, what a run without the cache hands it; real
    OPA, which is handed documents, finds what it finds without the cache."""
    texts = _engine_inputs(monkeypatch)
    uncached = _run(cached, capsys, "--no-cache")
    without, texts[:] = list(texts), []
    assert _run(cached, capsys)[:2] == uncached[:2]  # cold: every tenant rendered and kept
    assert texts == without
    texts.clear()
    rule = cached / "policies" / "rules" / "lora_rank.rego"
    rule.write_text(rule.read_text() + "\n# another library: every tenant found, every part evaluated\n")
    found = _run(cached, capsys)
    assert found[:2] == uncached[:2] and _tenants(found[2])[1:] == (0, 0) and _tenants(found[2])[0] > 0
    assert texts == without and all(text is not None for run in texts for _, text in run)
    opa = _run(cached, capsys, "--engine", "opa")
    assert _tenants(opa[2])[1] == 0 and opa[:2] == _run(cached, capsys, "--engine", "opa", "--no-cache")[:2]


def test_the_expectations_follow_the_policy_data_an_evaluation_set_reads(
        cached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each tenant's part of the conformance expectations is found by its unit and, where
    one of its flavors has an evaluation set, by the policy data too: a drift tolerance
    edited there is in the next warm run's expectations (the engine is handed what a run
    without the cache hands it), and the other tenants' parts are found."""
    texts = _engine_inputs(monkeypatch)
    cold = _run(cached, capsys)
    parts = _counts(cold[2], "tenant-part")
    assert parts[0] == 0 and parts[1] == parts[2] > 0
    data = cached / "policies" / "data.yaml"
    old = "rougeL: {higher_is_better: true, floor: 0.4, drift_tolerance: 0.05}"
    assert old in data.read_text()
    data.write_text(data.read_text().replace(old, old.replace("0.05", "0.0625")))
    texts.clear()
    warm = _run(cached, capsys)
    found, computed, _ = _counts(warm[2], "tenant-part")
    assert found > 0 and computed > 0 and found + computed == parts[1]
    got = list(texts)
    assert any(b"0.0625" in (text or b"") for run in got for _, text in run)
    texts.clear()
    assert _run(cached, capsys, "--no-cache")[:2] == warm[:2]
    assert texts == got


def test_after_a_flavor_edit_the_engine_is_handed_what_a_run_without_the_cache_hands_it(
        cached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A flavor edit that moves every position of its file (a comment above it) changes
    that flavor's catalog item, the plan, expectations and objects of the tenants that serve
    it; everything else is found (catalog items by their documents, the tenants' parts by
    their units).  The engine's input is byte for byte that of a run without the cache."""
    texts = _engine_inputs(monkeypatch)
    cold = _run(cached, capsys)
    items = _counts(cold[2], "catalog-item")
    assert items[0] == 0 and items[1] == items[2] > 0
    flavor = cached / "catalog" / "flavors" / "faq-answerer@v3.yaml"
    flavor.write_text("# moved down a line\n" + flavor.read_text())
    texts.clear()
    warm = _run(cached, capsys)
    found, computed, _ = _counts(warm[2], "catalog-item")
    environments = len(list((cached / "environments").glob("*.yaml")))
    assert computed == environments and found == items[1] - environments  # one item per environment's input
    tenants = _tenants(warm[2])
    assert tenants[0] > 0 and tenants[1] > 0
    parts = _counts(warm[2], "tenant-part")
    assert parts[0] > 0 and parts[1] == 2 * tenants[1]  # its expectations and its plan, per tenant rendered again
    got = list(texts)
    texts.clear()
    assert _run(cached, capsys, "--no-cache")[:2] == warm[:2]
    assert texts == got and all(text is not None for run in got for _, text in run)


def test_expectations_from_the_tenants_parts_are_the_committed_text(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The conformance expectations a run assembles from the tenants' kept parts are, byte
    for byte, what ``kitchen render`` (which keeps nothing) committed: the committed output
    is up to date cold and warm, and the warm run described no tenant again."""
    cold = main(["check", "--verbose", "--root", str(cached)])
    out, err = capsys.readouterr()
    assert cold == 0 and "render.stale" not in out, out
    notes = [line for line in err.splitlines() if line.startswith("cache")]
    assert _counts(notes, "tenant-part")[1] > 0
    rule = cached / "policies" / "rules" / "lora_rank.rego"
    rule.write_text(rule.read_text() + "\n# the environments are rendered again, from the kept parts\n")
    warm = main(["check", "--verbose", "--root", str(cached)])
    out, err = capsys.readouterr()
    assert warm == 0 and "render.stale" not in out, out
    notes = [line for line in err.splitlines() if line.startswith("cache")]
    found, computed, _ = _counts(notes, "tenant-part")
    assert found > 0 and computed == 0


def test_a_parsed_file_entry_gives_back_exactly_the_values_the_parser_gave(tmp_path: Path) -> None:
    """An entry's data is read as JSON; a date comes back a date, and what the parser never
    gives (an integer beyond int64, a malformed date tag) is refused, whether or not the
    entry holds anything to turn back."""
    import datetime as dt
    import json

    from kitchen_gitops import document_cache

    def entry(data: object) -> bytes:
        return json.dumps({"data": data, "paths": [[]], "marks": [1, 1, 1, 1]}).encode()

    def read(data: object) -> object:
        doc = document_cache.decode(entry(data), tmp_path / "x.yaml", "catalog/flavors/x.yaml")
        return None if doc is None else doc.data

    assert read({"a": [1, 2.5, "x", None, True]}) == {"a": [1, 2.5, "x", None, True]}
    assert read({"d": {"\0date": "2026-12-06"}}) == {"d": dt.date(2026, 12, 6)}
    assert read({"n": 2**63 - 1}) == {"n": 2**63 - 1}
    assert read({"n": 2**63}) is None
    assert read({"d": {"\0date": "2026-12-06", "x": 1}}) is None and read({"d": {"\0date": 5}}) is None


def test_a_found_tenant_file_is_compared_with_the_committed_one_by_its_digest(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tenant found in the cache keeps its files' digests, not their texts: a committed
    file of that tenant edited by one byte, or gone, is still reported by the staleness
    check of a warm run that renders no tenant again, and put back it is up to date."""
    assert main(["check", "--verbose", "--root", str(cached)]) == 0
    capsys.readouterr()
    tenants = sorted(p.parent for p in (cached / "rendered" / "dev").glob("*/inferenceservice-*.yaml"))
    edited, gone = sorted(tenants[0].glob("inferenceservice-*.yaml"))[0], tenants[-1] / "namespace.yaml"
    before = edited.read_bytes(), gone.read_bytes()
    edited.write_bytes(before[0].replace(b"\n", b" \n", 1))
    gone.unlink()
    code = main(["check", "--verbose", "--root", str(cached)])
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("cache")]
    found, computed, _ = _tenants(notes)
    assert code != 0 and found > 0 and computed == 0, (out, notes)
    stale = [line for line in out.splitlines() if "render.stale" in line]
    shown = {p.relative_to(cached).as_posix(): word for p, word in ((edited, "out of date"), (gone, "missing"))}
    assert len(stale) == 2 and all(any(path in line and word in line for line in stale)
                                   for path, word in shown.items()), stale
    edited.write_bytes(before[0])
    gone.write_bytes(before[1])
    assert main(["check", "--verbose", "--root", str(cached)]) == 0


def test_a_mapping_whose_own_key_is_the_date_tag_is_not_kept(tmp_path: Path) -> None:
    """A mapping whose key is the entries' date tag would be read back as a date: such a
    document is not kept (the loader refuses the control character in a key today; the
    entry does not rely on it)."""
    from kitchen_gitops import document_cache
    from kitchen_gitops.load import Document, Span

    def doc(data: dict[str, object]) -> Document:
        return Document(tmp_path / "x.yaml", "catalog/flavors/x.yaml", data, {(): Span(1, 1, 1, 1)})

    assert document_cache.encode(doc({"schema": {"\0date": "2026-12-06"}})) is None
    assert document_cache.encode(doc({"schema": [{"\0date": "2026-12-06", "x": 1}]})) is None
    kept = document_cache.encode(doc({"schema": {"date": "2026-12-06"}}))
    assert kept is not None
    back = document_cache.decode(kept, tmp_path / "x.yaml", "catalog/flavors/x.yaml")
    assert back is not None and back.data == {"schema": {"date": "2026-12-06"}}


def test_the_policy_data_is_found_by_its_bytes_and_checked_again_when_they_change(
        cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(cached, capsys)
    assert "cache policy-data: 0 found, 1 computed, 1 stored" in first[2]
    again = _run(cached, capsys)
    assert again[:2] == first[:2]
    assert "cache policy-data: 1 found, 0 computed, 0 stored" in again[2]
    data = cached / "policies" / "data.yaml"
    original = data.read_bytes()
    data.write_bytes(original + b"gate_flors: {}\n")  # a typo: refused, never found as the data before it
    assert main([*ARGS, "--root", str(cached)]) == 2
    assert "policies/data.yaml:" in capsys.readouterr().err
    for entry in _entries(cached, "policy-data"):  # a damaged entry is parsed again
        entry.write_bytes(entry.read_bytes()[:-2])
    data.write_bytes(original)
    back = _run(cached, capsys)
    assert back[:2] == first[:2]
    assert "cache policy-data: 0 found, 1 computed, 1 stored" in back[2]

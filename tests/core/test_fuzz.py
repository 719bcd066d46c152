"""Mutation fuzzing of the whole pipeline: load → validate → plan → render → check.

Each run mutates one file of a small catalog (hostile scalars, YAML hazards, bytes that
are not UTF-8, cut files, odd file names and file types) and runs the commands in
process.  Whatever the input, the tool must: exit 0, 1 or 2; raise nothing (a
traceback fails the test with the input that caused it); print JSON that parses; put
every finding at a line and column that exist in the file it names; and leave
``rendered/`` untouched when a render fails.

Bounded: a fixed seed and a fixed count, about a minute on a 2-core machine;
``KITCHEN_FUZZ_RUNS`` and ``KITCHEN_FUZZ_SEED`` explore further in a longer local run.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import pytest

from kitchen_gitops.cli import main
from tests.conftest import CASES, REPO, copy_catalog

SEED = int(os.environ.get("KITCHEN_FUZZ_SEED", "14"))
RUNS = int(os.environ.get("KITCHEN_FUZZ_RUNS", "500"))
# every this many runs, the full gate (render + policies) runs too; validate runs always
FULL_EVERY = 4

HOSTILE_VALUES = [
    "true", "false", "yes", "~", "null", "0", "-1", "1.5", "1e400", "-.inf", ".nan", "0x7fffffffffffffffff",
    "9" * 40, "2026-13-45", "2026-02-30", "0001-01-01", "!!int abc", "!!binary aGk=", "!foo bar", "&a [*a]",
    "*undefined", '"x\\n"', '"cs-llm\\n"', '"\\e[31mred"', '"\\x9b2J"', '"\\u202eevil"', '"a\\u2028b"',
    '"\\0"', "'a|b'", "'::error::x'", "'%0A'", "'<img src=x>'", "[", "]", "{", "}", "{a: 1}", "[1, 2]",
    "''", "kube-system", "default", "system:authenticated", "'*'", "pvc://../x/y", "pvc://claim/../x",
    "s3://b/../x", "s3:///x", "s3://bucket//x", "pvc://Claim_1/x", "128GB", "-8", "1e3Gi", "x" * 300,
    "'@org/team'", "|\n  multi\n  line", ">-\n  folded", "&anc value", "!!python/object:os.system x",
    "'../../etc/passwd'", "/abs/path", "'\t'", "'a,b:c'", "ÿ", "🙂",
]
SNIPPETS = [
    "<<: {extra: 1}\n",
    "deep: " + "[" * 60 + "]" * 60 + "\n",
    "bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"bomb{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]\n" for i in range(1, 7)),
    "loop: &l [*l]\n",
    "? [complex, key]\n: value\n",
    "dup: 1\ndup: 2\n",
    "---\nkind: Second\n",
    "%YAML 1.1\n---\n",
    "\tkey: tab\n",
]
RAW_BYTES = [b"\xff\xfe", b"\x00", b"\xc3", b"\x1b[2J", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\x85", b"\t"]


def _mutate(rnd: random.Random, raw: bytes) -> bytes:
    text = raw.decode("utf-8")
    lines = text.splitlines(keepends=True)
    choice = rnd.randrange(9)
    if choice <= 2 and lines:  # replace a scalar value
        i = rnd.randrange(len(lines))
        key, sep, _ = lines[i].partition(": ")
        if sep:
            value = rnd.choice(HOSTILE_VALUES)
            if "\n" in value:
                indent = " " * (len(key) - len(key.lstrip()) + 2)
                value = value.replace("\n  ", "\n" + indent)
            lines[i] = f"{key}: {value}\n"
        else:
            lines[i] = lines[i].rstrip("\n") + " " + rnd.choice(HOSTILE_VALUES) + "\n"
        return "".join(lines).encode("utf-8", "surrogatepass")
    if choice == 3 and lines:  # delete or duplicate a line
        i = rnd.randrange(len(lines))
        if rnd.random() < 0.5:
            del lines[i]
        else:
            lines.insert(i, lines[i])
        return "".join(lines).encode()
    if choice == 4 and lines:  # shift indentation
        i = rnd.randrange(len(lines))
        lines[i] = ("  " + lines[i]) if rnd.random() < 0.5 else lines[i].lstrip()
        return "".join(lines).encode()
    if choice == 5:  # insert raw bytes
        pos = rnd.randrange(len(raw) + 1)
        return raw[:pos] + rnd.choice(RAW_BYTES) + raw[pos:]
    if choice == 6:  # cut the file
        return raw[: rnd.randrange(len(raw) + 1)]
    if choice == 7:  # a YAML hazard at the top level
        return raw + rnd.choice(SNIPPETS).encode()
    # a hostile new key in a nested mapping
    i = rnd.randrange(len(lines)) if lines else 0
    indent = ""
    if lines:
        indent = " " * (len(lines[i]) - len(lines[i].lstrip()))
    lines.insert(i, f"{indent}{rnd.choice(['extra', 'kind', 'name', 'PROD', '<<', 'a b'])}: "
                    f"{rnd.choice(HOSTILE_VALUES).splitlines()[0]}\n")
    return "".join(lines).encode("utf-8", "surrogatepass")


def _file_mutation(rnd: random.Random, root: Path, path: Path) -> str:
    """Change what the file is rather than what it says; returns a description."""
    choice = rnd.randrange(6)
    if choice == 0:
        target = path.with_name(path.stem + ".YAML")
        path.rename(target)
        return f"renamed to {target.name}"
    if choice == 1:
        sub = path.parent / "team-a"
        sub.mkdir(exist_ok=True)
        path.rename(sub / path.name)
        return "moved into a sub-folder"
    if choice == 2:
        path.unlink()
        path.symlink_to("/etc/hostname")
        return "symlink out of the repository"
    if choice == 3:
        path.unlink()
        os.mkfifo(path)
        return "FIFO"
    if choice == 4:
        path.rename(path.with_name("x\n---\nkind: Secret.yaml"))
        return "file name with a newline"
    path.unlink()
    path.symlink_to(path.with_name("nowhere.yaml"))
    return "dangling symlink"


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    if folder.exists():
        for p in sorted(folder.rglob("*")):
            h.update(p.relative_to(folder).as_posix().encode())
            if p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def _run(args: list[str], capsys: pytest.CaptureFixture[str], what: str) -> tuple[int, str, str]:
    try:
        code = main(args)
    except BaseException as exc:  # a traceback: the input that caused it is in the message
        out, err = capsys.readouterr()
        raise AssertionError(f"{what}: {' '.join(args[:1])} raised {type(exc).__name__}: {exc}\n{err}") from exc
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (what, args, code, out, err)
    assert "Traceback" not in out + err, (what, out, err)
    return code, out, err


def _check_locations(root: Path, findings: list[dict[str, object]], what: str) -> None:
    for f in findings:
        loc = f["location"]
        assert isinstance(loc, dict)
        file, line, col = str(loc["file"]), int(loc["line"]), int(loc["col"])
        if f["rule_id"] == "load.file-name":
            continue  # the name is shown escaped: that file cannot be named as it is
        path = root / file
        assert path.exists() or path.is_symlink(), (what, f)
        if path.is_symlink() or not path.is_file() or line == 0:
            continue
        raw = path.read_bytes()
        count = raw.count(b"\n") + 1
        assert 1 <= line <= count, (what, f, count)
        assert col >= 1, (what, f)


@pytest.fixture(scope="module")
def seed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_catalog(CASES / "minimal", tmp_path_factory.mktemp("fuzz-seed") / "repo")
    shutil.copytree(REPO / "policies", root / "policies")
    (root / "policies" / "waivers.yaml").unlink(missing_ok=True)
    assert main(["render", "--root", str(root)]) == 0
    return root


def test_fuzz_pipeline(seed_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    rnd = random.Random(SEED)
    files = sorted(p.relative_to(seed_repo) for p in (seed_repo / "catalog").rglob("*.yaml"))
    files += sorted(p.relative_to(seed_repo) for p in (seed_repo / "environments").rglob("*.yaml"))
    codes: dict[int, int] = {}
    for run in range(RUNS):
        root = tmp_path / f"r{run}"
        shutil.copytree(seed_repo, root, symlinks=True)
        rel = rnd.choice(files)
        path = root / rel
        if rnd.random() < 0.1:
            what = f"run {run}: {rel} {_file_mutation(rnd, root, path)}"
        else:
            mutated = _mutate(rnd, path.read_bytes())
            if rnd.random() < 0.2:  # two mutations at once
                mutated = _mutate(rnd, mutated) if mutated.decode("utf-8", "ignore") == mutated.decode(
                    "utf-8", "replace") else mutated
            path.write_bytes(mutated)
            what = f"run {run}: {rel} <- {mutated[:2000]!r}"
        code, out, _ = _run(["validate", "--root", str(root), "--format", "json"], capsys, what)
        codes[code] = codes.get(code, 0) + 1
        report = json.loads(out)
        _check_locations(root, report["findings"], what)
        assert (code == 1) == any(f["severity"] == "error" for f in report["findings"]), what
        if run % FULL_EVERY == 0:
            before = _tree_digest(root / "rendered")
            code, _, _ = _run(["render", "--root", str(root)], capsys, what)
            if code != 0:
                assert _tree_digest(root / "rendered") == before, f"{what}: a failed render changed rendered/"
            code, out, _ = _run(["check", "--root", str(root), "--format", "json", "--no-render-check"],
                                capsys, what)
            if code != 2:
                report = json.loads(out)
                _check_locations(root, report["findings"], what)
            _run(["render", "--root", str(root), "--check"], capsys, what)
        shutil.rmtree(root, ignore_errors=True)
        if root.exists():  # a FIFO or odd name rmtree could not remove: leave it to tmp_path
            pass
    # the mutations must reach both outcomes, or the fuzzer tests nothing
    assert codes.get(1, 0) > RUNS // 4 and codes.get(0, 0) > 0, codes

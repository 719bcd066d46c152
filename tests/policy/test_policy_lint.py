"""Lint of the policy library for patterns the two engines read differently.

``not f(x) == y`` (or ``not f(x) > 0``, any comparison): OPA hoists the call out of the
negation, so when ``f(x)`` is undefined the whole body is undefined on OPA and true on
regorus — the rule fires on one engine only.  Write a helper rule instead
(``is_latest(x) if f(x) == "latest"`` … ``not is_latest(x)``).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.policy.policy_cases import REPO

# `not` followed by an expression that calls a function and compares its value
NOT_CALL_COMPARE = re.compile(
    r"^\s*not\s+(?=[^#\n]*\()[^#\n]*?[\w.\]]+\([^#\n]*\)[^#\n]*?(==|!=|<=|>=|<|>|=)(?!=)")


# a set rule whose head reads a field (`s contains [r.a.b, x] if {`): when the field is
# undefined, regorus fails the whole evaluation where OPA leaves the element out — bind
# it in the body (`ns := r.a.b`) instead
HEAD_REF = re.compile(r"^\w+ contains (?![\"{])[^\n]*?\b[a-z_]\w*\.[a-z_]\w*[^\n]* if\b")


def _offences(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if NOT_CALL_COMPARE.search(line) or HEAD_REF.search(line)]


def test_lint_catches_the_pattern() -> None:
    bad = ('\tnot tag_of(image) == "latest"\n\tnot count(x) > 0\n\tnot lib.f(a, b) != 1\n'
           '\tnot object.get(m, "a", 0) >= 2\n')
    bad += 'alerts contains [r.manifest.metadata.namespace, rule.alert] if {\nns contains r.x if {\n'
    assert [n for n, _ in _offences(bad)] == [1, 2, 3, 4, 5, 6]
    good = ('\tnot latest(image)\n\tnot x.y == 1\n\tnot pinned(image)\n\tv := f(x) # not f(x) == 1\n'
            'violation contains v if {\nalerts contains [ns, rule] if {\nrequired contains "a.b" if x\n')
    assert _offences(good) == []


def test_no_negated_call_comparison_in_the_library() -> None:
    found = []
    for path in sorted((REPO / "policies").rglob("*.rego")):
        found += [f"{path.relative_to(REPO)}:{n}: {line}" for n, line in _offences(path.read_text(encoding="utf-8"))]
    assert found == [], ("rewrite `not f(x) == y` through a helper rule (OPA hoists the call), and bind "
                         "fields a set rule's head reads in its body:\n" + "\n".join(found))


def test_pattern_absent_from_policy_examples() -> None:
    # the docs and examples teach the same idiom
    for path in sorted(Path(REPO / "docs").rglob("*.md")):
        assert _offences(path.read_text(encoding="utf-8")) == [], path


# A value of the library read through its import (`lib.env`, `lib.services`): the
# embedded engine evaluates the whole `kitchen.lib` package to read it — about 0.3 s for
# each rule that does on the synthetic organisation of bench/check_bench.py, where the
# full path (`data.kitchen.lib.env`) reads the one rule.  Calls (`lib.resource_id(r)`)
# are not affected.
LIB_VALUE = re.compile(r"(?<![\w.])lib\.[a-z_]\w*\b(?!\s*\()")


def _library_values(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if LIB_VALUE.search(line.split("#", 1)[0])]


def test_lint_catches_library_values_read_through_the_import() -> None:
    assert [n for n, _ in _library_values("\tx := lib.env.name\n\tsome s in lib.services\n")] == [1, 2]
    assert _library_values("\tx := data.kitchen.lib.env.name\n\tlib.resource_id(r)\n\t# lib.env\n") == []


def test_rules_read_library_values_by_their_full_path() -> None:
    found = []
    for path in sorted((REPO / "policies").rglob("*.rego")):
        if not path.name.endswith("_test.rego"):
            found += [f"{path.relative_to(REPO)}:{n}: {line}"
                      for n, line in _library_values(path.read_text(encoding="utf-8"))]
    assert found == [], "read library values as data.kitchen.lib.<name>:\n" + "\n".join(found)


def test_every_library_value_a_rule_reads_exists() -> None:
    """A misspelt path (`data.kitchen.lib.envv`) is undefined on both engines, and a rule
    that reads it silently never fires: every path a rule reads names a rule of the library."""
    lib = (REPO / "policies" / "lib" / "kitchen.rego").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([a-z_]\w*)\b", lib, flags=re.MULTILINE))
    found = []
    for path in sorted((REPO / "policies").rglob("*.rego")):
        if path.name.endswith("_test.rego"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.startswith("import "):
                continue
            for m in re.finditer(r"\bdata\.kitchen\.(\w+)(?:\.(\w+))?", code):
                top, name = m.group(1), m.group(2)
                if top == "params" or (top == "lib" and name in defined) or top == "rules":
                    continue
                found.append(f"{path.relative_to(REPO)}:{n}: {m.group(0)}")
    assert found == [], "paths that name no rule of the library:\n" + "\n".join(found)

"""The allow-list of vLLM options for extra_args: every option of every supported release is
classified, values are held to their kind, and the allow-list itself is checked as data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kitchen_gitops import pipeline, vllm_release
from kitchen_gitops.pipeline import CheckOptions, check
from kitchen_gitops.plan import OWNED_DESTS
from kitchen_gitops.policy.errors import PolicyError
from kitchen_gitops.policy.library import load_policy_data
from kitchen_gitops.vllm_allow import (
    NOT_LISTED,
    REFUSED,
    RULE,
    Allowed,
    AllowListError,
    allow_list,
    by_dest,
    classify,
    parse_entry,
    settings,
)
from kitchen_gitops.vllm_release import VllmOption
from tests.conftest import REPO, copy_catalog

ALLOW = allow_list(load_policy_data(REPO))


@pytest.mark.parametrize("release", vllm_release.supported())
def test_every_option_of_every_release_is_owned_allowed_or_refused(release: str) -> None:
    table = vllm_release.release(release)
    assert table is not None
    allowed = by_dest(table, ALLOW)
    verdicts: dict[str, set[str]] = {}
    for option in table.options.values():
        verdict = classify(option, allowed)
        verdicts.setdefault(verdict.verdict, set()).add(option.dest)
        assert verdict.verdict in ("owned", "allowed", "refused")
        assert (verdict.verdict == "owned") == (option.dest in OWNED_DESTS)
        assert (verdict.verdict == "allowed") == (option.dest in allowed)
        assert (verdict.allowed is not None) == (verdict.verdict == "allowed")
        if verdict.verdict == "refused":
            assert verdict.why == REFUSED.get(option.dest, NOT_LISTED)
    assert set(verdicts) == {"owned", "allowed", "refused"}
    # what the example catalog's environments use is allowed in every release
    assert {"enable_prefix_caching", "enable_chunked_prefill"} <= verdicts["allowed"]
    assert {"tool_parser_plugin", "middleware", "worker_extension_cls", "api_key", "tokenizer",
            "hf_overrides", "otlp_traces_endpoint", "allowed_local_media_path"} <= verdicts["refused"]


def test_every_owned_and_refused_entry_names_an_option_of_a_release() -> None:
    dests = {d for r in vllm_release.releases().values() for d in r.options}
    assert set(OWNED_DESTS) <= dests
    assert set(REFUSED) <= dests


def test_an_option_no_release_has_is_refused_and_cannot_be_allowed() -> None:
    made_up = VllmOption("made_up_option", ("--made-up-option",), None, None, "string", None)
    assert classify(made_up, by_dest(vllm_release.releases()["0.32.0"], ALLOW)).verdict == "refused"
    assert classify(made_up, {}).why == NOT_LISTED
    with pytest.raises(AllowListError, match="not an option of any supported vLLM release"):
        parse_entry("--made-up-option", {"kind": "switch"})


def test_every_spelling_the_parser_accepts_reads_the_option() -> None:
    table = vllm_release.release("0.11.0")  # -O is --compilation-config there
    assert table is not None
    argv = ["--tool_parser_plugin=/x.py", "--tool-parser-plugin", "/y.py", "-O3", "-O", "3",
            "--compilation-config.mode=3", "-tp=2", "--seed", "-1", "--no-enable-prefix-caching",
            "--api-key", "a", "b", "--made-up"]
    got = [(s.index, s.option.dest if s.option else None, s.values) for s in settings(table, argv)]
    assert got == [
        (0, "tool_parser_plugin", ("/x.py",)), (1, "tool_parser_plugin", ("/y.py",)),
        (3, "compilation_config", ("3",)), (4, "compilation_config", ("3",)),
        (6, "compilation_config", ("mode=3",)) if False else (6, "compilation_config", ("3",)),
        (7, "tensor_parallel_size", ("2",)), (8, "seed", ("-1",)),
        (10, "enable_prefix_caching", ()), (11, "api_key", ("a", "b")), (14, None, ()),
    ]


@pytest.mark.parametrize(("allowed", "good", "bad"), [
    (Allowed("--seed", "int", 0, 10), ["0", "10", "7"], ["-1", "11", "1.5", "1k", "", None, "0x1"]),
    (Allowed("--swap-space", "number", 0, 64), ["0", "64", "0.5", ".5"], ["64.5", "-1", "nan", "inf", "1e3", None]),
    (Allowed("--kv-cache-dtype", "choice", values=("auto", "fp8")), ["auto", "fp8"], ["FP8", "fp8 ", "bfloat16"]),
    (Allowed("--chat-template", "path", under="/mnt/models/base"),
     ["/mnt/models/base/t.jinja", "/mnt/models/base/a/b_c-1.jinja"],
     ["/mnt/models/base", "/mnt/models/base/", "/mnt/models/base/../x", "/mnt/models/base/./x",
      "/mnt/models/base//x", "/mnt/models/basement/x", "mnt/models/base/x", "/etc/passwd",
      "/mnt/models/base/x/..", "{{ messages }}", "https://example.com/t.jinja"]),
    (Allowed("--enforce-eager", "switch"), [None], ["true", ""]),
])
def test_values_are_held_to_their_kind(allowed: Allowed, good: list[str | None], bad: list[str | None]) -> None:
    assert [v for v in good if allowed.refusal(v) is not None] == []
    assert [v for v in bad if allowed.refusal(v) is None] == []


def _data_root(tmp_path: Path, entries: str) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "data.yaml").write_text("workload_kinds: [Pod]\nvllm_extra_args:\n" + entries)
    return tmp_path


@pytest.mark.parametrize(("entries", "at", "message"), [
    ("  --enforce-eager: {kind: swich}\n", "swich", "--enforce-eager.kind: one of switch, int, number, choice, path"),
    ("  --enforce-eager: switch\n", "switch", "--enforce-eager: a mapping with kind"),
    ("  --seed: {kind: int, min: 0, max: 9, step: 1}\n", "step", "--seed: unknown field for kind int"),
    ("  --seed: {kind: int, min: 0}\n", "{", "--seed: kind int needs kind, min, max"),
    ("  --seed: {kind: int, min: 9, max: 1}\n", "1}", "--seed.max: at least min"),
    ("  --seed: {kind: int, min: 0, max: 1.5}\n", "1.5", "--seed.max: an integer"),
    ("  --enable-prefix-cache: {kind: switch}\n", "--", "not an option of any supported vLLM release"),
    ("  --enable_prefix_caching: {kind: switch}\n", "--", "written as its long flag"),
    ("  --max-loras: {kind: int, min: 1, max: 8}\n", "--", "written by kitchen from serving.vllm.max_loras"),
    ("  --max-num-batched-tokens: {kind: int, min: 1, max: 8}\n", "--", "written by kitchen"),
    ("  --tool-parser-plugin: {kind: path, under: /mnt/models}\n", "--", "cannot be allowed: it imports"),
    ("  --hf-overrides: {kind: choice, values: [x]}\n", "--", "cannot be allowed"),
    ("  --seed: {kind: switch}\n", "switch", "kind switch does not fit it"),
    ("  --enforce-eager: {kind: int, min: 0, max: 1}\n", "int", "kind int does not fit it"),
    ("  --max-log-len: {kind: choice, values: [evil.module]}\n", "evil", "values[0]: a word"),
    ("  --kv-cache-dtype: {kind: choice, values: []}\n", "[]", "values: a list of one or more words"),
    ("  --max-log-len: {kind: choice, values: ['http://x']}\n", "'http", "(no URL, module or file)"),
    ("  --chat-template: {kind: path, under: /etc}\n", "/etc", "under: /mnt/models or a folder below it"),
    ("  --chat-template: {kind: path, under: /mnt/models/../etc}\n", "/mnt", "under: /mnt/models or a folder"),
    ("  --chat-template: {kind: path, under: /mnt/models/base/}\n", "/mnt", "no trailing '/'"),
])
def test_a_bad_allow_list_is_a_configuration_error_at_its_line(tmp_path: Path, entries: str, at: str,
                                                                message: str) -> None:
    """Reported at the first occurrence of ``at`` in the entry (line 3 of the file)."""
    with pytest.raises(PolicyError) as caught:
        load_policy_data(_data_root(tmp_path, entries))
    assert caught.value.location is not None
    assert (caught.value.location.line, caught.value.location.col) == (3, entries.index(at) + 1)
    assert caught.value.location.file == "policies/data.yaml"
    assert message in caught.value.detail


def _check_prod(root: Path) -> list[tuple[str, str, str]]:
    result = check(CheckOptions(root, ("prod",), render_check=False))
    return [(str(f.location), f.message, f.expected) for f in result.findings if f.rule_id == RULE]


def _set_prod_extra_args(root: Path, args: str) -> None:
    env = root / "environments" / "prod.yaml"
    old = "extra_args: [--enable-prefix-caching, --enable-chunked-prefill]"
    env.write_text(env.read_text().replace(old, f"extra_args: {args}"))


def test_security_widens_the_allow_list_in_policies_data(tmp_path: Path) -> None:
    """An option outside the allow-list is refused at its entry; listed in data.yaml, it passes
    within its bounds and is refused outside them."""
    root = copy_catalog(REPO, tmp_path / "repo")
    _set_prod_extra_args(root, "[--enable-prefix-caching, --max-log-len=100]")
    (found,) = _check_prod(root)
    assert found[0] == "environments/prod.yaml:53:43"
    assert "set --max-log-len, an option outside the allow-list" in found[1]
    assert found[2].startswith("only allowed options: --block-size, --chat-template, ")
    data = root / "policies" / "data.yaml"
    data.write_text(data.read_text().replace("vllm_extra_args:\n",
                                             "vllm_extra_args:\n  --max-log-len: {kind: int, min: 0, max: 50}\n"))
    (found,) = _check_prod(root)
    assert found[0] == "environments/prod.yaml:53:43"
    assert "set --max-log-len to '100', outside what the allow-list" in found[1]
    assert found[2] == "an integer from 0 to 50"
    data.write_text(data.read_text().replace("max: 50}", "max: 500}"))
    assert _check_prod(root) == []


def test_without_an_allow_list_every_option_is_refused(tmp_path: Path) -> None:
    root = copy_catalog(REPO, tmp_path / "repo")
    data = root / "policies" / "data.yaml"
    text = data.read_text()
    data.write_text(re.sub(r"\nvllm_extra_args:\n(  .*\n)+", "\n", text))
    found = _check_prod(root)
    assert [(where, expected) for where, _, expected in found] == [
        ("environments/prod.yaml:53:18", "only allowed options: none (the allow-list is empty)"),
        ("environments/prod.yaml:53:43", "only allowed options: none (the allow-list is empty)"),
    ]


def test_max_num_batched_tokens_is_kitchens_own(tmp_path: Path) -> None:
    """The memory plan reads serving.vllm.max_num_batched_tokens: a second value in extra_args
    is plan.vllm-owned-flag, not an option the allow-list could take."""
    root = copy_catalog(REPO, tmp_path / "repo")
    _set_prod_extra_args(root, "[--enable-prefix-caching, --max_num_batched_tokens=65536]")
    found = [f for f in pipeline.plan(root, ["prod"]).findings if f.rule_id == "plan.vllm-owned-flag"]
    assert [(str(f.location), f.expected) for f in found] == [
        ("environments/prod.yaml:53:43",
         "serving.vllm.max_num_batched_tokens, not --max-num-batched-tokens in extra_args")]

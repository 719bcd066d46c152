"""Evaluation sets: the metric registry, the JSONL format of a set, and how an answer is scored.

A flavor's ``evaluation.dataset`` names a JSONL file — in the catalog repository under
``evaluations/`` or an object in S3, pinned by sha256 — with one record per line::

    {"prompt": "How do I reset my password?", "reference": "Open Settings > Security ..."}

What ``reference`` holds depends on the metric (:data:`METRICS`): the expected text, a
regular expression, a JSON schema, or one label of the flavor's closed label set.  Every
metric scores one answer from 0 to 1 and a set by the mean; each metric says which way is
better, and ``policies/data.yaml`` (``evaluation_metrics``) must say the same (a test
holds them together).  Reading a set is strict and bounded: every problem is a
:class:`DatasetProblem` at its line and column, and the run goes on to report them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .escape import visible
from .json_types import no_constants, unique_keys
from .load import FORBIDDEN_CHARACTERS
from .rules import (
    EVALUATION_DATASET_EMPTY,
    EVALUATION_DATASET_ENCODING,
    EVALUATION_DATASET_JSON,
    EVALUATION_DATASET_RECORD,
    EVALUATION_DATASET_TOO_LARGE,
)

# Where the catalog repository keeps its evaluation sets, and what a set may cost.  A set
# in the repository travels inside the conformance ConfigMap (at most 1 MiB with
# everything else), so it is kept small; a larger one lives in S3.
DATASET_DIR = "evaluations"
DATASET_SUFFIX = ".jsonl"
MAX_REPOSITORY_DATASET_BYTES = 256 << 10
MAX_S3_DATASET_BYTES = 16 << 20
MAX_RECORDS = 10_000
MAX_PROMPT_CHARS = 32_768
# how many of the lowest-scoring records a report shows
WORST_EXAMPLES = 3
RECORD_KEYS = ("id", "prompt", "reference")


@dataclass(frozen=True)
class Record:
    """One line of an evaluation set."""

    line: int
    prompt: str
    reference: object
    id: str = ""


@dataclass(frozen=True)
class DatasetProblem:
    """Why a line (or the whole set) cannot be used: at ``line:col`` of the set's file."""

    rule: str
    message: str
    line: int = 1
    col: int = 1
    expected: str = ""


# ---------------------------------------------------------------- the metrics


def json_value(text: str, what: str = "answer") -> object:
    """The JSON value ``text`` (a model's ``what``) holds: all of it, or its first
    ``{…}``/``[…]`` block; ValueError when there is none."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                return decoder.raw_decode(text, i)[0]
            except json.JSONDecodeError:
                continue
    raise ValueError(f"no JSON value in the {what}")


def predicted_label(output: str, labels: Sequence[str]) -> str | None:
    """The label an answer starts with (the longest that fits, followed by the end or a
    character that is not a letter or digit); None when it starts with none."""
    text = output.strip()
    for label in sorted(labels, key=lambda s: (-len(s), s)):
        if text.startswith(label) and (len(text) == len(label) or not text[len(label)].isalnum()):
            return label
    return None


def _exact_match(output: str, reference: object, labels: Sequence[str]) -> float:
    return 1.0 if output.strip() == str(reference).strip() else 0.0


def _contains(output: str, reference: object, labels: Sequence[str]) -> float:
    return 1.0 if str(reference) in output else 0.0


# How long one regular expression may take over one answer.  A pattern that backtracks
# catastrophically ((a+)+$ against a long run of a's) would otherwise hold the conformance
# job until its deadline; bounded, it is a miss with its reason.
REGEX_TIMEOUT_S = 1.0


class RegexTimeout(ValueError):
    """A pattern that did not finish over an answer within REGEX_TIMEOUT_S."""


def search(pattern: str, text: str) -> bool:
    """``re.search`` semantics (the ``regex`` module's version 0, Python's own syntax), bounded
    in time: :class:`RegexTimeout` when the pattern backtracks past REGEX_TIMEOUT_S."""
    import regex

    try:
        return regex.search(pattern, text, timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:
        raise RegexTimeout(f"/{visible(pattern)}/ took longer than {REGEX_TIMEOUT_S:g} s over "
                           f"{len(text)} characters (catastrophic backtracking)") from None


def _regex(output: str, reference: object, labels: Sequence[str]) -> float:
    try:
        return 1.0 if search(str(reference), output) else 0.0
    except RegexTimeout:
        return 0.0


def _json_schema(output: str, reference: object, labels: Sequence[str]) -> float:
    import jsonschema

    try:
        jsonschema.validate(json_value(output), reference)
    except (ValueError, jsonschema.ValidationError):
        return 0.0
    return 1.0


def _label_accuracy(output: str, reference: object, labels: Sequence[str]) -> float:
    return 1.0 if predicted_label(output, labels) == reference else 0.0


class _RougeScore(Protocol):
    @property
    def fmeasure(self) -> float: ...


class _RougeScorer(Protocol):
    def score(self, target: str, prediction: str) -> Mapping[str, _RougeScore]: ...


_ROUGE: _RougeScorer | None = None


def _rouge_l(output: str, reference: object, labels: Sequence[str]) -> float:
    """ROUGE-L F-measure as Google Research's ``rouge-score`` computes it (its default
    tokenizer: lower case, letters and digits of the Latin alphabet)."""
    global _ROUGE
    scorer = _ROUGE
    if scorer is None:
        from rouge_score import rouge_scorer

        scorer = _ROUGE = rouge_scorer.RougeScorer(["rougeL"])
    return float(scorer.score(str(reference), output)["rougeL"].fmeasure)


@dataclass(frozen=True)
class Metric:
    """One metric of the registry: how it reads a record's reference and scores an answer."""

    name: str
    title: str
    higher_is_better: bool
    reference: str  # what a record's reference is: "text", "pattern", "schema" or "label"
    description: str
    score: Callable[[str, object, Sequence[str]], float]


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("exact_match", "Exact match", True, "text",
           "1 when the answer, without leading and trailing white space, is the reference", _exact_match),
    Metric("contains", "Contains", True, "text", "1 when the answer contains the reference", _contains),
    Metric("regex", "Regular expression", True, "pattern",
           "1 when the reference (a Python regular expression) matches somewhere in the answer", _regex),
    Metric("json_schema", "JSON schema valid", True, "schema",
           "1 when the answer (or its first {…}/[…] block) is JSON valid against the reference schema",
           _json_schema),
    Metric("label_accuracy", "Label accuracy", True, "label",
           "1 when the answer starts with the reference label, one of the flavor's closed label set "
           "(evaluation.labels)", _label_accuracy),
    Metric("rougeL", "ROUGE-L", True, "text",
           "ROUGE-L F-measure of the answer against the reference (the rouge-score package)", _rouge_l),
)}


def score_answer(metric: str, output: str, reference: object, labels: Sequence[str] = ()) -> float:
    """One answer's score, from 0 to 1."""
    return METRICS[metric].score(output, reference, labels)


def better(metric: str, a: float, b: float) -> bool:
    """Whether score ``a`` is strictly better than ``b`` on ``metric``."""
    return a > b if METRICS[metric].higher_is_better else a < b


# ---------------------------------------------------------------- reading a set


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def _key_col(text: str, key: str) -> int:
    i = text.find(f'"{key}"')
    return i + 1 if i >= 0 else 1


def _check_reference(metric: Metric, ref: object, labels: Sequence[str]) -> tuple[str, str]:
    """(problem, expected) for a record's reference; ("", "") when it is fine."""
    if metric.reference == "schema":
        if not isinstance(ref, dict):
            return "reference is not a JSON schema", "an object (a JSON schema)"
        import jsonschema

        try:
            jsonschema.validators.validator_for(ref).check_schema(ref)
        except jsonschema.SchemaError as exc:
            return f"reference is not a valid JSON schema: {exc.message}", "a valid JSON schema"
        return "", ""
    if not isinstance(ref, str) or not ref.strip():
        return ("reference is blank" if isinstance(ref, str) else "reference is not a string",
                "a non-blank string")
    if metric.reference == "pattern":
        try:
            re.compile(ref)
        except re.error as exc:
            return f"reference is not a regular expression: {exc}", "a Python regular expression"
    if metric.reference == "label" and ref not in labels:
        return (f"reference '{visible(ref)}' is not one of the flavor's labels",
                f"one of {', '.join(labels)}")
    return "", ""


def parse_record(text: str, lineno: int, metric: Metric, labels: Sequence[str]) -> Record | DatasetProblem:
    """One line of a set as a record, or why it is not one."""
    # what a reviewer reads is the line: a character that hides or reorders text may not be
    # written raw; escaped (\u202e) it is visible, and reports show it escaped
    bad = FORBIDDEN_CHARACTERS.search(text)
    if bad is not None:
        return DatasetProblem(EVALUATION_DATASET_RECORD,
                              f"the line holds the invisible character {visible(bad.group(0))}",
                              lineno, bad.start() + 1, "printable text; write such a character as a \\u escape")
    try:
        data = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constants,
                          parse_float=_finite)
    except json.JSONDecodeError as exc:
        return DatasetProblem(EVALUATION_DATASET_JSON, f"not JSON: {exc.msg}", lineno, exc.colno,
                              "one JSON object per line")
    except (ValueError, RecursionError) as exc:
        return DatasetProblem(EVALUATION_DATASET_JSON, f"not usable JSON: {exc}", lineno, 1,
                              "one JSON object per line, each key once, finite numbers")
    if not isinstance(data, dict):
        return DatasetProblem(EVALUATION_DATASET_RECORD, f"a JSON {type(data).__name__} is not a record",
                              lineno, 1, 'an object {"prompt": …, "reference": …}')
    unknown = sorted(set(data) - set(RECORD_KEYS))
    if unknown:
        return DatasetProblem(EVALUATION_DATASET_RECORD, f"unknown key '{visible(unknown[0])}'",
                              lineno, _key_col(text, unknown[0]), f"only {', '.join(RECORD_KEYS)}")
    for key in ("prompt", "reference"):
        if key not in data:
            return DatasetProblem(EVALUATION_DATASET_RECORD, f"missing '{key}'", lineno, 1,
                                  f'a record with "{key}"')
    prompt = data["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        return DatasetProblem(EVALUATION_DATASET_RECORD,
                              "prompt is blank" if isinstance(prompt, str) else "prompt is not a string",
                              lineno, _key_col(text, "prompt"), "a non-blank string")
    if len(prompt) > MAX_PROMPT_CHARS:
        return DatasetProblem(EVALUATION_DATASET_RECORD, f"prompt has {len(prompt)} characters",
                              lineno, _key_col(text, "prompt"), f"at most {MAX_PROMPT_CHARS}")
    rid = data.get("id", "")
    if not isinstance(rid, str):
        return DatasetProblem(EVALUATION_DATASET_RECORD, "id is not a string", lineno,
                              _key_col(text, "id"), "a string")
    problem, expected = _check_reference(metric, data["reference"], labels)
    if problem:
        return DatasetProblem(EVALUATION_DATASET_RECORD, problem, lineno, _key_col(text, "reference"),
                              expected)
    return Record(lineno, prompt, data["reference"], rid)


def parse_dataset(raw: bytes, metric_name: str, labels: Sequence[str] = (),
                  limit: int = MAX_REPOSITORY_DATASET_BYTES) -> tuple[list[Record], list[DatasetProblem]]:
    """Every record of a JSONL set, and every problem (line by line; blank lines are
    skipped).  ``metric_name`` must be a registry metric."""
    metric = METRICS[metric_name]
    if len(raw) > limit:
        return [], [DatasetProblem(EVALUATION_DATASET_TOO_LARGE,
                                   f"the set has more than {limit} bytes", 1, 1,
                                   f"at most {limit // 1024} KiB"
                                   + (" (a larger set goes to S3)" if limit == MAX_REPOSITORY_DATASET_BYTES
                                      else ""))]
    records: list[Record] = []
    problems: list[DatasetProblem] = []
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    for lineno, line in enumerate(body.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            col = len(line[:exc.start].decode("utf-8", "replace")) + 1
            problems.append(DatasetProblem(EVALUATION_DATASET_ENCODING, "not UTF-8", lineno, col,
                                           "UTF-8 text"))
            continue
        text = text.removesuffix("\r")
        if not text.strip():
            continue
        got = parse_record(text, lineno, metric, labels)
        if isinstance(got, DatasetProblem):
            problems.append(got)
        else:
            records.append(got)
        if len(records) > MAX_RECORDS:
            problems.append(DatasetProblem(EVALUATION_DATASET_TOO_LARGE,
                                           f"more than {MAX_RECORDS} records", lineno, 1,
                                           f"at most {MAX_RECORDS} records"))
            return records[:MAX_RECORDS], problems
    if not records and not problems:
        problems.append(DatasetProblem(EVALUATION_DATASET_EMPTY, "the set holds no record", 1, 1,
                                       'at least one line {"prompt": …, "reference": …}'))
    return records, problems

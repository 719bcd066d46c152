"""The ``evaluation`` check: every flavor's evaluation set scored on the live server.

Each record's prompt goes to the flavor (by the name the server serves it under) and to
its base, greedy (temperature 0, fixed seed), a bounded number of requests at a time.
The flavor's score is held to its threshold (an error below it), to the score the
catalog records (drift beyond the metric's tolerance: an error in strict environments, a
warning elsewhere) and to the base's score on the same set (the adapter must help).  The
set itself is checked first against the sha256 the catalog pins: a set of the repository
travels in the expectations, a set in S3 is fetched with the environment's credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from .. import settings
from ..evaluation_sets import (
    MAX_REPOSITORY_DATASET_BYTES,
    MAX_S3_DATASET_BYTES,
    METRICS,
    WORST_EXAMPLES,
    Record,
    better,
    parse_dataset,
    score_answer,
)
from ..findings import Location, ResourceRef, Severity
from .client import ApiError, Unreachable, completion_body, send_resending
from .expectations import DatasetSpec, EvaluationSpec, FlavorExpectation
from .results import CheckRecord, Status, clip, finding, timed

CHECK = "evaluation"


class DatasetUnavailable(Exception):
    """The set cannot be fetched (storage unreachable, object missing): could not run."""


# ---------------------------------------------------------------- the set


def fetch_dataset(spec: DatasetSpec, *, timeout_s: float = 30.0) -> bytes:
    """The set's bytes: those the expectations carry, or the S3 object's (credentials from
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a private CA from ``AWS_CA_BUNDLE``)."""
    if spec.content is not None:
        return spec.content.encode("utf-8")
    if spec.uri is None or spec.s3 is None:
        raise DatasetUnavailable(f"{spec.file}: the expectations carry neither the set nor where it is")
    from ..artifacts.storage import (
        ContainerProblem,
        ObjectMissing,
        S3Settings,
        S3Store,
        SourceUri,
        StorageUnreachable,
    )

    folder, _, name = spec.uri.rpartition("/")
    ca = settings.CA_BUNDLE.get()
    store = S3Store(S3Settings(
        endpoint=spec.s3.endpoint, secure=spec.s3.use_https, verify_tls=spec.s3.verify_ssl,
        region=spec.s3.region, access_key=settings.ACCESS_KEY.get(),
        secret_key=settings.SECRET_KEY.get(),
        session_token=settings.SESSION_TOKEN.get(), ca_bundle=Path(ca) if ca else None,
        timeout_s=timeout_s, connections=1, secret_name=spec.s3.secret))
    out = bytearray()
    try:
        for chunk in store.chunks(SourceUri.parse(folder + "/"), name):
            out += chunk
            if len(out) > MAX_S3_DATASET_BYTES:
                break
    except ObjectMissing:
        raise DatasetUnavailable(f"{spec.uri} is not in storage") from None
    except (ContainerProblem, StorageUnreachable, ValueError) as exc:
        raise DatasetUnavailable(f"{spec.uri}: {exc}") from None
    return bytes(out)


# ---------------------------------------------------------------- progress


class Progress:
    """``evaluation faq@v1: 37/80 requests`` on one line of a terminal (stderr), updated
    in place; nothing when stderr is not a terminal (a Job's log, CI)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total = total
        self.done = 0
        self.shown = -1.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self.shown >= 0.1 or self.done == self.total):
            self.shown = now
            self.stream.write(f"\r  {self.label}: {self.done}/{self.total} requests")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------- answering


async def _answer_all(url: str, token: str | None, timeout: float, concurrency: int,
                      requests: Sequence[tuple[str, str]], max_tokens: int,
                      progress: Progress) -> list[str]:
    """The greedy answer to every (model, prompt), at most ``concurrency`` at a time."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def one(model: str, prompt: str) -> str:
            async with gate:
                body = completion_body(model, prompt, max_tokens)
                try:
                    endpoint = f"{url.rstrip('/')}/v1/completions"
                    async with await send_resending(http, "POST", endpoint, body) as r:
                        text = await r.text()
                        if r.status != 200:
                            raise ApiError(r.status, text)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise Unreachable(f"{url}: {type(exc).__name__}: {exc or 'no answer'}") from None
                progress.step()
                try:
                    return str(json.loads(text)["choices"][0].get("text") or "")
                except (ValueError, KeyError, IndexError, TypeError):
                    raise ApiError(200, f"not a completion: {text[:200]}") from None

        return list(await asyncio.gather(*(one(m, p) for m, p in requests)))


@dataclass(frozen=True)
class Scored:
    record: Record
    output: str
    score: float
    base_output: str
    base_score: float

    def example(self) -> dict[str, Any]:
        return {"line": self.record.line, "id": self.record.id, "prompt": self.record.prompt,
                "reference": self.record.reference, "output": self.output, "score": round(self.score, 4),
                "base_output": self.base_output, "base_score": round(self.base_score, 4)}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# ---------------------------------------------------------------- the check


@dataclass(frozen=True)
class EvaluationTarget:
    """One flavor of one service: where to ask, under which names."""

    url: str
    base: str  # the base's served name
    service: str  # namespace/name
    resource: ResourceRef | None
    token: str | None = None
    timeout_s: float = 120.0
    concurrency: int = 4


def check_evaluation(target: EvaluationTarget, flavor: FlavorExpectation,
                     progress_stream: TextIO | None = None) -> CheckRecord:
    """Score ``flavor``'s evaluation set on the flavor and on its base, and judge it."""
    subject = flavor.ref or flavor.name
    res = CheckRecord(CHECK, subject)
    spec = flavor.evaluation
    with timed(res):
        if spec is None:
            res.status = Status.SKIP
            res.note = "the flavor names no evaluation set"
            return res
        where = spec.source.location()
        metric = METRICS.get(spec.metric)
        res.details.update({"metric": spec.metric, "threshold": spec.threshold, "recorded": spec.recorded,
                            "dataset_sha256": spec.dataset.sha256, "dataset": spec.dataset.file,
                            "service": target.service, "served_as": flavor.name, "base": target.base})
        if metric is None:
            res.could_not_run(finding(
                CHECK, f"flavor {subject}: this kitchen cannot compute metric {spec.metric!r}",
                location=where, resource=target.resource, flavor=flavor.name,
                expected=f"one of {', '.join(METRICS)}", actual=spec.metric))
            return res
        try:
            raw = fetch_dataset(spec.dataset)
        except DatasetUnavailable as exc:
            res.could_not_run(finding(
                CHECK, f"flavor {subject}: the evaluation set cannot be fetched: {exc}",
                location=where, resource=target.resource, flavor=flavor.name,
                expected=f"{spec.dataset.file} readable", actual=str(exc)))
            return res
        got = hashlib.sha256(raw).hexdigest()
        if got != spec.dataset.sha256:
            res.add(finding(
                "evaluation.dataset", f"flavor {subject}: the evaluation set {spec.dataset.file} has sha256 "
                f"{got}, the catalog pins {spec.dataset.sha256}: the scores would not be those of the "
                "pinned set", location=where, resource=target.resource, flavor=flavor.name,
                expected=f"sha256 {spec.dataset.sha256}", actual=got))
            return res
        limit = MAX_REPOSITORY_DATASET_BYTES if spec.dataset.content is not None else MAX_S3_DATASET_BYTES
        records, problems = parse_dataset(raw, spec.metric, spec.labels, limit=limit)
        if problems:
            p = problems[0]
            res.add(finding(
                "evaluation.dataset", f"flavor {subject}: the evaluation set is not readable: {p.message} "
                f"({len(problems)} problem(s))", location=Location(spec.dataset.file, p.line, p.col),
                resource=target.resource, flavor=flavor.name, expected=p.expected))
            return res
        scored, elapsed = _score(target, flavor, spec, records, progress_stream)
        _judge(res, target, flavor, spec, scored, elapsed)
    return res


def _score(target: EvaluationTarget, flavor: FlavorExpectation, spec: EvaluationSpec,
           records: list[Record], stream: TextIO | None) -> tuple[list[Scored], float]:
    requests = [(m, r.prompt) for r in records for m in (flavor.name, target.base)]
    progress = Progress(f"evaluation {flavor.ref or flavor.name} on {target.service}", len(requests), stream)
    t0 = time.monotonic()
    try:
        answers = asyncio.run(_answer_all(target.url, target.token, target.timeout_s, target.concurrency,
                                          requests, spec.max_tokens, progress))
    finally:
        progress.close()
    elapsed = time.monotonic() - t0
    scored = []
    for i, r in enumerate(records):
        mine, base = answers[2 * i], answers[2 * i + 1]
        scored.append(Scored(r, mine, score_answer(spec.metric, mine, r.reference, spec.labels),
                             base, score_answer(spec.metric, base, r.reference, spec.labels)))
    return scored, elapsed


def _judge(res: CheckRecord, target: EvaluationTarget, flavor: FlavorExpectation, spec: EvaluationSpec,
           scored: list[Scored], elapsed: float) -> None:
    subject = flavor.ref or flavor.name
    metric = METRICS[spec.metric]
    score = _mean([s.score for s in scored])
    base_score = _mean([s.base_score for s in scored])
    worst = sorted(scored, key=lambda s: (s.score if metric.higher_is_better else -s.score, s.record.line))
    requests = 2 * len(scored)
    res.details.update({
        "score": round(score, 4), "base_score": round(base_score, 4), "records": len(scored),
        "tolerance": spec.tolerance, "examples": [s.example() for s in worst[:WORST_EXAMPLES]],
        "requests": requests, "concurrency": target.concurrency, "duration_s": round(elapsed, 3),
        "requests_per_s": round(requests / elapsed, 2) if elapsed > 0 else None,
    })
    where = spec.source.location()
    word = "at least" if metric.higher_is_better else "at most"
    if better(spec.metric, spec.threshold, score):
        res.add(finding(
            "evaluation.threshold", f"flavor {subject} scores {score:.4f} {spec.metric} on its evaluation set "
            f"({len(scored)} records) on the live server, below its threshold {spec.threshold:g}",
            location=where, resource=target.resource, flavor=flavor.name,
            expected=f"{spec.metric} {word} {spec.threshold:g}", actual=f"{score:.4f}"))
    worse_by = (spec.recorded - score) if metric.higher_is_better else (score - spec.recorded)
    if worse_by > spec.tolerance + 1e-9:
        severity = Severity.ERROR if spec.drift_fails else Severity.WARNING
        res.add(finding(
            "evaluation.drift", f"flavor {subject} scores {score:.4f} {spec.metric} on the live server, "
            f"{worse_by:.4f} below the {spec.recorded:g} the catalog records (tolerance {spec.tolerance:g}): "
            "what is served is not what was evaluated (a re-uploaded adapter, another base or runtime, "
            "a changed prompt template)", location=where, resource=target.resource, flavor=flavor.name,
            severity=severity, expected=f"{spec.metric} within {spec.tolerance:g} of {spec.recorded:g}",
            actual=f"{score:.4f}"))
    elif -worse_by > spec.tolerance + 1e-9:
        res.add(finding(
            "evaluation.drift", f"flavor {subject} scores {score:.4f} {spec.metric} on the live server, "
            f"{-worse_by:.4f} better than the {spec.recorded:g} the catalog records (tolerance "
            f"{spec.tolerance:g}): the recorded score no longer describes what is served",
            location=where, resource=target.resource, flavor=flavor.name, severity=Severity.WARNING,
            expected=f"{spec.metric} within {spec.tolerance:g} of {spec.recorded:g}", actual=f"{score:.4f}"))
    if not better(spec.metric, score, base_score):
        same = sum(1 for s in scored if s.output == s.base_output)
        res.add(finding(
            "evaluation.no-gain", f"flavor {subject} scores {score:.4f} {spec.metric}, its base {target.base} "
            f"{base_score:.4f} on the same set ({same} of {len(scored)} answers identical): the adapter does "
            "not help", location=where, resource=target.resource, flavor=flavor.name,
            expected=f"a score better than the base's {base_score:.4f}", actual=f"{score:.4f}"))
    res.lines = [
        f"{spec.metric} {score:.4f} (recorded {spec.recorded:g}, base {base_score:.4f}, threshold "
        f"{spec.threshold:g}) on {len(scored)} records of {spec.dataset.file}; {requests} requests in "
        f"{elapsed:.1f}s ({requests / elapsed if elapsed > 0 else 0:.1f} req/s) at concurrency "
        f"{target.concurrency}",
        *(f"worst: line {s.record.line}: {clip(s.record.prompt, 60)} -> {clip(s.output, 80)} "
          f"(score {s.score:.2f}; base {s.base_score:.2f})" for s in worst[:WORST_EXAMPLES]),
    ]

"""``kitchen conform serving``: prove that every flavor of every InferenceService is served,
answers its smoke prompts, changes the base's answers, scores its evaluation set
(:mod:`.evaluation`), stays isolated under concurrent load, and that the service meets
the environment's SLOs.

Checks run in order per service; a service that is not Ready or does not answer is
reported and its remaining checks are skipped.  All requests are greedy (temperature 0,
fixed seed), so every answer is reproducible and comparable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import aiohttp

from ..findings import Severity
from .client import (
    ApiError,
    Completion,
    OpenAIClient,
    StreamRecord,
    TokenScore,
    Unreachable,
    send_resending,
    stream_completion,
)
from .evaluation import EvaluationTarget, check_evaluation
from .expectations import (
    Expectations,
    FlavorExpectation,
    IsolationSpec,
    ServiceExpectation,
    describe,
    unmet,
)
from .perf import run_performance
from .readiness import IsvcSource, Readiness, wait_ready
from .report import describe_measurements
from .results import CHECKS, CheckRecord, ConformReport, Status, clip, finding, isvc_ref, timed

# Short greedy answers: enough to tell models apart, and cheap to score under every model.
PROBE_TOKENS = 16
DEFAULT_PROBES = ("Hello, how can I help you today?", "Summarise: the meeting moved to Friday.")


@dataclass
class ServingOptions:
    checks: tuple[str, ...] = CHECKS
    token: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)  # ns/name (or name) -> URL
    isolation_rounds: int = 3
    isolation_prompts: int = 2  # per flavor
    perf_models: tuple[str, ...] = ()  # default: the base and every served flavor
    evaluation_concurrency: int | None = None  # default: the expectations' load.concurrency
    request_timeout_s: float = 120.0
    readiness_poll_s: float = 5.0
    readiness_timeout_s: float | None = None  # default: the expectations' load.readiness_timeout_s


@dataclass
class _Service:
    """What the checks of one service share: its client and the answers seen so far."""

    exp: ServiceExpectation
    environment: str
    url: str
    client: OpenAIClient
    served: list[FlavorExpectation] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)  # served adapters of the base, not the catalog's
    aliases: dict[str, str] = field(default_factory=dict)  # served aliases -> their flavor's served name
    answers: dict[tuple[str, str, int], Completion] = field(default_factory=dict)

    def completion(self, model: str, prompt: str, max_tokens: int) -> Completion:
        key = (model, prompt, max_tokens)
        if key not in self.answers:
            self.answers[key] = self.client.complete(model, prompt, max_tokens)
        return self.answers[key]

    def answer(self, model: str, prompt: str, max_tokens: int) -> str:
        return self.completion(model, prompt, max_tokens).text

    @property
    def ref(self) -> Any:
        return isvc_ref(self.exp, self.environment)


def _unreachable(check: str, svc: _Service, exc: Exception) -> CheckRecord:
    res = CheckRecord(check, svc.exp.key)
    what = "does not answer" if isinstance(exc, Unreachable) else "answered with an error"
    res.could_not_run(finding(
        check, f"{svc.exp.key} at {svc.url} {what}: {exc}", location=svc.exp.source.location(),
        resource=svc.ref, expected="an OpenAI-compatible vLLM endpoint", actual=str(exc)))
    return res


# ---------------------------------------------------------------- inventory


def check_inventory(svc: _Service) -> CheckRecord:
    """``GET /v1/models`` lists the base and exactly the catalog's flavors, parented by it."""
    exp = svc.exp
    res = CheckRecord("inventory", exp.key)
    with timed(res):
        models = svc.client.models()
        listed = {str(m.get("id")): m for m in models}
        res.details["models"] = sorted(listed)
        if exp.base not in listed:
            res.add(finding("inventory", f"base model {exp.base} is not served by {exp.key}",
                            location=exp.source.location(), resource=svc.ref,
                            expected=f"{exp.base} in GET /v1/models",
                            actual=", ".join(sorted(listed)) or "no models"))
        wanted = {f.name for f in exp.flavors} | set(exp.aliases)
        for f in exp.flavors:
            card = listed.get(f.name)
            if card is None:
                res.add(finding("inventory", f"flavor {f.name} ({f.ref}) is not served by {exp.key}",
                                location=f.source.location(), resource=svc.ref, flavor=f.name,
                                expected=f"{f.name} in GET /v1/models",
                                actual=", ".join(sorted(listed)) or "no models"))
                continue
            parent = card.get("parent")
            if parent != exp.base:
                res.add(finding("inventory", f"flavor {f.name} is served on {parent!r}, not on the "
                                f"base {exp.base}", location=f.source.location(), resource=svc.ref,
                                flavor=f.name, expected=f"parent {exp.base}", actual=f"parent {parent}"))
                continue
            svc.served.append(f)
        for alias, target in sorted(exp.aliases.items()):
            card = listed.get(alias)
            parent = None if card is None else card.get("parent")
            if parent != exp.base:
                res.add(finding("inventory", f"alias {alias} of {target} is "
                                + ("not served" if card is None else f"served on {parent!r}, not on the base")
                                + f" by {exp.key}", location=exp.source.location(), resource=svc.ref,
                                flavor=alias, expected=f"{alias} in GET /v1/models, parent {exp.base}",
                                actual=", ".join(sorted(listed)) if card is None else f"parent {parent}"))
                continue
            svc.aliases[alias] = target
        # KServe's LLMInferenceService controller serves the base and every adapter a second
        # time under its fully qualified name, publishers/<namespace>/models/<name>
        qualified = ({f"publishers/{exp.namespace}/models/{n}" for n in wanted | {exp.base}}
                     if exp.kind == "LLMInferenceService" else set())
        for name in sorted(set(listed) - wanted - {exp.base} - qualified):
            if listed[name].get("parent") == exp.base:
                svc.unassigned.append(name)
            res.add(finding("inventory", f"{exp.key} serves {name}, which the catalog does not "
                            "assign to it", location=exp.source.location(), resource=svc.ref,
                            flavor=name, severity=Severity.WARNING,
                            expected=f"only {', '.join(sorted(wanted | {exp.base}))}",
                            actual=f"also {name}"))
    return res


# ---------------------------------------------------------------- smoke


def check_smoke(svc: _Service, flavor: FlavorExpectation) -> CheckRecord:
    res = CheckRecord("smoke", f"{svc.exp.key}:{flavor.name}")
    with timed(res):
        if not flavor.smoke:
            res.status = Status.SKIP
            res.note = "the flavor declares no smoke prompts"
            return res
        for i, smoke in enumerate(flavor.smoke):
            text = svc.client.complete(flavor.name, smoke.prompt, smoke.max_tokens).text
            res.details[f"prompt_{i}"] = {"prompt": smoke.prompt, "output": text}
            problems = unmet(smoke.expect, text)
            if problems:
                res.add(finding(
                    "smoke", f"flavor {flavor.name}: smoke prompt {clip(smoke.prompt, 60)}: the "
                    f"answer {'; '.join(problems)}: {clip(text)}",
                    location=smoke.source.location(), resource=svc.ref, flavor=flavor.name,
                    expected=describe(smoke.expect), actual=text))
    return res


# ---------------------------------------------------------------- adapter effect


def check_adapter_effect(svc: _Service, flavor: FlavorExpectation) -> CheckRecord:
    """The flavor must answer differently from the base on its probe prompts."""
    res = CheckRecord("adapter-effect", f"{svc.exp.key}:{flavor.name}")
    with timed(res):
        prompts = flavor.effect_prompts or list(DEFAULT_PROBES)
        same = []
        for p in prompts:
            base = svc.answer(svc.exp.base, p, PROBE_TOKENS)
            mine = svc.answer(flavor.name, p, PROBE_TOKENS)
            if base == mine:
                same.append((p, mine))
        res.details.update({"prompts": len(prompts), "identical_to_base": len(same),
                            "default_prompts": not flavor.effect_prompts})
        _compare_versions(svc, flavor, prompts, res)
        if same and len(same) == len(prompts):
            p, text = same[0]
            res.add(finding(
                "adapter-effect", f"flavor {flavor.name} answers exactly like the base "
                f"{svc.exp.base} on all {len(prompts)} probe prompt(s), e.g. {clip(p, 60)} -> "
                f"{clip(text)}: its adapter has no effect (zero weights, or served as the base)",
                location=flavor.source.location(), resource=svc.ref, flavor=flavor.name,
                expected=f"an answer different from {svc.exp.base}'s", actual=text))
        elif same:
            res.add(finding(
                "adapter-effect", f"flavor {flavor.name} answers like the base on {len(same)} of "
                f"{len(prompts)} probe prompt(s), e.g. {clip(same[0][0], 60)}",
                location=flavor.source.location(), resource=svc.ref, flavor=flavor.name,
                severity=Severity.WARNING, expected=f"answers different from {svc.exp.base}'s",
                actual=same[0][1]))
    return res


def _flavor_name(ref: str) -> str:
    return ref.partition("@")[0]


def _compare_versions(svc: _Service, flavor: FlavorExpectation, prompts: list[str],
                      res: CheckRecord) -> None:
    """Two versions of a flavor served side by side must be two adapters: a version that
    answers exactly like another on every probe prompt is served from the same weights
    (the same files uploaded twice, or a name reused for new weights)."""
    siblings = [f for f in svc.served
                if f.name != flavor.name and f.ref and _flavor_name(f.ref) == _flavor_name(flavor.ref)]
    differ: dict[str, int] = {}
    for other in siblings:
        same = [p for p in prompts
                if svc.answer(other.name, p, PROBE_TOKENS) == svc.answer(flavor.name, p, PROBE_TOKENS)]
        differ[other.name] = len(prompts) - len(same)
        if len(same) == len(prompts):
            res.add(finding(
                "adapter-effect", f"flavor {flavor.name} ({flavor.ref}) answers exactly like "
                f"{other.name} ({other.ref}) on all {len(prompts)} probe prompt(s): the two "
                "versions serve the same weights", location=flavor.source.location(),
                resource=svc.ref, flavor=flavor.name, severity=Severity.WARNING,
                expected=f"answers different from {other.name}'s",
                actual=svc.answer(flavor.name, same[0], PROBE_TOKENS)))
    if siblings:
        res.details["differs_from_versions"] = differ


def check_alias(svc: _Service, alias: str, flavor: FlavorExpectation) -> CheckRecord:
    """An alias serves its flavor version: the same greedy answers on the flavor's probes."""
    res = CheckRecord("adapter-effect", f"{svc.exp.key}:{alias}")
    with timed(res):
        prompts = flavor.effect_prompts or list(DEFAULT_PROBES)
        other = [(p, svc.answer(alias, p, PROBE_TOKENS)) for p in prompts
                 if svc.answer(alias, p, PROBE_TOKENS) != svc.answer(flavor.name, p, PROBE_TOKENS)]
        res.details.update({"alias_of": flavor.name, "prompts": len(prompts), "different": len(other)})
        if other:
            p, text = other[0]
            res.add(finding(
                "adapter-effect", f"alias {alias} does not answer like {flavor.name} ({flavor.ref}), "
                f"which it serves, on {len(other)} of {len(prompts)} probe prompt(s), e.g. "
                f"{clip(p, 60)} -> {clip(text)}", location=svc.exp.source.location(),
                resource=svc.ref, flavor=alias,
                expected=f"{flavor.name}'s answer: {svc.answer(flavor.name, p, PROBE_TOKENS)}", actual=text))
    return res


# ---------------------------------------------------------------- isolation
#
# A concurrent answer that differs from the sequential one is either leakage (another
# model's weights applied to the request: cross-adapter contamination) or numerics (bf16
# kernels are not batch-invariant, so greedy decoding flips where two logits nearly tie;
# on an H200, 17 of 60 concurrent answers differed with nothing leaking, issue 13).  Each
# divergent answer is scored under every candidate model (the base and every served
# adapter of it) by teacher forcing: the prompt and the answer as one prefill with
# prompt log-probabilities, one request at a time.  A token's *deficit* under a model is
# how far it is below that model's greedy choice, in nats; an answer's deficit is the sum.
# Its own model explains a numeric flip (a near-tie at the flip, greedy after it); the
# adapter that was applied explains a contaminated answer (its greedy path, deficit ≈ 0).

# Another model must explain the answer better than its own by this much (nats) to call it
# contamination.  A zero-weight adapter equals the base up to rounding, far below this.
ATTRIBUTION_MARGIN_NATS = 1.0
# The largest single-token deficit a numeric flip may have under its own model.  A flip
# needs a near-tie: bf16 batch variance moves logits by hundredths of a nat; an adapter's
# greedy tokens sit nats below the base's (2.5–5 per token with the tests' tiny model).
NUMERIC_TOLERANCE_NATS = 2.0


class Verdict(StrEnum):
    NUMERICS = "numerics"  # explained by its own model
    CONTAMINATION = "contamination"  # explained better by another model
    UNEXPLAINED = "unexplained"  # by no candidate: corruption or an unknown model


@dataclass(frozen=True)
class Attribution:
    verdict: Verdict
    model: str  # the model asked
    best: str  # the candidate that explains the answer best
    deficits: dict[str, float]  # candidate -> the answer's summed deficit, nats
    own_max_deficit: float  # the largest single-token deficit under the model asked

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "model": self.model, "best": self.best,
                "deficits": {k: round(v, 4) for k, v in sorted(self.deficits.items())},
                "own_max_deficit": (round(self.own_max_deficit, 4)
                                    if math.isfinite(self.own_max_deficit) else None)}


def attribute(model: str, scores: dict[str, list[TokenScore]]) -> Attribution:
    """Which candidate explains an answer of ``model``: ``scores`` holds the answer's tokens
    scored under each candidate (``model`` among them)."""
    totals = {c: sum(t.deficit for t in ts) for c, ts in scores.items()}
    own = totals[model]
    own_max = max((t.deficit for t in scores[model]), default=0.0)
    best = min(totals, key=lambda c: (totals[c], c != model, c))
    if best != model and totals[best] + ATTRIBUTION_MARGIN_NATS < own:
        verdict = Verdict.CONTAMINATION
    elif own_max <= NUMERIC_TOLERANCE_NATS:
        verdict, best = Verdict.NUMERICS, model
    else:
        verdict = Verdict.UNEXPLAINED
    return Attribution(verdict, model, best, totals, own_max)


async def _concurrent(url: str, token: str | None, timeout: float,
                      requests: Sequence[tuple[str, str]]) -> list[StreamRecord]:
    """Send every request at once; their generations must overlap in the server's batches.

    One keep-alive connection per request is opened first, so that the burst is not spread
    out by connection set-up on a busy client (which let requests run one after another
    and hid contamination)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=headers, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        async def warm() -> None:
            async with await send_resending(http, "GET", f"{url.rstrip('/')}/v1/models", None) as r:
                await r.read()

        try:
            await asyncio.gather(*(warm() for _ in requests))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"{url}: {type(exc).__name__}: {exc or 'no answer'}") from None
        records = await asyncio.gather(*(stream_completion(http, url, m, p, PROBE_TOKENS,
                                                           return_token_ids=True)
                                         for m, p in requests))
    return list(records)


def _same(rec: StreamRecord, ref: Completion) -> bool:
    if rec.token_ids and ref.token_ids:
        return tuple(rec.token_ids) == ref.token_ids
    return rec.text == ref.text


Divergence = tuple[str, str, StreamRecord, Attribution]  # model, prompt, answer, what explains it


def check_isolation(svc: _Service, opts: ServingOptions, isolation: IsolationSpec) -> CheckRecord:
    """Base and flavor requests sent together must get the answers they get one by one, or
    answers that only their own model explains (numerics, counted and reported)."""
    res = CheckRecord("isolation", svc.exp.key)
    with timed(res):
        flavors = svc.served
        if not flavors:
            res.status = Status.SKIP
            res.note = "no served flavor to interleave with the base"
            return res
        prompts: list[str] = []
        for f in flavors:
            for p in (f.effect_prompts or list(DEFAULT_PROBES))[: opts.isolation_prompts]:
                if p not in prompts:
                    prompts.append(p)
        models = [svc.exp.base, *(f.name for f in flavors)]
        # every model the server could apply: also adapters of the base the catalog does
        # not assign to this service (inventory warned about them)
        candidates = [*models, *(m for m in svc.unassigned if m not in models)]
        # references: every model on every prompt, one request at a time
        ref = {(m, p): svc.completion(m, p, PROBE_TOKENS) for p in prompts for m in models}
        requests, got = _bursts(svc, opts, models, prompts)
        errors, divergent = _divergences(svc, requests, got, ref, candidates)
        flips = [d for d in divergent if d[3].verdict is Verdict.NUMERICS]
        res.details.update({
            "models": models, "candidates": candidates, "prompts": len(prompts),
            "concurrent_requests": len(requests), "mismatches": len(divergent),
            "numeric_flips": len(flips),
            "flip_rate": round(len(flips) / len(requests), 4) if requests else 0.0,
            "divergent": [{"model": m, "prompt": p, "answer": rec.text,
                           "sequential": ref[(m, p)].text, **a.as_dict()}
                          for m, p, rec, a in divergent],
        })
        _report_leaks(res, svc, models, ref, divergent)
        if flips:
            _flips(res, svc, flips, len(requests), isolation)
        if errors:
            res.add(finding("isolation", f"{len(errors)} concurrent request(s) failed: {errors[0]}",
                            location=svc.exp.source.location(), resource=svc.ref,
                            expected="every request answered", actual=errors[0]))
    return res


def _bursts(svc: _Service, opts: ServingOptions, models: list[str],
            prompts: list[str]) -> tuple[list[tuple[str, str]], list[StreamRecord]]:
    """Every model on every prompt sent at once, ``isolation_rounds`` times: the requests
    and their answers, in the same order."""
    # Each round is one burst of every model on every prompt; whether the engine puts
    # them in one batch depends on timing, so separate bursts give separate chances.
    requests: list[tuple[str, str]] = []
    got: list[StreamRecord] = []
    for r in range(opts.isolation_rounds):
        # each burst sends the models in another order: which request reaches the
        # engine first changes how the batch is formed
        order = models[r % len(models):] + models[:r % len(models)]
        burst = [(m, p) for p in prompts for m in order]
        requests += burst
        got += asyncio.run(_concurrent(svc.url, opts.token, opts.request_timeout_s, burst))
    return requests, got


def _divergences(svc: _Service, requests: list[tuple[str, str]], got: list[StreamRecord],
                 ref: dict[tuple[str, str], Completion],
                 candidates: list[str]) -> tuple[list[str], list[Divergence]]:
    """The failed requests, and the answers that differ from the sequential ones, each with
    the model that explains it (scored once per distinct answer)."""
    errors = []
    attributions: dict[tuple[str, str, tuple[int, ...]], Attribution] = {}
    divergent: list[Divergence] = []
    for (m, p), rec in zip(requests, got, strict=True):
        if rec.error:
            errors.append(f"{m}: {rec.error}")
            continue
        expected = ref[(m, p)]
        if _same(rec, expected):
            continue
        key = (m, p, tuple(rec.token_ids))
        if key not in attributions:
            prompt_ids = expected.prompt_token_ids
            if key[2] and prompt_ids:
                scores = {c: svc.client.score(c, prompt_ids, key[2]) for c in candidates}
                attributions[key] = attribute(m, scores)
            else:  # a server without return_token_ids: nothing to score
                attributions[key] = Attribution(Verdict.UNEXPLAINED, m, m, {}, float("inf"))
        divergent.append((m, p, rec, attributions[key]))
    return errors, divergent


def _report_leaks(res: CheckRecord, svc: _Service, models: list[str], ref: dict[tuple[str, str], Completion],
                  divergent: list[Divergence]) -> None:
    """A leak finding per model and prompt whose answer numerics do not explain."""
    reported: set[tuple[str, str]] = set()
    for m, p, rec, a in divergent:
        if a.verdict is Verdict.NUMERICS or (m, p) in reported:
            continue
        reported.add((m, p))
        _leak(res, svc, models, m, p, rec, ref[(m, p)], a)


def _leak(res: CheckRecord, svc: _Service, models: list[str], m: str, p: str,
          rec: StreamRecord, expected: Completion, a: Attribution) -> None:
    who = "the base" if m == svc.exp.base else f"flavor {m}"
    n = len(rec.token_ids) or PROBE_TOKENS
    if not a.deficits:
        why = ("the server returns no token ids (vLLM's return_token_ids) to score the answer "
               "with: contamination or batch-dependent numerics")
    elif a.verdict is Verdict.CONTAMINATION:
        why = (f"{a.best} explains the answer ({a.deficits[a.best]:.2f} nats below its greedy "
               f"path over {n} tokens), {m} does not ({a.deficits[m]:.2f} nats): cross-adapter "
               "contamination")
    else:
        why = (f"no served model explains the answer (a token {a.own_max_deficit:.2f} nats below "
               f"{m}'s greedy choice, more than a numeric near-tie's "
               f"{NUMERIC_TOLERANCE_NATS:g}; best {a.best} at {a.deficits[a.best]:.2f} nats): "
               "leakage or corruption")
    res.add(finding(
        "isolation", f"{who} answered {clip(p, 60)} differently when its requests ran "
        f"concurrently with {', '.join(o for o in models if o != m)}: {why}",
        location=svc.exp.source.location(), resource=svc.ref, flavor=m,
        expected=f"the sequential answer {clip(expected.text)}", actual=rec.text))


def _flips(res: CheckRecord, svc: _Service, flips: list[tuple[str, str, StreamRecord, Attribution]],
           total: int, isolation: IsolationSpec) -> None:
    rate = len(flips) / total
    worst = max(a.own_max_deficit for *_, a in flips)
    over = rate > isolation.max_flip_rate
    res.add(finding(
        "isolation", f"{len(flips)} of {total} concurrent answers ({rate:.0%}) differed from the "
        f"sequential ones by numerics: each is explained by its own model (largest token "
        f"deficit {worst:.3f} nats, a near-tie) and by no other — kernels that are not "
        "batch-invariant flip greedy tokens; not contamination",
        location=svc.exp.source.location(), resource=svc.ref,
        severity=Severity.WARNING if over else Severity.INFO,
        expected=f"numeric flips in at most {isolation.max_flip_rate:.0%} of concurrent answers",
        actual=f"{rate:.1%}"))


# ---------------------------------------------------------------- orchestration


def _skip(check: str, subject: str, note: str) -> CheckRecord:
    return CheckRecord(check, subject, status=Status.SKIP, note=note)


def _guard(check: str, svc: _Service, fn: Callable[[], CheckRecord]) -> CheckRecord:
    try:
        return fn()
    except (Unreachable, ApiError) as exc:
        return _unreachable(check, svc, exc)


def _evaluate(svc: _Service, flavor: FlavorExpectation, exp: Expectations, opts: ServingOptions) -> CheckRecord:
    target = EvaluationTarget(svc.url, svc.exp.base, svc.exp.key, svc.ref, opts.token, opts.request_timeout_s,
                              opts.evaluation_concurrency or exp.load.concurrency)
    try:
        return check_evaluation(target, flavor)
    except (Unreachable, ApiError) as exc:
        res = _unreachable("evaluation", svc, exc)
        res.subject = flavor.ref or flavor.name
        return res


def check_service(svc: _Service, exp: Expectations, opts: ServingOptions) -> list[CheckRecord]:
    out: list[CheckRecord] = []
    want = set(opts.checks)
    inv = _guard("inventory", svc, lambda: check_inventory(svc))
    if "inventory" in want or inv.status is Status.ERROR:
        out.append(inv)
    if inv.status is Status.ERROR:
        out += [_skip(c, svc.exp.key, "the endpoint does not answer")
                for c in CHECKS[2:] if c in want]
        return out
    for flavor in svc.served:
        if "smoke" in want:
            out.append(_guard("smoke", svc, lambda f=flavor: check_smoke(svc, f)))  # type: ignore[misc]
        if "adapter-effect" in want:
            out.append(_guard("adapter-effect", svc,
                              lambda f=flavor: check_adapter_effect(svc, f)))  # type: ignore[misc]
            out += [_guard("adapter-effect", svc,
                           lambda a=alias, f=flavor: check_alias(svc, a, f))  # type: ignore[misc]
                    for alias, target in sorted(svc.aliases.items()) if target == flavor.name]
        if "evaluation" in want:
            out.append(_evaluate(svc, flavor, exp, opts))
    if "isolation" in want:
        out.append(_guard("isolation", svc, lambda: check_isolation(svc, opts, exp.isolation)))
    if "performance" in want:
        models = list(opts.perf_models) or [svc.exp.base, *(f.name for f in svc.served)]
        out.append(_guard("performance", svc, lambda: run_performance(
            svc.client, svc.exp, exp.slo, exp.load, models, exp.environment,
            token=opts.token, timeout=opts.request_timeout_s)))
    return out


def endpoint_of(exp: ServiceExpectation, opts: ServingOptions, readiness: Readiness | None) -> str:
    for key in (exp.key, exp.name):
        if key in opts.endpoints:
            return opts.endpoints[key]
    if "*" in opts.endpoints:
        return opts.endpoints["*"]
    if readiness is not None and readiness.url:
        return readiness.url
    return exp.endpoint


def run_serving(exp: Expectations, opts: ServingOptions,
                isvc_source: IsvcSource | None = None) -> ConformReport:
    """Run the serving checks on every service of ``exp``; ``isvc_source`` is needed for
    the readiness check (it is skipped without one)."""
    report = ConformReport("serving", exp.environment,
                           started=datetime.now(UTC).isoformat(timespec="seconds"),
                           fail_on_warn=bool(exp.fail_on_warn))
    t0 = time.monotonic()
    ready: dict[str, Readiness] = {}
    if "readiness" in opts.checks and isvc_source is not None:
        timeout = opts.readiness_timeout_s or exp.load.readiness_timeout_s
        ready = wait_ready(isvc_source, exp.services, exp.environment, timeout_s=timeout,
                           poll_s=opts.readiness_poll_s)
    for s in exp.services:
        r = ready.get(s.key)
        if r is not None:
            report.records.append(r.record)
            if r.record.status is not Status.PASS:
                report.records += [_skip(c, s.key, "not Ready") for c in CHECKS[1:]
                                   if c in opts.checks]
                continue
        elif "readiness" in opts.checks:
            report.records.append(_skip("readiness", s.key, "no Kubernetes API (--no-readiness)"))
        url = endpoint_of(s, opts, r)
        with OpenAIClient(url, token=opts.token, timeout=opts.request_timeout_s) as client:
            svc = _Service(s, exp.environment, url, client)
            report.records += check_service(svc, exp, opts)
    report.duration_s = round(time.monotonic() - t0, 3)
    report.info = {"services": [s.key for s in exp.services],
                   "checks": [c for c in CHECKS if c in opts.checks]}
    return describe_measurements(report)

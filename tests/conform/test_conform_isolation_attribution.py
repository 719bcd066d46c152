"""Isolation's attribution of a divergent concurrent answer: numerics or contamination.

The scores are what the server's ``prompt_logprobs`` give (token id -> logprob, rank), in
the shape vLLM returns them; the real servers are in ``test_conform_serving.py``.
"""

from __future__ import annotations

import pytest

from kitchen_gitops.conform.client import ApiError, TokenScore, token_scores
from kitchen_gitops.conform.serving import (
    ATTRIBUTION_MARGIN_NATS,
    NUMERIC_TOLERANCE_NATS,
    Verdict,
    attribute,
)


def scores(*deficits: float) -> list[TokenScore]:
    return [TokenScore(i, -3.0 - d, -3.0, 1 if d == 0 else 2) for i, d in enumerate(deficits)]


def test_token_scores_read_vllm_prompt_logprobs() -> None:
    # the prompt's own token at each position, with the top-1 where it is another one
    prompt_logprobs = [None, {"7": {"logprob": -2.0, "rank": 3}, "9": {"logprob": -1.5, "rank": 1}},
                       {"8": {"logprob": -0.5, "rank": 1}},
                       {"4": {"logprob": -6.0, "rank": 40}, "1": {"logprob": -2.0, "rank": 1}}]
    got = token_scores(prompt_logprobs, (8, 4))
    assert [(t.token, t.rank) for t in got] == [(8, 1), (4, 40)]
    assert [t.deficit for t in got] == [0.0, 4.0]
    with pytest.raises(ApiError):
        token_scores(prompt_logprobs, (8, 5))


def test_a_near_tie_flip_is_numerics() -> None:
    # the base's answer flipped at a near-tie (0.04 nats) and went on greedily; the adapters
    # explain it far worse
    a = attribute("base", {"base": scores(0, 0, 0.04, 0, 0.01), "faq": scores(3, 2, 4, 3, 1),
                           "noop": scores(0, 0, 0.05, 0, 0.01)})
    assert a.verdict is Verdict.NUMERICS and a.best == "base"
    assert a.own_max_deficit == pytest.approx(0.04)


def test_another_models_greedy_answer_is_contamination() -> None:
    a = attribute("base", {"base": scores(2.5, 3, 4, 2), "faq": scores(3, 2, 4, 3),
                           "classify": scores(0, 0, 0.02, 0)})
    assert a.verdict is Verdict.CONTAMINATION and a.best == "classify"
    assert a.deficits["base"] == pytest.approx(11.5)


def test_an_answer_no_model_explains_is_unexplained() -> None:
    # a token far below the model's greedy choice, and no candidate does better by the margin
    far = NUMERIC_TOLERANCE_NATS + 1
    a = attribute("faq", {"base": scores(far, 3), "faq": scores(far, 0.1),
                          "classify": scores(far - 0.5 * ATTRIBUTION_MARGIN_NATS, 3)})
    assert a.verdict is Verdict.UNEXPLAINED


def test_a_model_equal_to_the_asked_one_is_not_blamed() -> None:
    # a zero-weight adapter explains a base flip as well as the base, up to rounding
    a = attribute("base", {"base": scores(0.3, 0.2), "noop": scores(0.29, 0.2)})
    assert a.verdict is Verdict.NUMERICS and a.best == "base"

"""Perplexity: exp of the mean negative log-likelihood per target token (lower is better).

Not chosen in `eval.metrics`: every generating task reports it from its token-weighted eval_loss
(hfkit.scoring). Its sufficient statistics are each example's summed token NLL and token count.
"""

import math

import numpy as np

from hfkit.metrics.spec import MetricSpec, Statistics

CAP = 50.0  # nats: exp(50) = 5.2e21; an untrained model's loss can overflow exp


def from_loss(loss: float) -> float | str:
    """exp(loss); above the cap, a bound as text (">5.18e+21"), never a number that looks measured."""
    return math.exp(loss) if loss <= CAP else f">{math.exp(CAP):.2e}"


def token_losses(losses, references) -> list[list[float]]:
    """One (summed token NLL, target tokens) pair per example; `references` are unused."""
    return [[float(nll), float(tokens)] for nll, tokens in losses]


def score(sums):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.exp(np.where(sums[:, 1] > 0, sums[:, 0] / sums[:, 1], np.nan))


METRIC = MetricSpec(
    name="perplexity", per_example=token_losses, batched=True, aggregate=Statistics(score), higher_is_better=False,
    references="loss", unit="perplexity", description="exp(eval_loss), the token-weighted loss in nats per token.")

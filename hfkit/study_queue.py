"""Which (configuration, seed) a study process runs next, taken so that no two processes run one twice.

A grid queues every (configuration, seed) when the study starts (Optuna's `enqueue_trial`);
random and tpe draw a configuration with the sampler when nothing is queued, run its first seed
and queue the others. `study.ask()` hands a queued trial to one process only (with the file lock
of hfkit.study_storage around it for SQLite and journal files). A (configuration, seed) queued
twice (two processes topping up at once, a lost queue rebuilt) is skipped, the earliest trial
keeping it; a configuration drawn again is skipped too. Skipped trials are failed trials marked
`hfkit:skipped` that no table counts. An interrupted trial is queued again under a new number
with `hfkit:retry_of`, and its run folder (named by configuration and seed) is the same.

Optuna's GridSampler is not used for grids: it gives a late trial (one after a retry) a random
unvisited grid point, which two processes can both draw.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from hfkit import study_spec, study_storage
from hfkit.console import say
from hfkit.study_record import CONFIG, RETRY_OF, SEED, SKIPPED, config_key
from hfkit.study_spec import Range, StudySpec
from hfkit.study_storage import OWNER

MAX_REDRAWS = 20  # random / tpe: configurations drawn again in a row before the search counts as exhausted


def claim(study, spec: StudySpec, url: str) -> tuple[Any, dict[str, Any]] | None:
    """Take the next (configuration, seed) to run, or None when none is left for this process."""
    from optuna.trial import TrialState

    redraws = 0
    with study_storage.claim_lock(url):
        study_storage.fail_interrupted(study, retry)
        top_up(study, spec)
        while True:
            trials = study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if not waiting and not _may_draw(spec, trials):
                return None
            with warnings.catch_warnings():  # "heartbeat is supposed to be used with Study.optimize": the
                warnings.simplefilter("ignore")  # study process records the heartbeat itself (hfkit.study.launch)
                trial = study.ask()
            trial.set_user_attr(OWNER, study_storage.owner())
            if CONFIG in trial.user_attrs:  # a queued (configuration, seed)
                if _taken_earlier(trial, trials):
                    skip(study, trial, "queued twice; the earlier trial runs it")
                    continue
                return trial, suggest(trial, spec)
            if spec.sampler == "grid":  # another process took the last queued trial meanwhile
                skip(study, trial, "nothing left to run")
                return None
            params = suggest(trial, spec)  # the sampler draws a configuration
            key = config_key(params)
            if any(t.user_attrs.get(CONFIG) == key and SKIPPED not in t.user_attrs for t in trials):
                skip(study, trial, "configuration drawn before")
                redraws += 1
                if redraws >= MAX_REDRAWS:
                    say(f"[yellow]The sampler drew {MAX_REDRAWS} configurations already run in a row: "
                        "the search space looks exhausted[/yellow]")
                    return None
                continue
            trial.set_user_attr(SEED, spec.seeds[0])
            trial.set_user_attr(CONFIG, key)  # last: a trial with CONFIG has its whole identity
            if any(t.number != trial.number and t.user_attrs.get(CONFIG) == key
                   for t in _active(study.get_trials(deepcopy=False))):
                # another process drew it at the same moment (only on a database server: files are locked);
                # each wrote its identity before looking, so at most one keeps it
                skip(study, trial, "configuration drawn by another process at the same moment")
                continue
            for seed in spec.seeds[1:]:
                study.enqueue_trial(trial.params, user_attrs={CONFIG: key, SEED: seed})
            return trial, params


def _may_draw(spec: StudySpec, trials: list) -> bool:
    """random / tpe: fewer configurations drawn than asked for, and the space not used up."""
    if spec.sampler == "grid":
        return False
    drawn = {t.user_attrs[CONFIG] for t in trials if CONFIG in t.user_attrs and SKIPPED not in t.user_attrs}
    if all(isinstance(v, list) for v in spec.search.values()) and len(drawn) >= len(study_spec.configurations(spec)):
        return False
    return len(drawn) < spec.trials


def _active(trials: list) -> list:
    """Trials that stand for their (configuration, seed): not skipped, not an interrupted one re-queued."""
    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    return [t for t in trials if SKIPPED not in t.user_attrs and t.number not in retried and CONFIG in t.user_attrs
            and SEED in t.user_attrs]


def _taken_earlier(trial, trials: list) -> bool:
    identity = (trial.user_attrs[CONFIG], trial.user_attrs[SEED])
    return any(t.number < trial.number and (t.user_attrs[CONFIG], t.user_attrs[SEED]) == identity
               for t in _active(trials))


def top_up(study, spec: StudySpec) -> None:
    """Queue every (configuration, seed) that has no trial: a new grid, new seeds, or a queue a kill cut short."""
    trials = study.get_trials(deepcopy=False)
    have = {(t.user_attrs[CONFIG], t.user_attrs[SEED]) for t in _active(trials)}
    if spec.sampler == "grid":
        wanted = study_spec.configurations(spec)
    else:
        wanted = list({t.user_attrs[CONFIG]: json.loads(t.user_attrs[CONFIG]) for t in _active(trials)}.values())
    for params in wanted:
        key = config_key(params)
        for seed in spec.seeds:
            if (key, seed) not in have:
                study.enqueue_trial(encode(spec, params), user_attrs={CONFIG: key, SEED: seed})


def retry(study, trial) -> None:
    """Queue an interrupted trial again: the same configuration and seed (and so the same folder)."""
    if CONFIG not in trial.user_attrs or SEED not in trial.user_attrs:
        return  # it died before it had drawn its configuration: nothing to repeat
    params = trial.params or trial.system_attrs.get("fixed_params") or {}
    study.enqueue_trial(params, user_attrs={CONFIG: trial.user_attrs[CONFIG], SEED: trial.user_attrs[SEED],
                                            RETRY_OF: trial.number})


def skip(study, trial, why: str) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr(SKIPPED, why)
    study.tell(trial, state=TrialState.FAIL)


def _choices(values: list) -> list:
    """Optuna's categorical choices: the values, or their JSON when one is a list or mapping."""
    plain = all(v is None or isinstance(v, (bool, int, float, str)) for v in values)
    return values if plain else [json.dumps(v) for v in values]


def encode(spec: StudySpec, params: dict[str, Any]) -> dict[str, Any]:
    return {key: _choices(spec.search[key])[spec.search[key].index(value)] if isinstance(spec.search[key], list)
            else value for key, value in params.items()}


def suggest(trial, spec: StudySpec) -> dict[str, Any]:
    """The trial's configuration: drawn by the sampler, or the queued values (then recorded as params)."""
    params = {}
    for key, space in spec.search.items():
        if isinstance(space, Range):
            params[key] = (trial.suggest_int(key, int(space.low), int(space.high), step=int(space.step or 1),
                                             log=space.log) if space.integers
                           else trial.suggest_float(key, space.low, space.high, step=space.step, log=space.log))
        else:
            choices = _choices(space)
            params[key] = space[choices.index(trial.suggest_categorical(key, choices))]
    return params

"""study.json: a study's results, typed like the run record (schema_version), written whole.

Built from the Optuna storage (every trial's configuration, seed, state, value and the run facts the
study process stored with it) and the trials' predictions files (for the test against the best
configuration, hfkit.study_stats). Per configuration: its params, its trials, the objective over
seeds ({mean, sd, n, values}), the mean width of its trials' 95% bootstrap intervals (eval-sample
noise, to set beside the seed sd), its cost (train seconds, peak memory, trainable parameters) and
its test against the best.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hfkit import metrics, runs, study_stats
from hfkit.errors import HfkitError, first_line
from hfkit.significance import metric_inputs, read_predictions

STUDY = "study.json"
SCHEMA_VERSION = 1
CONFIG, SEED, FOLDER, RESULT, SKIPPED, RETRY_OF = (
    "hfkit:config", "hfkit:seed", "hfkit:folder", "hfkit:result", "hfkit:skipped", "hfkit:retry_of")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TrialResult(_Open):
    number: int  # the Optuna trial number
    seed: int | None = None
    state: Literal["complete", "pruned", "failed", "running", "waiting"]
    folder: str | None = None  # the run folder, inside the study folder
    value: float | None = None  # the objective, from the run record's final metrics
    interval: list[float] | None = None  # its 95% bootstrap interval
    train_s: float | None = None
    peak_rss_mb: float | None = None
    trainable_params: int | None = None
    error: str | None = None  # a failed trial's one-line error, or where a pruned one stopped
    retry_of: int | None = None  # the interrupted trial this one re-ran


class Configuration(_Open):
    id: str  # c1, c2, ... in the order the study first ran them
    params: dict[str, Any]
    trials: list[TrialResult]
    objective: dict[str, Any]  # {mean, sd, n, values} over the complete trials (seeds)
    interval_width: float | None = None  # mean width of the trials' bootstrap intervals
    cost: dict[str, Any] = Field(default_factory=dict)  # train_s (mean), peak_rss_mb (max), trainable_params
    vs_best: dict[str, Any] | None = None  # {a, b, delta, low, high, p_value, significant, test}


class StudyRecord(_Open):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["study"] = "study"
    name: str
    status: Literal["complete", "incomplete"] = "incomplete"
    recipe: str
    overrides: list[str] = Field(default_factory=list)
    search: dict[str, Any]
    sampler: str
    seeds: list[int]
    trials: int | None = None  # random / tpe: configurations to sample
    objective: dict[str, str]  # {key, direction}
    pruning: dict[str, Any] | None = None
    storage: str
    counts: dict[str, int] = Field(default_factory=dict)  # trials per state (+ interrupted, skipped)
    configurations: list[Configuration] = Field(default_factory=list)
    best: dict[str, Any] | None = None  # {configuration, params, mean}
    importances: dict[str, float] | None = None  # Optuna's parameter importances (two or more keys)
    notes: list[str] = Field(default_factory=list)

    path: Path | None = Field(None, exclude=True)

    def write(self, folder: Path) -> None:
        runs.write_text(Path(folder) / STUDY, self.model_dump_json(indent=2) + "\n")


def is_study_dir(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / STUDY).is_file()


def read(folder: Path) -> StudyRecord:
    path = Path(folder) / STUDY
    try:
        record = StudyRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise HfkitError(f"{path}: cannot be read ({first_line(err)})") from None
    record.path = Path(folder)
    return record


def config_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def build(study, spec, storage_shown: str) -> StudyRecord:
    """The study's record from its storage and its trial folders."""
    from optuna.trial import TrialState

    states = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
              TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF) for t in trials} - {None}
    counts = {"interrupted": len(retried), "skipped": sum(SKIPPED in t.user_attrs for t in trials)}
    grouped: dict[str, list] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        if SKIPPED in trial.user_attrs or trial.number in retried or CONFIG not in trial.user_attrs:
            continue
        grouped.setdefault(trial.user_attrs[CONFIG], []).append(trial)
        counts[states[trial.state]] = counts.get(states[trial.state], 0) + 1
    configurations = [_configuration(f"c{i}", key, members, states)
                      for i, (key, members) in enumerate(grouped.items(), start=1)]
    record = StudyRecord(
        name=spec.name, recipe=str(spec.recipe), overrides=spec.overrides, sampler=spec.sampler, seeds=spec.seeds,
        search={k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in spec.search.items()},
        trials=spec.trials, objective={"key": spec.objective, "direction": spec.direction},
        pruning=spec.pruning.model_dump() if spec.pruning else None, storage=storage_shown, counts=counts,
        configurations=configurations)
    done = not counts.get("running") and not counts.get("waiting")
    planned = (len(configurations) >= spec.trials if spec.trials else
               len(configurations) == _grid_size(spec)) and all(
        {t.seed for t in c.trials} >= set(spec.seeds) for c in configurations)
    record.status = "complete" if done and planned else "incomplete"
    _rank(record, spec)
    record.importances = _importances(study, spec, record)
    return record


def _grid_size(spec) -> int:
    size = 1
    for values in spec.search.values():
        size *= len(values)
    return size


def _configuration(ident: str, key: str, members: list, states: dict) -> Configuration:
    results = []
    for trial in members:
        facts = trial.user_attrs.get(RESULT) or {}
        results.append(TrialResult(
            number=trial.number, seed=trial.user_attrs.get(SEED), state=states[trial.state],
            folder=trial.user_attrs.get(FOLDER), value=trial.value if states[trial.state] == "complete" else None,
            retry_of=trial.user_attrs.get(RETRY_OF), **{k: facts.get(k) for k in (
                "interval", "train_s", "peak_rss_mb", "trainable_params", "error")}))
    complete = [r for r in results if r.state == "complete"]
    widths = [r.interval[1] - r.interval[0] for r in complete if r.interval and all(map(math.isfinite, r.interval))]
    train = [r.train_s for r in complete if r.train_s is not None]
    memory = [r.peak_rss_mb for r in complete if r.peak_rss_mb is not None]
    cost = {"train_s": sum(train) / len(train) if train else None, "peak_rss_mb": max(memory) if memory else None,
            "trainable_params": next((r.trainable_params for r in complete if r.trainable_params), None)}
    return Configuration(id=ident, params=json.loads(key), trials=results,
                         objective=study_stats.summary([r.value for r in complete]),
                         interval_width=sum(widths) / len(widths) if widths else None, cost=cost)


def _rank(record: StudyRecord, spec) -> None:
    """The best configuration (by mean over seeds), and every other one tested against it."""
    scored = [c for c in record.configurations if c.objective["n"]]
    if not scored:
        return
    sign = -1 if spec.direction == "minimize" else 1
    best = max(scored, key=lambda c: sign * c.objective["mean"])
    record.best = {"configuration": best.id, "params": best.params, "mean": best.objective["mean"]}
    metric = _metric_of(spec, best)
    best_runs = _seed_runs(best, spec.folder)
    for configuration in scored:
        if configuration is best:
            continue
        runs_here = _seed_runs(configuration, spec.folder, best_runs[0].ids if best_runs else None)
        configuration.vs_best = study_stats.test_against(best_runs, runs_here, metric, spec.objective,
                                                         spec.base.eval.metric_args if spec.base else None)
    if any(c.objective["n"] == 1 for c in scored):
        record.notes.append("a configuration with one complete seed: its test covers eval-sample noise only "
                            "(seeds: 3 or more measures seed noise too)")
    elif any(c.objective["n"] < 3 for c in scored):
        record.notes.append("fewer than 3 seeds in a configuration: its seed variance rests on so few values that "
                            "only large differences test significant")


def _metric_of(spec, configuration: Configuration) -> str | None:
    """The hfkit metric that reports the objective (None: eval_loss or perplexity, no per-example
    scores), among the metrics a complete trial of `configuration` reported (its run record's)."""
    if spec.objective in ("eval_loss", "perplexity"):
        return None
    from hfkit.record import read_record

    for trial in configuration.trials:
        if trial.state == "complete" and trial.folder:
            try:
                names = read_record(spec.folder / trial.folder).metric_names
            except (HfkitError, OSError):  # a trial folder removed or damaged since
                continue
            return next((name for name in names if metrics.find(name) is not None
                         and spec.objective in metrics.find(name).keys), None)
    return None


def _seed_runs(configuration: Configuration, folder: Path, ids: list[str] | None = None) -> list:
    """Each complete trial's score with its metric inputs, its rows in the order of `ids` (or its
    own); no inputs when its predictions file is missing or holds other examples."""
    found = []
    for trial in configuration.trials:
        if trial.state != "complete":
            continue
        run = study_stats.SeedRun(trial.value)
        rows = _final_rows(folder / trial.folder) if trial.folder else None
        if rows is not None:
            order = ids or [str(row.id) for row in rows.rows]
            if sorted(order) == sorted(rows.by_id):
                run.predictions, run.references = metric_inputs([rows.by_id[i] for i in order])
                run.ids = order
        found.append(run)
    return found


def _final_rows(run_dir: Path):
    try:
        from hfkit.record import read_record

        record = read_record(run_dir)
    except HfkitError:
        return None
    if record.final is None or not record.final.predictions:
        return None
    return read_predictions(run_dir / record.final.predictions)


def _importances(study, spec, record: StudyRecord) -> dict[str, float] | None:
    """Optuna's parameter importances (PED-ANOVA, its default) when two or more keys are searched."""
    if len(spec.search) < 2 or sum(c.objective["n"] for c in record.configurations) < 2:
        return None
    import warnings

    import optuna

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            found = {key: float(value) for key, value in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ZeroDivisionError) as err:
            record.notes.append(f"parameter importances: not computed ({first_line(err)})")
            return None
    if any("importances will be equal" in str(w.message) for w in caught):  # PED-ANOVA with too few trials
        record.notes.append("parameter importances: too few complete trials to tell the keys apart")
        return None
    return found

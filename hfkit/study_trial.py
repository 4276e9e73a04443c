"""One trial of a study, in a process of its own (so a crash or a memory blow-up cannot take the study
down):

  python -m hfkit.study_trial RECIPE [key=value ...] --study NAME --trial-id ID --objective KEY
                              [--pruning JSON] [--resume RUN]
  (the storage URL comes in HFKIT_STUDY_STORAGE, so no password shows in the process list)

It is `hfkit train` (hfkit.training.train: the same checks, run folder, record and resume) plus one
Trainer callback that reports every evaluation's eval_<objective> to the Optuna trial; when
Optuna's pruner says stop, training ends there and the run record says `pruned`. Under
`--launch-config` it runs under `accelerate launch`; only the main process talks to the storage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

from hfkit import distributed, runs
from hfkit.errors import HfkitError, Interrupted, Pruned
from hfkit.redaction import redact_text

PRUNED_EXIT = 3


class ReportToTrial(TrainerCallback):
    """Trainer evaluations -> trial.report(eval_<objective>, step); the pruner's verdict stops training.

    The trial is opened at the first evaluation, on the main process only (by then Trainer has set
    up the processes: opening it earlier would set up accelerate's state before hfkit's settings)."""

    def __init__(self, open_trial: Callable, objective: str):
        self.open_trial, self.trial = open_trial, None
        self.key = f"eval_{objective.removeprefix('eval_')}"

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.key)
        if value is None:
            return
        prune = False
        if distributed.is_main():
            self.trial = self.trial or self.open_trial()
            self.trial.report(float(value), state.global_step)
            prune = self.trial.should_prune()
        if distributed.broadcast(prune):  # every process stops at the same step
            raise Pruned(f"pruned at step {state.global_step}: {self.key} {float(value):.4g} is worse than the median "
                         "of earlier trials at that step", log_history=list(state.log_history))


def open_trial(study_name: str, trial_id: int, pruning: dict | None):
    import optuna

    from hfkit.study_storage import STORAGE_ENV, open_storage

    pruner = optuna.pruners.MedianPruner(**{k: v for k, v in pruning.items() if k != "type"}) if pruning else None
    study = optuna.load_study(study_name=study_name, storage=open_storage(os.environ[STORAGE_ENV], heartbeat=False),
                              pruner=pruner)
    return optuna.trial.Trial(study, trial_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfkit.study_trial")
    parser.add_argument("recipe", nargs="?")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--study", required=True)
    parser.add_argument("--trial-id", type=int, required=True)
    parser.add_argument("--objective", required=True)
    parser.add_argument("--pruning")
    parser.add_argument("--resume")
    args = parser.parse_args(argv)

    from hfkit.console import configure_output
    from hfkit.recipe import load_recipe
    from hfkit.training import train

    configure_output("normal")
    resume = Path(args.resume) if args.resume else None
    try:
        recipe = load_recipe(resume / runs.RECIPE if resume else args.recipe, [] if resume else args.overrides)
        pruning = json.loads(args.pruning) if args.pruning else None
        reporter = ReportToTrial(lambda: open_trial(args.study, args.trial_id, pruning), args.objective)
        command = ["hfkit", "train", *(["--resume", str(resume)] if resume else [str(args.recipe), *args.overrides])]
        train(recipe, overwrite=False, command=command, resume=resume, callbacks=[reporter])
    except HfkitError as err:
        print(f"hfkit: error: {redact_text(str(err))}", file=sys.stderr)
        return 2
    except Pruned as err:
        print(f"hfkit: {err}", file=sys.stderr)
        return PRUNED_EXIT
    except Interrupted as err:
        print(f"hfkit: {err}", file=sys.stderr)
        return err.exit_code  # 130 for Ctrl-C, 143 for SIGTERM
    return 0


if __name__ == "__main__":
    code = main()
    distributed.shut_down()  # launched processes leave their process group before exiting
    raise SystemExit(code)

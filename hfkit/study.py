"""`hfkit study`: which recipe? One recipe trained over a search space and several seeds, on Optuna.

  STUDY/ (DIR/NAME)
    study.json          the results (hfkit.study_record): configurations, objective over seeds, cost, best
    study.db            the Optuna storage (SQLite), unless --storage names another
    <params>_seed-<S>/  one ordinary run folder per trial (configuration, seed), made by `hfkit train`'s code
    logs/<trial>.log    what each trial printed

Each (configuration, seed) is one Optuna trial, run in a process of its own (hfkit.study_trial);
which one a process runs next, without two processes sharing a storage ever running one twice, is
hfkit.study_queue's job.

Rerunning the command resumes: finished trials are kept, an interrupted one (its process gone)
is queued again and resumes from its last checkpoint, or starts over without one.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from hfkit import runs, study_spec, study_storage
from hfkit.console import console, number, say
from hfkit.errors import HfkitError, Interrupted
from hfkit.record import has_record, read_record
from hfkit.redaction import redact_text
from hfkit.study_queue import claim, retry
from hfkit.study_record import FOLDER, RESULT, SEED, StudyRecord, build
from hfkit.study_spec import Range, StudySpec

SPEC = "hfkit:spec"
LOGS = "logs"


def run(spec: StudySpec) -> StudyRecord:
    """Check the study, then run every trial not yet run; returns the study's record."""
    spec = study_spec.check(spec)  # every mistake before anything is written
    if spec.launch_config and not Path(spec.launch_config).is_file():
        raise HfkitError(f"--launch-config: no such accelerate config: {spec.launch_config} (see accelerate_configs/)")
    folder = _make_folder(spec)
    url = spec.storage or study_storage.default_url(folder)
    with study_storage.claim_lock(url):  # two processes creating one SQLite file's tables at once would collide
        storage = study_storage.open_storage(url, on_stale=retry)
        study = _open_study(spec, storage)
    planned = _planned(spec)
    say(f"Study {spec.name}: {planned} trials ({describe_search(spec)}; seeds {', '.join(map(str, spec.seeds))}), "
        f"objective {spec.objective} ({spec.direction}); storage {redact_text(url)}")
    write(study, spec, url)
    try:
        while (claimed := claim(study, spec, url)) is not None:
            trial, params = claimed
            run_trial(study, trial, params, spec, url, storage)
            write(study, spec, url)
    except KeyboardInterrupt:  # between trials (during one, `launch` turns it into Interrupted)
        write(study, spec, url)
        raise Interrupted("study stopped; run the same command again to continue") from None
    record = write(study, spec, url)
    from hfkit.study_table import rich_table

    console.print(rich_table(record, width=console.width))
    for note in record.notes:
        say(f"[yellow]{note}[/yellow]")
    console.print(f"Study folder: {folder}" + ("" if record.status == "complete" else
                                               " (incomplete: other processes are running trials, or run the command again)"))
    return record


def describe_search(spec: StudySpec) -> str:
    parts = [f"{key} in {v.low:g}..{v.high:g}" + (" (log)" if v.log else "") if isinstance(v, Range)
             else f"{key} in {v}" for key, v in spec.search.items()]
    how = "grid" if spec.sampler == "grid" else f"{spec.sampler}, {spec.trials} configurations"
    return f"{how}: " + "; ".join(parts)


def _planned(spec: StudySpec) -> int:
    return (len(study_spec.configurations(spec)) if spec.sampler == "grid" else spec.trials) * len(spec.seeds)


def _make_folder(spec: StudySpec) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.name):
        raise HfkitError(f"--name {spec.name!r}: a plain folder name (letters, digits, '.', '_', '-'; no '/')")
    folder = spec.folder.expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise HfkitError(f"--dir {spec.dir}: cannot create the study folder {folder} ({err.strerror or err}); "
                         "choose a folder you can write in") from None
    spec.dir = folder.parent
    return folder


def _open_study(spec: StudySpec, storage):
    import optuna

    sampler = optuna.samplers.TPESampler() if spec.sampler == "tpe" else optuna.samplers.RandomSampler()
    pruner = (optuna.pruners.MedianPruner(**spec.pruning.model_dump(exclude={"type"})) if spec.pruning
              else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=spec.name, storage=storage, direction=spec.direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    identity = {**spec.identity(), "recipe_sha1": _recipe_hash(spec)}
    stored = study.user_attrs.get(SPEC)
    if stored is None:
        study.set_user_attr(SPEC, identity)
    elif stored != identity:
        changed = ", ".join(key for key in identity if stored.get(key) != identity[key])
        raise HfkitError(f"study {spec.name!r} ({spec.folder}) was started with other settings ({changed} differ); "
                         "rerun it with the same ones (trials and seeds may grow), or give another --name")
    return study


def _recipe_hash(spec: StudySpec) -> str:
    import hashlib

    return hashlib.sha1(spec.base.to_yaml().encode()).hexdigest()


def run_trial(study, trial, params: dict[str, Any], spec: StudySpec, url: str, storage) -> None:
    """Train one (configuration, seed) into its run folder and tell Optuna the outcome."""
    seed = trial.user_attrs[SEED]
    name = study_spec.folder_name(params, seed)
    run_dir = spec.folder / name
    trial.set_user_attr(FOLDER, name)
    shown = " ".join(f"{key}={number(value)}" for key, value in params.items())
    returncode = 0
    if has_record(run_dir) and _status(run_dir) == "complete":
        say(f"trial {trial.number}: {shown} seed {seed}: already trained ({name}), its record is kept")
    else:
        checkpoint, _ = runs.last_complete_checkpoint(run_dir) if run_dir.is_dir() else (None, [])
        if run_dir.exists() and checkpoint is None:
            shutil.rmtree(run_dir)  # an interrupted attempt without a checkpoint starts over
        say(f"trial {trial.number}: {shown} seed {seed}" + (f" (resuming from {checkpoint.name})" if checkpoint else ""))
        returncode = launch(study, trial, params, spec, url, storage, run_dir, resume=checkpoint is not None)
    say(f"  -> {tell(study, trial, spec, run_dir, returncode)}")


def _status(run_dir: Path) -> str | None:
    try:
        return read_record(run_dir).status
    except HfkitError:
        return None


def launch(study, trial, params, spec: StudySpec, url: str, storage, run_dir: Path, resume: bool) -> int:
    """The trial's own process (hfkit.study_trial), optionally under `accelerate launch`; a heartbeat
    while it runs. A Ctrl-C reaches it too: it saves a checkpoint, and the trial is queued again."""
    overrides = [*spec.overrides, *study_spec.assignments(params), f"training.seed={trial.user_attrs[SEED]}",
                 f"output.dir={json.dumps(str(spec.folder))}", f"output.name={run_dir.name}", "output.timestamp=false"]
    target = ["--resume", str(run_dir)] if resume else [str(spec.recipe), *overrides]
    module = ["-m", "hfkit.study_trial", *target, "--study", spec.name, "--trial-id", str(trial._trial_id),
              "--objective", spec.objective]
    if spec.pruning:
        module += ["--pruning", json.dumps(spec.pruning.model_dump())]
    if spec.launch_config:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", spec.launch_config,
                   "--main_process_port", str(_free_port()), *module]
    else:
        command = [sys.executable, *module]
    log_path = spec.folder / LOGS / f"{run_dir.name}.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {redact_text(' '.join(command))}\n")
        log.flush()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, study_storage.STORAGE_ENV: url}, preexec_fn=_die_with_parent)
        study_storage.record_heartbeat(storage, trial)
        try:
            while True:
                try:
                    return child.wait(timeout=study_storage.HEARTBEAT_S)
                except subprocess.TimeoutExpired:
                    study_storage.record_heartbeat(storage, trial)
        except KeyboardInterrupt:
            child.wait()  # it got the Ctrl-C as well: it saves a checkpoint and stops
            from optuna.trial import TrialState

            if _told(study, trial, None, state=TrialState.FAIL):
                retry(study, study.get_trials(deepcopy=False)[trial.number])
            raise Interrupted(f"study stopped during {run_dir.name}; run the same command again to continue "
                              "(that trial resumes from its checkpoint)") from None


def _die_with_parent() -> None:
    """The trial's process gets SIGKILL if the study process dies (kill -9), so no orphan keeps writing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tell(study, trial, spec: StudySpec, run_dir: Path, returncode: int) -> str:
    """Read the trial's run record and tell Optuna: complete (the objective), pruned or failed (its error)."""
    from optuna.trial import TrialState

    record = read_record(run_dir) if has_record(run_dir) else None
    facts: dict[str, Any] = {}
    if record is not None:
        final = record.final
        facts = {"interval": final.intervals.get(spec.objective) if final else None,
                 "train_s": record.train.runtime_s if record.train else None,
                 "peak_rss_mb": record.peak_memory_mb.get("rss"), "trainable_params": record.parameters.get("trainable")}
    if record is not None and record.status == "complete":
        value = record.final.metrics.get(spec.objective) if record.final else None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return f"{spec.objective} {number(value)}" if _told(study, trial, facts, float(value)) else TAKEN_OVER
        facts["error"] = f"the run record holds no finite {spec.objective} (got {value!r})"
    elif record is not None and record.status == "pruned":
        facts["error"] = record.error
        return f"[yellow]{record.error}[/yellow]" if _told(study, trial, facts, state=TrialState.PRUNED) else TAKEN_OVER
    else:
        facts["error"] = (record.error if record is not None and record.error
                          else last_error(spec.folder / LOGS / f"{run_dir.name}.log", returncode))
    return f"[red]failed: {facts['error']}[/red]" if _told(study, trial, facts, state=TrialState.FAIL) else TAKEN_OVER


TAKEN_OVER = ("[yellow]another process had marked this trial interrupted (no heartbeat for "
              f"{study_storage.HEARTBEAT_GRACE_S} s) and queued it again; this result is not counted[/yellow]")


def _told(study, trial, facts: dict | None, value: float | None = None, state=None) -> bool:
    """The run's facts stored with the trial, then study.tell; False when another process finished the
    trial meanwhile (see TAKEN_OVER)."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        if facts is not None:
            trial.set_user_attr(RESULT, facts)
        study.tell(trial, value, state=state)
    except (UpdateFinishedTrialError, ValueError, RuntimeError):
        return False
    return True


def last_error(log_path: Path, returncode: int) -> str:
    """A failed trial's one line: its `hfkit: error:` line, the signal that killed it, or its last line."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    try:
        lines = [line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        lines = []
    errors = [line.removeprefix("hfkit: error:").strip() for line in lines if line.startswith("hfkit: error:")]
    return redact_text((errors or lines or [f"exit code {returncode}"])[-1])


def write(study, spec: StudySpec, url: str) -> StudyRecord:
    record = build(study, spec, redact_text(url))
    record.write(spec.folder)
    return record


def validate(path: str, overrides: list[str], skip_hub: bool = False, overwrite: bool = False) -> list[str]:
    """`hfkit validate STUDY.yaml`: the study's checks, then the whole recipe check of its base recipe."""
    from hfkit.validate import validate as validate_recipe

    spec = study_spec.check(study_spec.from_study_file(Path(path), overrides=overrides))
    lines = [f"{spec.recipe}: {line}" for line in validate_recipe(str(spec.recipe), spec.overrides, skip_hub, overwrite)
             if not line.startswith("output:")]  # the trials' folders are the study's, below
    checked = len(study_spec.combinations_to_check(spec))
    return lines + [f"output: {spec.folder}/ (one run folder per trial), storage {spec.storage or 'study.db in it'}",f"search ({describe_search(spec)}): {checked} combinations checked, each a valid recipe",
                    f"objective: {spec.objective} ({spec.direction}); seeds {', '.join(map(str, spec.seeds))}"]

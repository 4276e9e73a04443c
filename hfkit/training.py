"""`hfkit train`: recipe -> model and data -> baseline -> Trainer -> weights -> scores -> run folder.

Read top to bottom, `train` is the whole job, the way transformers' example scripts read. The
trained weights are saved before the final scoring, so a scoring failure after hours of training
loses nothing: the record says `scoring_failed` and `hfkit eval RUN` finishes it.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from hfkit import distributed, job, lora, memory, memory_plan, qlora, runs, session
from hfkit import resume as resume_state
from hfkit.console import console, results_table, say
from hfkit.errors import HfkitError, Interrupted, first_line, stop_signal
from hfkit.metrics import eval_loss_key
from hfkit.record import (Evaluation, RunRecord, TrainStats, has_record, read_record, recording_failure,
                          with_best_step)
from hfkit.recipe import ignored_settings
from hfkit.redaction import redacted_yaml
from hfkit.schema import Recipe
from hfkit.scoring import count_warnings
from hfkit.trainer import StopOnInterrupt


@runs.releasing_locks
def train(recipe: Recipe, overwrite: bool = False, command: list[str] | None = None,
          resume: Path | None = None, callbacks: list | None = None) -> tuple[Path, RunRecord]:
    """Fine-tune the recipe's model and write a complete run folder; returns its path and record.

    With `resume` (a run folder), training continues that folder from its last complete checkpoint:
    model, optimizer, scheduler, RNG and data position as Trainer saved them. `callbacks` are
    extra Trainer callbacks (a study's trial reports its evaluations through one).
    """
    from transformers import set_seed

    task = session.open_target(recipe, resume=resume, weights=False).task
    for note in ignored_settings(recipe):
        say(f"[yellow]warning: {note}[/yellow]")
    job.check_hub_needs(recipe, task, training=True)
    if resume is None:
        runs.check_output_dir(recipe.output.dir)  # before any model loads
    args = job.training_arguments(recipe, task)
    model_path = job.materialize(recipe)  # a GGUF converted first lets the length check read its config
    config = job.check_model(recipe, task)
    lora.check_target_modules(recipe.model, recipe.peft, task.auto_model, config)  # on a meta copy: no weights
    run_dir, checkpoint = _run_dir_and_checkpoint(recipe, overwrite, resume)
    args.output_dir = str(run_dir)
    is_main = distributed.is_main()
    if is_main:
        runs.write_text(run_dir / runs.RECIPE, redacted_yaml(recipe))
    record = RunRecord(kind="train", method=recipe.peft.method, task=recipe.task, model=recipe.model.display_name)
    with runs.replacing(run_dir, is_main), recording_failure(run_dir, record, is_main):
        set_seed(args.seed)
        prepared = job.prepare(recipe, task, model_path, with_train=True)
        say(preparation_table(prepared.report))
        record.update(job.describe(recipe, prepared))
        record.notes = _said(prepared.notes)
        previous_baseline = _kept_baseline(run_dir) if resume is not None and recipe.eval.baseline else None
        bf16_base = lora.frozen_base_dtype(recipe.model, recipe.peft, task.new_heads)
        # The untuned model is scored on the checkpoint's own weights; the frozen base goes bf16 after.
        scores_checkpoint = bf16_base is not None and recipe.eval.baseline and previous_baseline is None
        model = job.load_model(recipe, task, prepared.tokenizer, checkpoint_dtype=scores_checkpoint)
        if bf16_base is not None:
            say("LoRA: the frozen base weights train in bfloat16 (model.dtype: float32 keeps them fp32)"
                + ("; the baseline is scored on the checkpoint's own weights first" if scores_checkpoint else ""))
        if recipe.peft.method == "qlora":
            say(f"QLoRA: the base's linear layers are 4-bit NF4, the rest and the computation "
                f"{str(qlora.compute_dtype(recipe.model)).removeprefix('torch.')}")
        trainable, total = lora.count_parameters(model)
        say(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%, {recipe.peft.method})")
        record.parameters = {"trainable": trainable, "total": total}

        trainer = job.make_trainer(args, prepared, model)
        record.attention = getattr(model.config, "_attn_implementation", None)  # padding-free may switch it
        for callback in callbacks or ():
            trainer.add_callback(callback)
        previous = read_record(run_dir).memory_plan if resume is not None and has_record(run_dir) else None
        try:
            record.memory_plan = memory_plan.plan(recipe, trainer, previous)  # before anything is scored or trained
        except memory_plan.NothingFits as failed:
            record.memory_plan = failed.plan  # what was measured stays in the failed run's record
            raise
        _log_into(trainer, run_dir)
        environment = runs.env_info(args.seed, distributed.describe(trainer), command or sys.argv)
        if is_main:  # written before training, so a resumed run keeps the command that started it
            runs.write_json(run_dir / runs.ENV, resume_state.keep_first_command(run_dir, environment))
        scorer = job.make_scorer(recipe, prepared, trainer)
        record.baseline = previous_baseline or _baseline(scorer, trainer, recipe, run_dir)
        if scores_checkpoint:
            lora.settle_frozen_base(trainer.model, bf16_base)
        record.model_dtype = str(trainer.model.dtype).removeprefix("torch.")
        if is_main:
            record.write(run_dir)
        started = time.perf_counter()
        stop = StopOnInterrupt()
        trainer.add_callback(stop)
        clock = resume_state.TrainingClock.from_checkpoint(checkpoint)  # time and loss before a resume
        trainer.add_callback(clock)
        with stop.listening(), memory.measured(forget=False) as training_peak:
            result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        if record.memory_plan and training_peak.mb is not None:
            record.memory_plan["training_peak_gb"] = round(training_peak.mb / memory_plan.MIB_PER_GIB, 3)
        train_seconds = time.perf_counter() - started
        record.log_history = trainer.state.log_history
        record.update(job.describe(recipe, prepared))  # a stream's counts are known once it has been read
        if stop.requested:
            _stop_interrupted(run_dir, record, trainer, stop)
        record.best = best_of(trainer)
        record.notes = [*prepared.notes, *_said(overfitting_notes(record.log_history))]
        record.train = TrainStats(
            runtime_s=round(train_seconds, 2), samples_per_second=result.metrics.get("train_samples_per_second"),
            # only when the recipe sets training.include_num_input_tokens_seen
            tokens_per_second=(round(trainer.state.num_input_tokens_seen / train_seconds, 1)
                               if trainer.state.num_input_tokens_seen else None),
            steps=result.global_step, train_loss=result.training_loss, train_examples=job.train_examples(prepared),
            resumed_from=checkpoint.name if checkpoint else None)
        resume_state.cover_whole_run(record.train, clock, result, train_seconds)
        save_weights(trainer, prepared.tokenizer, run_dir, recipe.peft.adapter)
        if is_main:  # the weights are saved: a process killed while scoring keeps its training numbers
            record.write(run_dir)
        record.final = score_into(run_dir, scorer, trainer, record, runs.PREDICTIONS)
        record.final.step = scored_step(trainer, result.global_step)
        record.notes += _said([f"{stage}: {line}" for stage, scored in (("baseline", record.baseline),
                                                                        ("final", record.final)) if scored is not None
                               for line in count_warnings(scored, recipe.eval.split, len(prepared.eval.rows))])
    record.status = "complete"
    record.peak_memory_mb = runs.peak_memory_mb()
    if record.memory_plan and "choice" in record.memory_plan:  # the whole run's peak, scoring included
        whole = record.peak_memory_mb.get("cuda", record.peak_memory_mb["rss"])
        record.memory_plan["run_peak_gb"] = round(whole / memory_plan.MIB_PER_GIB, 3)
    if is_main:
        run_dir = session.finish(run_dir, record)
        console.print(results_table(record.baseline, record.final, title=f"{recipe.run_name}: {recipe.eval.split} split"))
        console.print(f"Run folder: {run_dir}")
    return Path(distributed.broadcast(str(run_dir))), record


def save_weights(trainer, tokenizer, run_dir: Path, adapter: bool) -> Path:
    """The adapter (LoRA, QLoRA) or the whole model, and the tokenizer, saved before anything else can fail.

    Written into a hidden sibling that the main process renames into place once complete."""
    weights_dir = run_dir / (runs.ADAPTER if adapter else runs.MODEL)
    partial = runs.partial_folder(weights_dir)
    if distributed.is_main():
        shutil.rmtree(partial, ignore_errors=True)  # left by a save that crashed
    distributed.state().wait_for_everyone()
    try:
        trainer.save_model(str(partial))  # on every process: ZeRO-3 and FSDP gather the weights together
        if distributed.is_main():
            if adapter:
                lora.check_saved_adapter(partial)
            tokenizer.save_pretrained(str(partial))
            runs.share_files(partial)
            runs.swap_in(partial, weights_dir)
    except OSError as err:  # a full disk, a quota: the previous weights (if any) stay whole
        shutil.rmtree(partial, ignore_errors=True)
        checkpoint = "hfkit train --resume " + str(run_dir) + " continues from its last checkpoint" if any(
            run_dir.glob("checkpoint-*")) else "training must run again (no checkpoint was saved)"
        raise HfkitError(f"cannot save the trained weights in {weights_dir} ({err.strerror or err}); free some space; "
                         f"{checkpoint}") from None
    distributed.state().wait_for_everyone()
    return weights_dir


def score_into(run_dir: Path, scorer, trainer, record: RunRecord, predictions_name: str) -> Evaluation:
    """Score the trained model; a failure is recorded as `scoring_failed` (the weights are safe)."""
    is_main = distributed.is_main()
    partial = run_dir / runs.PARTIAL_PREDICTIONS if is_main else None
    try:
        scores = scorer.score(trainer.model, stream_to=partial)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the weights are saved, so scoring alone is left
        how, code = stop_signal(stop)
        if is_main:
            record.status, record.error = "scoring_failed", f"scoring interrupted by {how}"
            record.write(run_dir)
        raise Interrupted(f"scoring interrupted by {how}; the trained weights are saved in {run_dir}. Score them "
                          f"with: hfkit eval {run_dir}", code) from None
    except Exception as err:
        if is_main:
            record.status, record.error = "scoring_failed", f"{type(err).__name__}: {first_line(err)}"
            record.write(run_dir)
        raise HfkitError(f"scoring failed after training ({type(err).__name__}: {first_line(err)}); the trained "
                         f"weights are saved in {run_dir}. Score them with: hfkit eval {run_dir}") from err
    if is_main:
        scores.keep(run_dir, predictions_name)
    return scores.evaluation


def best_of(trainer) -> dict | None:
    """{step, metric, value} of the best evaluation, when the recipe chose a metric_for_best_model."""
    chosen, state = trainer.args.metric_for_best_model, trainer.state
    if not chosen or state.best_metric is None:
        return None
    step = state.best_global_step or (int(state.best_model_checkpoint.rsplit("-", 1)[1])
                                      if state.best_model_checkpoint else None)
    best = {"step": step, "metric": chosen if chosen.startswith("eval_") else f"eval_{chosen}",
            "value": state.best_metric, "restored": bool(trainer.args.load_best_model_at_end)}
    return with_best_step(best, state.log_history)  # no checkpoints: Trainer keeps no step


def overfitting_notes(log_history: list[dict], window: int = 3) -> list[str]:
    """A warning when validation loss rose over the last evaluations while training loss fell."""
    key = eval_loss_key(log_history)
    evals = [(e["step"], e[key]) for e in log_history if key in e and "step" in e]
    losses = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    if len(evals) < window:
        return []
    recent = evals[-window:]
    rising = all(b[1] > a[1] for a, b in zip(recent, recent[1:]))
    during = [loss for step, loss in losses if recent[0][0] <= step <= recent[-1][0]]
    if rising and len(during) >= 2 and during[-1] < during[0]:
        return [f"validation loss rose over the last {window} evaluations (steps {recent[0][0]}-{recent[-1][0]}: "
                f"{recent[0][1]:.4f} -> {recent[-1][1]:.4f}) while training loss fell: the model is overfitting; "
                "see training.load_best_model_at_end and training.early_stopping_patience"]
    return []


def _log_into(trainer, run_dir: Path) -> None:
    """Trackers that write files (tensorboard) write into the run folder."""
    for callback in trainer.callback_handler.callbacks:
        if type(callback).__name__ == "TensorBoardCallback":
            callback.logging_dir = str(run_dir / "tensorboard")


def _run_dir_and_checkpoint(recipe: Recipe, overwrite: bool, resume: Path | None) -> tuple[Path, Path | None]:
    if resume is None:
        return session.create_run_dir(recipe, overwrite), None
    if distributed.is_main():
        runs.lock_run(resume)  # not while another process still trains or scores it
    if has_record(resume) and read_record(resume).status == "complete" and not overwrite:
        raise HfkitError(f"--resume {resume}: that run already finished; pass --overwrite to train it again")
    checkpoint, skipped = runs.last_complete_checkpoint(resume)
    if checkpoint is None and skipped:  # never a silent fresh start (or fresh optimizer) over damaged checkpoints
        raise HfkitError(f"--resume {resume}: no usable checkpoint ({'; '.join(skipped)}); remove the damaged "
                         "checkpoint folders to train it again from the start")
    for reason in skipped:
        say(f"[yellow]Skipping {reason}[/yellow]", important=True)
    say(f"Resuming {resume} from {checkpoint.name}" if checkpoint else
        f"No checkpoint in {resume}: training it again from the start")
    return resume, checkpoint


def _said(notes: list[str]) -> list[str]:
    """Print each warning (yellow) and hand them back, for the record's `notes`."""
    for note in notes:
        say(f"[yellow]{note}[/yellow]")
    return list(notes)


def _kept_baseline(run_dir: Path) -> Evaluation | None:
    """The baseline a run being resumed has kept in its metrics.json (it is not scored again)."""
    return read_record(run_dir).baseline if has_record(run_dir) else None


def scored_step(trainer, last_step: int) -> int:
    """The step whose weights the final scores are of: the best checkpoint's when Trainer restored
    it at the end (load_best_model_at_end), else the last step."""
    checkpoint = trainer.state.best_model_checkpoint
    if trainer.args.load_best_model_at_end and checkpoint:
        return trainer.state.best_global_step or int(checkpoint.rsplit("-", 1)[1])
    return last_step


def _baseline(scorer, trainer, recipe: Recipe, run_dir: Path) -> Evaluation | None:
    """The untuned model's scores; kept in metrics.json at once, so a resumed run reuses them."""
    if not recipe.eval.baseline:
        return None
    say("Scoring the untuned model (eval.baseline: true)")
    partial = run_dir / runs.PARTIAL_PREDICTIONS if distributed.is_main() else None
    scores = scorer.score(trainer.model, stream_to=partial)
    if distributed.is_main():
        scores.keep(run_dir, runs.BASELINE_PREDICTIONS)
    scores.evaluation.step = 0
    return scores.evaluation


def _stop_interrupted(run_dir: Path, record: RunRecord, trainer, stop: StopOnInterrupt) -> None:
    checkpoint, _ = runs.last_complete_checkpoint(run_dir)
    if distributed.is_main():
        record.status, record.error = "interrupted", f"stopped by {stop.signal_name} at step {trainer.state.global_step}"
        record.write(run_dir)
    raise Interrupted(f"training stopped by {stop.signal_name} at step {trainer.state.global_step}; the checkpoint is "
                      f"{checkpoint}. Resume with: hfkit train --resume {run_dir}", stop.exit_code)


def preparation_table(report: dict):
    """Cleaning steps and what tokenizing cut or dropped, per split."""
    from rich.table import Table

    table = Table(title="Data: cleaning (training data only) and preparation")
    for column in ("split", "step", "removed", "rows"):
        table.add_column(column, justify="left" if column in ("split", "step") else "right")
    for split, steps in report.get("cleaning", {}).items():
        for step in steps:
            table.add_row(split, step["step"], str(step.get("removed", "")), str(step["rows"]))
    for split, counts in report.get("preparation", {}).items():
        shown = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in counts.items())
        table.add_row(split, f"tokenized: {shown}", "", "")
    return table

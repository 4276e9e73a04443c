"""Run folders as hfkit writes them, without training: for compare, its paired tests and report.html."""

from __future__ import annotations

from pathlib import Path

from support import write_jsonl


def fake_run(root: Path, name: str, task: str, final: dict | None, baseline: dict | None = None, losses=(),
             references: list | None = None, predictions: list | None = None, baseline_predictions: list | None = None,
             metric_names: list[str] | None = None, **fields) -> Path:
    """A run folder written through the run record, as hfkit train writes it. With `references`
    and `predictions` (and `baseline_predictions`), predictions*.jsonl hold one row per example
    with its id and per-example scores, and the scores come from the metrics themselves."""
    from hfkit.record import Evaluation, RunRecord, TrainStats

    run = root / name
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text(f"task: {task}\nmodel: {{name_or_path: m}}\npeft: {{method: lora}}\n")
    if final is None and predictions is None and baseline_predictions is None and not fields:
        return run  # a run that never got to scoring
    names = metric_names or ["exact_match"]

    def scored(answers, file, given):
        if answers is None:
            return Evaluation(metrics=given) if given else None
        from hfkit import metrics
        from hfkit.metrics.per_example import example_scores

        values, _ = metrics.compute(names, answers, references)
        per_example = {k: v for n in names for k, v in example_scores(n, answers, references).items()}
        write_jsonl(run / file, [{"id": f"ex{i}", "input": f"input {i}", "reference": ref, "prediction": answer,
                                  "scores": {k: v[i] for k, v in per_example.items()}}
                                 for i, (ref, answer) in enumerate(zip(references, answers))])
        _, intervals = metrics.uncertainty(names, answers, references, None, 200)
        return Evaluation(metrics={**(given or {}), **values}, intervals=intervals, predictions=file,
                          examples=len(references))

    record = dict(status="complete", task=task, model="m", dataset="d.jsonl", method="lora",
                  eval_examples=len(references) if references else 60, metric_names=names,
                  baseline=scored(baseline_predictions, "predictions_baseline.jsonl", baseline),
                  final=scored(predictions, "predictions.jsonl", final),
                  train=TrainStats(steps=10, runtime_s=12.5, samples_per_second=3.2), peak_memory_mb={"rss": 1500.0},
                  parameters={"trainable": 1000, "total": 9000}, log_history=[{"step": s, "loss": v} for s, v in losses])
    RunRecord(**{**record, **fields}).write(run)
    return run

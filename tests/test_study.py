"""hfkit study: trial folders and study.json, resuming after kill -9, two processes on one storage,
pruning, the test against the best configuration, mistakes found before any trial runs, and the
study in hfkit compare / report.html."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import record_of, run_hfkit, tiny_recipe
from test_report import CHROMIUM, PROBE, chromium

from hfkit import study_stats
from hfkit.cli import main

FAST = ["training.max_steps=2", "eval.baseline=false", "eval.bootstrap=100", "training.logging_steps=1"]


def trial_dirs(study: Path) -> list[Path]:
    return sorted(p for p in study.iterdir() if (p / "recipe.yaml").is_file())


def study_json(study: Path) -> dict:
    return json.loads((study / "study.json").read_text())


def trials_run(output: str) -> list[str]:
    """The lines `hfkit study` prints when it starts a trial."""
    return [line for line in output.splitlines() if line.startswith("trial ")]


def study_cli(*args, cwd):
    """`hfkit study ARGS` in a fresh, offline process (a study of several trials may take minutes)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "hfkit", "study", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=3600)


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory, tiny_llama):
    """A 2 x 2 grid with 2 seeds on the tiny Llama (8 trials), objective eval_loss, run by two processes
    started at once on the one study (as on two machines): they share its 8 trials, none run twice."""
    root = tmp_path_factory.mktemp("grid")
    recipe = tiny_recipe(root, tiny_llama)
    args = [recipe, "--grid", "training.learning_rate=1e-3,1e-2", "--grid", "peft.r=2,4", "--seeds", "2",
            "--objective", "eval_loss", "--name", "grid", "--dir", root / "studies", *FAST]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "hfkit", "study", *map(str, args)], cwd=root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=1800) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [err[-3000:] for _, err in outputs]
    return root, root / "studies" / "grid", [out for out, _ in outputs]


def test_a_grid_with_seeds_gives_one_run_folder_per_trial_and_study_json_holds_their_scores(grid_study):
    root, study, outputs = grid_study
    runs = trial_dirs(study)
    assert len(runs) == 8 and all(record_of(run).status == "complete" for run in runs)
    assert sum(len(trials_run(out)) for out in outputs) == 8  # eight trials started in all: none ran twice
    data = study_json(study)
    assert data["schema_version"] == 1 and data["status"] == "complete" and data["objective"] == {
        "key": "eval_loss", "direction": "minimize"}
    assert len(data["configurations"]) == 4 and data["counts"]["complete"] == 8
    for configuration in data["configurations"]:
        objective = configuration["objective"]
        assert objective["n"] == 2 and sorted(t["seed"] for t in configuration["trials"]) == [42, 43]
        values = []
        for trial in configuration["trials"]:
            record = record_of(study / trial["folder"])
            assert trial["value"] == record.final.metrics["eval_loss"]  # study.json = the trial's metrics.json
            assert trial["train_s"] == record.train.runtime_s and trial["interval"] == record.final.intervals.get(
                "eval_loss")
            recipe = (study / trial["folder"] / "recipe.yaml").read_text()
            assert f"learning_rate: {configuration['params']['training.learning_rate']}" in recipe
            assert f"seed: {trial['seed']}" in recipe
            values.append(trial["value"])
        assert objective["values"] == values and objective["mean"] == pytest.approx(np.mean(values))
        assert objective["sd"] == pytest.approx(np.std(values, ddof=1))
    means = {c["id"]: c["objective"]["mean"] for c in data["configurations"]}
    assert data["best"]["configuration"] == min(means, key=means.get)
    tested = [c["vs_best"] for c in data["configurations"] if c["id"] != data["best"]["configuration"]]
    assert all(t["test"] == study_stats.WELCH and t["delta"] >= 0 for t in tested)  # eval_loss: no per-example scores
    assert data["importances"] and set(data["importances"]) == {"training.learning_rate", "peft.r"}
    assert (study / "study.db").is_file() and all("eval_loss" in out for out in outputs)
    with sqlite3.connect(study / "study.db") as db:  # and none was started as a duplicate and skipped
        assert db.execute("select count(*) from trials").fetchone()[0] == 8


def test_rerunning_a_finished_study_adds_nothing_and_prints_its_table(grid_study):
    root, study, _ = grid_study
    stamps = {run.name: (run / "metrics.json").stat().st_mtime_ns for run in trial_dirs(study)}
    result = study_cli(root / "tiny.yaml", "--grid", "training.learning_rate=1e-3,1e-2", "--grid", "peft.r=2,4",
                       "--seeds", "2", "--objective", "eval_loss", "--name", "grid", "--dir", root / "studies", *FAST,
                       cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {run.name: (run / "metrics.json").stat().st_mtime_ns for run in trial_dirs(study)} == stamps
    with sqlite3.connect(study / "study.db") as db:
        assert db.execute("select count(*) from trials").fetchone()[0] == 8
    assert "mean ± sd" in result.stdout and not trials_run(result.stdout)


def test_compare_shows_the_study_and_report_html_has_its_section(grid_study, capsys):
    root, study, _ = grid_study
    assert main(["compare", str(study), "--output", str(root / "report")]) == 0
    out = capsys.readouterr().out
    assert "study grid" in out and "mean ± sd" in out
    page = (root / "report" / "report.html").read_text()
    assert '<section id="studies">' in page and page.count("data-configuration=") == 4
    assert page.count('alt="grid: ') >= 3  # a chart per searched key, the Pareto chart, the importances
    assert main(["compare", str(study), "--format", "json", "--resamples", "0"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["studies"][0]["configurations"] == study_json(study)["configurations"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_study_section_renders_in_chromium(grid_study, tmp_path):
    import re

    root, study, _ = grid_study
    assert main(["compare", str(study), "--output", str(tmp_path / "report"), "--resamples", "0"]) == 0
    page = (tmp_path / "report" / "report.html").read_text().replace("</body>", PROBE)
    probed = tmp_path / "probed.html"
    probed.write_text(page)
    dom = chromium(["--window-size=800,1200", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()], tmp_path)
    found = dict(re.findall(r'data-([a-z-]+)="(\d+)"', re.search(r"<body([^>]*)>", dom).group(1)))
    assert int(found["images"]) >= 4 and found["images-loaded"] == found["images"]  # every chart decoded
    assert int(found["page-width"]) <= int(found["view-width"])  # the study table scrolls in its box
    assert dom.count("data-configuration=") == 4 and '<section id="studies">' in dom


def test_kill_9_then_rerun_keeps_finished_trials_and_finishes_the_study(tmp_path, tiny_llama):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    args = ["-m", "hfkit", "study", str(recipe), "--grid", "training.learning_rate=1e-3,2e-3", "--name", "k",
            "--dir", str(tmp_path / "studies"), *FAST]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    study = tmp_path / "studies" / "k"
    process = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and len(trial_dirs(study) if study.is_dir() else []) < 2:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # while the second trial trains (the first is complete)
    process.wait()
    first, second = trial_dirs(study)
    assert record_of(first).status == "complete"
    assert not (second / "metrics.json").is_file() or record_of(second).status == "running"
    kept = (first / "metrics.json").stat().st_mtime_ns
    time.sleep(1)  # the trial's own process dies with the study's (no orphan keeps writing)
    assert not subprocess.run(["pgrep", "-f", f"hfkit.study_trial.*{second.name}"], capture_output=True).stdout
    result = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = trial_dirs(study)
    assert len(runs) == 2 and all(record_of(run).status == "complete" for run in runs)
    assert (first / "metrics.json").stat().st_mtime_ns == kept  # not trained again
    data = study_json(study)
    assert data["status"] == "complete" and data["counts"]["complete"] == 2
    assert data["counts"]["interrupted"] == 1  # the killed trial was queued again and finished
    assert trials_run(result.stdout) == ["trial 2: training.learning_rate=0.002 seed 42"]


def test_a_pruned_trial_says_so_in_its_record_on_a_journal_storage(tmp_path, tiny_llama):
    recipe = tiny_recipe(tmp_path, tiny_llama, extra="")
    pruning = tmp_path / "prune.yaml"
    pruning.write_text(f"""\
recipe: {recipe.name}
overrides: {{training.max_steps: 4, training.eval_strategy: steps, training.eval_steps: 1, eval.baseline: false,
            eval.bootstrap: 0}}
search:
  training.learning_rate: [1.0e-2, 1.0e-6]
objective: eval_loss
pruning: {{type: median, n_startup_trials: 1}}
""")
    journal = tmp_path / "shared" / "prune.log"  # a journal file, as on a filesystem several machines share
    result = study_cli(pruning, "--dir", tmp_path / "studies", "--storage", journal, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    study = tmp_path / "studies" / "prune"
    assert journal.stat().st_size > 0 and not (study / "study.db").exists()
    # hfkit's claim lock keeps clear of Optuna's own journal lock (a symlink named prune.log.lock): a file
    # of that name made every journal write wait out Optuna's 30 s stale-lock grace period
    assert (journal.parent / "prune.log.claims.lock").is_file() and not (journal.parent / "prune.log.lock").exists()
    fast, slow = (study_json(study)["configurations"][i]["trials"][0] for i in (0, 1))
    assert fast["state"] == "complete" and slow["state"] == "pruned" and "pruned at step 1" in slow["error"]
    record = record_of(study / slow["folder"])
    assert record.status == "pruned" and record.error.startswith("pruned at step 1")
    assert [e["step"] for e in record.log_history if "eval_loss" in e] == [1]


@pytest.mark.parametrize("args, message", [
    (["--grid", "training.no_such_key=1,2"], "--grid training.no_such_key: unknown key"),
    (["--grid", "peft.alph=4,8"], "--grid peft.alph: unknown key 'alph' in peft; did you mean 'alpha'?"),
    (["--grid", "peft.r=4,0"], "the combination peft.r=0 is not a valid recipe"),
    (["--grid", "peft.r=4", "--objective", "bleu"], "objective: 'bleu' is not a score this recipe reports"),
    (["--grid", "training.seed=1,2"], "the seeds are set with seeds: N"),
    (["--grid", "peft.r=4", "--dir", "/proc/hfkit_nope"], "--dir /proc/hfkit_nope: cannot create the study folder"),
    (["--grid", "peft.r=4", "--storage", "postgresql://u:secret@127.0.0.1:1/x"], "--storage postgresql://"),
    (["--grid", "peft.r=4", "--storage", "sqlite:////proc/hfkit_nope/x.db"], "cannot open it"),
])
def test_mistakes_are_one_line_before_any_trial_runs(tmp_path, tiny_llama, capsys, args, message):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["study", str(recipe), *args, "--dir" if "--dir" not in args else "--name",
                 str(tmp_path / "studies") if "--dir" not in args else "x"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "secret" not in err
    assert not list((tmp_path / "studies").rglob("recipe.yaml")) if (tmp_path / "studies").exists() else True


def test_a_study_file_checks_ranges_and_a_changed_study_is_refused(tmp_path, tiny_llama, capsys):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    study = tmp_path / "s.yaml"
    study.write_text(f"recipe: {recipe.name}\nsearch:\n  peft.r: {{low: 2, high: 8}}\nsampler: grid\n")
    assert main(["study", str(study), "--dir", str(tmp_path / "studies")]) == 2
    assert "s.yaml: search.peft.r: a range ({low, high}) needs sampler: random or tpe" in capsys.readouterr().err
    study.write_text(f"recipe: {recipe.name}\nsearch:\n  peft.r: [2]\nsampler: grid\nseedz: 2\n")
    assert main(["study", str(study)]) == 2
    assert "seedz: unknown key; did you mean 'seeds'?" in capsys.readouterr().err
    study.write_text(f"recipe: {recipe.name}\nsearch:\n  peft.r: {{low: 2, high: 8}}\nsampler: tpe\ntrials: 3\n")
    assert main(["validate", str(study)]) == 0
    assert "combinations checked, each a valid recipe" in capsys.readouterr().out
    from hfkit import study_spec, study_storage
    from hfkit.study import _make_folder, _open_study

    spec = study_spec.check(study_spec.from_study_file(study, dir=str(tmp_path / "studies")))
    _make_folder(spec)
    url = study_storage.default_url(spec.folder)
    _open_study(spec, study_storage.open_storage(url))
    spec.search = {"peft.r": study_spec.Range(low=2, high=16)}
    with pytest.raises(Exception, match="was started with other settings \\(search differ\\)"):
        _open_study(spec, study_storage.open_storage(url))


# The test against the best configuration, on synthetic data -----------------------------------------

def test_with_no_eval_sample_noise_the_test_is_welchs_t_test_as_scipy_computes_it():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 2, 5), rng.normal(12, 3, 4)
    # each run scores the same on every example resample: only the seeds vary
    result = study_stats.combined_test(list(a), np.tile(a, (1000, 1)), list(b), np.tile(b, (1000, 1)))
    theirs = stats.ttest_ind(b, a, equal_var=False)
    assert result["delta"] == pytest.approx(b.mean() - a.mean())
    assert result["p_value"] == pytest.approx(theirs.pvalue, rel=1e-9)
    interval = theirs.confidence_interval(0.95)
    assert (result["low"], result["high"]) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert study_stats.welch(list(a), list(b))["p_value"] == pytest.approx(theirs.pvalue, rel=1e-9)
    assert study_stats.welch([1.0], list(b)) is None


def test_with_seeds_that_agree_the_test_is_the_paired_example_bootstrap():
    rng = np.random.default_rng(1)
    examples = 400
    base = rng.integers(0, 2, examples).astype(float)
    better = np.where(rng.random(examples) < 0.15, 1.0, base)
    runs_a = [([str(v) for v in base], ["1.0"] * examples)] * 3  # three seeds, identical predictions
    runs_b = [([str(v) for v in better], ["1.0"] * examples)] * 3
    result = study_stats.seed_and_example_test("exact_match", "exact_match", runs_a, runs_b, n=4000)
    differences = better - base
    assert result["delta"] == pytest.approx(differences.mean())
    standard_error = (result["high"] - result["low"]) / (2 * 1.959964)  # no seed variance: a z interval
    assert standard_error == pytest.approx(differences.std() / np.sqrt(examples), rel=0.08)
    assert result["p_value"] < 0.05 and result["test"] == study_stats.BOTH


def false_positive_rate(seeds: int, seed_sd: float, studies: int = 300, examples: int = 150) -> float:
    """Share of synthetic studies whose two identical configurations test significant at p < 0.05."""
    rng = np.random.default_rng(seeds)
    rejected = 0
    for _ in range(studies):
        difficulty = rng.normal(0, 1, examples)  # the same eval set for both configurations

        def runs():
            return np.array([difficulty + rng.normal(0, seed_sd) + rng.normal(0, 0.5, examples) for _ in range(seeds)])

        a, b = runs(), runs()
        counts = rng.multinomial(examples, np.full(examples, 1 / examples), size=400) / examples
        result = study_stats.combined_test(list(a.mean(1)), counts @ a.T, list(b.mean(1)), counts @ b.T)
        rejected += result["p_value"] < 0.05
    return rejected / studies


@pytest.mark.parametrize("seeds, seed_sd", [(3, 0.3), (5, 0.3), (3, 0.0)])
def test_the_test_holds_its_level_when_two_configurations_do_not_differ(seeds, seed_sd):
    assert false_positive_rate(seeds, seed_sd) <= 0.08  # ~5% (or fewer) called significant


def test_both_noise_sources_widen_the_interval():
    rng = np.random.default_rng(3)
    difficulty = rng.normal(0, 1, 200)
    shift = rng.normal(0.5, 1, 200)  # b helps some examples more than others: eval-sample noise of the difference
    a = np.array([difficulty + rng.normal(0, 0.05) for _ in range(3)])
    b = np.array([difficulty + shift + rng.normal(0, 0.05) for _ in range(3)])
    counts = rng.multinomial(200, np.full(200, 1 / 200), size=1000) / 200
    both = study_stats.combined_test(list(a.mean(1)), counts @ a.T, list(b.mean(1)), counts @ b.T)
    seeds_only = study_stats.welch(list(a.mean(1)), list(b.mean(1)))
    from scipy import stats

    def standard_error(result):
        return (result["high"] - result["low"]) / (2 * stats.t.ppf(0.975, result["df"]))

    assert standard_error(both) > standard_error(seeds_only) * 1.5
    assert both["delta"] == pytest.approx(seeds_only["delta"]) and both["df"] > seeds_only["df"]


def test_a_sd_below_two_seeds_is_none_and_summary_keeps_the_values():
    assert study_stats.summary([3.0]) == {"mean": 3.0, "sd": None, "n": 1, "values": [3.0]}
    assert study_stats.summary([1.0, 3.0])["sd"] == pytest.approx(np.sqrt(2))


# The steering bar: the issue's own command on the generation demo, with the tiny model in place of
# SmolLM2 (four SmolLM2 trials took 86 s of the suite; the real model trains in test_fidelity and
# test_real_checkpoint) -------------------------------------------------------------------------------

def test_the_steering_bar(tmp_path, tiny_llama):
    repo = Path(__file__).resolve().parent.parent
    command = [repo / "recipes/generation/demo.yaml", "--grid", "training.learning_rate=1e-3,1e-4", "--seeds", "2",
               "--name", "barstudy", "--dir", tmp_path, "training.max_steps=2", "data.max_eval_samples=8",
               "eval.baseline=false", "eval.bootstrap=0", f"model.name_or_path={tiny_llama}"]  # after `hfkit study`
    result = study_cli(*command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    study = tmp_path / "barstudy"
    runs = trial_dirs(study)
    assert len(runs) == 4 and all((run / "metrics.json").is_file() for run in runs)
    data = study_json(study)
    assert len(data["configurations"]) == 2 and "best" in data and data["best"]
    for configuration in data["configurations"]:
        assert configuration["objective"]["n"] == 2
        assert {"mean", "sd"} <= set(configuration["objective"])
        for trial in configuration["trials"]:
            assert trial["value"] == record_of(study / trial["folder"]).final.metrics["exact_match"]
    assert [p.name for p in study.iterdir() if p.suffix in (".db", ".sqlite", ".log")] == ["study.db"]
    again = study_cli(*command, cwd=tmp_path)
    assert again.returncode == 0 and len(trial_dirs(study)) == 4 and not trials_run(again.stdout)
    with sqlite3.connect(study / "study.db") as db:
        assert db.execute("select count(*) from trials").fetchone()[0] == 4
    assert run_hfkit("compare", str(study), cwd=tmp_path).returncode == 0
    bad = study_cli(*command[:2], "training.no_such_key=1,2", *command[3:], cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "training.no_such_key" in bad.stderr
    unwritable = study_cli(*command[:8], "/proc/hfkit_nope", *command[9:], cwd=tmp_path)
    assert unwritable.returncode != 0 and "/proc/hfkit_nope" in unwritable.stderr and "Traceback" not in unwritable.stderr


def test_trials_run_under_an_accelerate_config_and_report_from_the_main_process(tmp_path, tiny_llama):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    study_file = tmp_path / "two.yaml"
    study_file.write_text(f"""\
recipe: {recipe.name}
overrides: {{training.max_steps: 2, training.eval_strategy: steps, training.eval_steps: 1, eval.baseline: false,
            eval.bootstrap: 0, training.ddp_find_unused_parameters: false}}
search:
  peft.r: {{low: 2, high: 6, step: 2}}
sampler: tpe
trials: 1
objective: eval_loss
pruning: median
""")
    config = Path(__file__).resolve().parent.parent / "accelerate_configs" / "multi_cpu.yaml"
    result = study_cli(study_file, "--dir", tmp_path / "studies", "--launch-config", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    study = tmp_path / "studies" / "two"
    (configuration,) = study_json(study)["configurations"]  # drawn by TPE from the range (one seed: the queue of
    rank = configuration["params"]["peft.r"]                 # further seeds is test_the_queue_runs_each_...'s)
    assert rank in (2, 4, 6) and [t["seed"] for t in configuration["trials"]] == [42]
    runs = trial_dirs(study)
    assert [run.name for run in runs] == [f"r-{rank}_seed-42"]
    for run in runs:
        assert record_of(run).status == "complete" and json.loads((run / "env.json").read_text())["world_size"] == 2
        assert "accelerate.commands.launch --config_file" in (study / "logs" / f"{run.name}.log").read_text()
    with sqlite3.connect(study / "study.db") as db:  # each evaluation reported once, by the main process
        assert db.execute("select step from trial_intermediate_values order by trial_id, step").fetchall() == [
            (1,), (2,)]


def test_a_failed_trial_keeps_its_one_line_error_and_is_not_run_again(tmp_path, tiny_llama):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    (tmp_path / "empty-model").mkdir()
    args = [recipe, "--grid", f"model.name_or_path={tmp_path / 'empty-model'}", "--name", "f", "--dir",
            tmp_path / "studies", *FAST]
    result = study_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]  # a failed trial is a result; the study goes on
    (configuration,) = study_json(tmp_path / "studies" / "f")["configurations"]
    (trial,) = configuration["trials"]
    assert trial["state"] == "failed" and trial["error"].startswith("model.name_or_path: ")
    assert "has no config.json" in trial["error"] and "failed: model.name_or_path" in result.stdout
    again = study_cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and not trials_run(again.stdout)


def test_the_queue_runs_each_configuration_and_seed_once_and_grows_with_the_seeds(tmp_path, tiny_llama):
    from hfkit import study_spec, study_storage
    from hfkit.study import _make_folder, _open_study
    from hfkit.study_queue import claim, top_up
    from hfkit.study_record import CONFIG, SEED, SKIPPED

    recipe = tiny_recipe(tmp_path, tiny_llama)
    spec = study_spec.check(study_spec.from_grid(recipe, ["peft.r=2,4"], dir=str(tmp_path / "studies")))
    _make_folder(spec)
    url = study_storage.default_url(spec.folder)
    study = _open_study(spec, study_storage.open_storage(url))
    first, params = claim(study, spec, url)
    assert params == {"peft.r": 2} and first.user_attrs[SEED] == 42
    study.tell(first, 1.0)
    study.enqueue_trial({"peft.r": 4}, user_attrs={CONFIG: '{"peft.r": 4}', SEED: 42})  # queued twice
    second, params = claim(study, spec, url)
    assert params == {"peft.r": 4}
    study.tell(second, 2.0)
    assert claim(study, spec, url) is None  # the copy is skipped: nothing left
    skipped = [t for t in study.get_trials() if SKIPPED in t.user_attrs]
    assert len(skipped) == 1 and skipped[0].number > second.number
    spec.seeds = [42, 43]  # the same study with one more seed: only the new (configuration, seed) pairs run
    _open_study(spec, study_storage.open_storage(url))
    top_up(study, spec)
    added = [claim(study, spec, url) for _ in range(2)]
    assert sorted((p["peft.r"], t.user_attrs[SEED]) for t, p in added) == [(2, 43), (4, 43)]

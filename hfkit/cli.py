"""The `hfkit` command: train, launch, eval, validate, data, merge, push, compare, study, recipes, explain, schema.

User mistakes (HfkitError) print one line and exit with code 2; anything else is a bug and keeps
its traceback. `HFKIT_DEBUG=1` keeps the traceback of user mistakes too.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from hfkit import __version__
from hfkit.console import configure_output
from hfkit.errors import HfkitError, Interrupted, stop_signal
from hfkit.signals import terminate_as_interrupt
from hfkit.redaction import redact_text

OVERRIDES_HELP = "key=value overrides with dotted keys, e.g. training.max_steps=20 peft.r=16"
EXAMPLES = {
    "train": "hfkit train recipes/generation/demo.yaml\n  hfkit train recipes/translation/demo.yaml training.max_steps=80 peft.r=8\n"
             "  hfkit train --resume runs/generation-demo-20261128-233533",
    "launch": "hfkit launch --config accelerate_configs/multi_cpu.yaml recipes/generation/demo.yaml",
    "eval": "hfkit eval runs/generation-demo            # re-score a finished run\n"
            "  hfkit eval recipes/generation/demo.yaml     # zero-shot score of the recipe's model\n"
            "  hfkit eval runs/generation-demo --decode greedy --decode beam=4 --decode top_k=50,temperature=0.7",
    "validate": "hfkit validate recipes/qa/demo.yaml\n  hfkit validate recipes/qa/distilbert_squad.yaml --skip-hub",
    "data": "hfkit data recipes/generation/demo.yaml\n"
            "  hfkit data recipes/translation/demo.yaml data.clean.language=[en,fr] --output report/",
    "merge": "hfkit merge runs/generation-demo --output merged/ --dtype bfloat16",
    "push": "hfkit push runs/generation-demo --repo-id you/smollm2-dates --dry-run upload/",
    "compare": "hfkit compare runs/ --output report/\n  hfkit compare runs/generation-demo runs/translation-demo --format markdown",
    "recipes": "hfkit recipes",
    "study": "hfkit study recipes/studies/translation_lr_rank.yaml\n"
             "  hfkit study recipes/generation/demo.yaml --grid training.learning_rate=1e-4,1e-3 --grid peft.r=8,16 "
             "--seeds 3 training.max_steps=30",
    "explain": "hfkit explain data.packing\n  hfkit explain qa              # a section: its keys\n"
               "  hfkit explain training.learning_rate",
    "schema": "hfkit schema > recipe.schema.json   # then, first line of a recipe:\n"
              "  # yaml-language-server: $schema=./recipe.schema.json\n  hfkit schema --markdown",
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may come after options (`train r.yaml --overwrite a=1`): argparse leaves those over.
    unknown = [item for item in extra if item.startswith("-") or not hasattr(args, "overrides")]
    if unknown:
        hint = ""
        if any(item.startswith("--") for item in unknown) and hasattr(args, "overrides"):
            flag = next(item for item in unknown if item.startswith("--"))
            hint = (f" (a TrainingArguments flag is written as an override: "
                    f"training.{flag[2:].replace('-', '_')}=VALUE)")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    args.command = ["hfkit", *(sys.argv[1:] if argv is None else argv)]
    configure_output("quiet" if args.quiet else "verbose" if args.verbose else "normal")
    terminate_as_interrupt()  # SIGTERM unwinds like Ctrl-C: the run records where it stopped
    try:
        return args.run(args) or 0
    except HfkitError as err:
        if os.environ.get("HFKIT_DEBUG"):
            raise
        print(f"hfkit: error: {redact_text(str(err))}", file=sys.stderr)
        return 2
    except Interrupted as stopped:
        print(f"hfkit: {redact_text(str(stopped))}", file=sys.stderr)
        return stopped.exit_code
    except KeyboardInterrupt as stop:  # before a job had anything to record (reading, checking, converting)
        if os.environ.get("HFKIT_DEBUG"):
            raise
        how, code = stop_signal(stop)
        print(f"hfkit: stopped by {how}", file=sys.stderr)
        return code
    except BrokenPipeError:  # `hfkit recipes | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT) or os.environ.get("HFKIT_DEBUG"):
            raise
        where = f" while writing {err.filename}" if err.filename else ""
        print(f"hfkit: error: {err.strerror}{where}; free some space (files are written whole: none is left "
              "half-written), then run the command again", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfkit", description="Fine-tune and evaluate Hugging Face models from recipes.")
    parser.add_argument("--version", action="version", version=f"hfkit {__version__}")
    _noise_flags(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _noise_flags(common, argparse.SUPPRESS)  # after the verb too; SUPPRESS keeps a -q given before it
    verbs = parser.add_subparsers(required=True, metavar="COMMAND")

    def verb(name: str, help_text: str, run):
        sub = verbs.add_parser(name, help=help_text, description=help_text, parents=[common],
                               epilog=f"example:\n  {EXAMPLES[name]}", formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(run=run)
        return sub

    train = verb("train", "fine-tune a recipe and write a run folder", _train)
    train.add_argument("recipe", nargs="?", help="recipe YAML file (not with --resume)")
    train.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing run folder of the same name (once the new run has finished)")
    train.add_argument("--resume", metavar="RUN", help="continue the run folder RUN from its last complete checkpoint")

    launch = verb("launch", "run `hfkit train` under `accelerate launch --config_file CONFIG`", _launch)
    launch.add_argument("recipe", nargs="?", help="recipe YAML file (not with --resume)")
    launch.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    launch.add_argument("--config", required=True, help="accelerate config, e.g. accelerate_configs/multi_gpu.yaml")
    launch.add_argument("--port", type=int, help="main process port (overrides the config's main_process_port)")
    launch.add_argument("--num-processes", type=int, help="processes in total (overrides the config's num_processes)")
    launch.add_argument("--overwrite", action="store_true", help="passed on to hfkit train")
    launch.add_argument("--resume", metavar="RUN", help="passed on to hfkit train")

    evaluate = verb("eval", "score a run folder, or a recipe's model without training", _eval)
    evaluate.add_argument("target", help="run folder (runs/...) or recipe YAML file")
    evaluate.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    evaluate.add_argument("--decode", action="append", metavar="STRATEGY",
                          help="score this decoding strategy (repeat for a sweep into one folder): greedy, beam=N, "
                               "top_k=K, top_p=P, temperature=T, comma-separated (sampling is seeded)")

    validate = verb("validate", "check a recipe, its data, model and training arguments", _validate)
    validate.add_argument("recipe", help="recipe YAML file")
    validate.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    validate.add_argument("--skip-hub", action="store_true",
                          help="do not contact the Hub: Hub models and datasets are not checked")
    validate.add_argument("--overwrite", action="store_true", help="the run will be started with --overwrite")

    data = verb("data", "prepare a recipe's data as training would, and report what the model will learn from", _data)
    data.add_argument("recipe", help="recipe YAML file")
    data.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    data.add_argument("--output", metavar="DIR",
                      help="where to write data.json, the charts and report.html (default: data-reports/<run name>/)")

    merge = verb("merge", "fold a run's LoRA adapter into its base model", _merge)
    merge.add_argument("run_dir", help="run folder with an adapter/")
    merge.add_argument("--output", help="where to write the merged model (default: RUN/merged)")
    merge.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                       help="dtype of the merged weights (default: the base checkpoint's own)")
    merge.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")

    push = verb("push", "upload a run's adapter or model with a model card to the Hub", _push)
    push.add_argument("run_dir", help="run folder")
    push.add_argument("--repo-id", required=True, help="e.g. your-name/my-model")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--merge", action="store_true", help="upload the adapter merged into its base model")
    push.add_argument("--revision", help="branch to push to (created when missing)")
    push.add_argument("--dry-run", metavar="DIR", help="write the folder that would be uploaded into DIR instead")

    compare = verb("compare", "compare runs across tasks: table, markdown, csv, json, html", _compare)
    compare.add_argument("runs", nargs="+", help="run folders, globs (runs/*) or folders of runs (runs/)")
    compare.add_argument("--format", choices=["table", "markdown", "csv", "json", "html"], default="table")
    compare.add_argument("--output", metavar="DIR", help="also write compare.csv/.md/.json, PNG charts, report.html")
    compare.add_argument("--wide", action="store_true", help="terminal table: every column (default: fit the terminal)")
    compare.add_argument("--resamples", type=int, default=1000, metavar="N",
                         help="bootstrap resamples of the paired significance tests (0: no tests)")

    study = verb("study", "train a recipe over a grid or search space and several seeds (Optuna); a table that "
                          "says how sure it is, and study.json", _study)
    study.add_argument("target", help="a recipe YAML file (with --grid) or a study file (recipes/studies/)")
    study.add_argument("overrides", nargs="*", help=OVERRIDES_HELP + "; applied to every trial")
    study.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                       help="a recipe key and the values to try (repeat for more keys; every combination runs)")
    study.add_argument("--seeds", type=int, metavar="N",
                       help="training.seed values per configuration, from the recipe's seed on (default 1)")
    study.add_argument("--name", help="the study's folder inside --dir (default: the study file's name, or RECIPE-study)")
    study.add_argument("--dir", help="where studies live (default: studies/)")
    study.add_argument("--objective", metavar="METRIC",
                       help="the score to compare (default: training.metric_for_best_model, else the recipe's first metric)")
    study.add_argument("--storage", metavar="URL",
                       help="an Optuna storage shared by several processes or machines: an RDB URL (postgresql://, "
                            "mysql://, sqlite:///) or a journal file path (default: DIR/NAME/study.db)")
    study.add_argument("--launch-config", metavar="CONFIG",
                       help="run each trial under accelerate launch --config_file CONFIG")

    listing = verb("recipes", "list the shipped recipes (or those in a folder)", _recipes)
    listing.add_argument("folder", nargs="?", help="a folder of recipes (default: the ones shipped with hfkit)")

    explain = verb("explain", "what a recipe key does: its type, default, allowed values and description", _explain)
    explain.add_argument("key", help="a dotted recipe key, e.g. data.packing, or a section, e.g. eval")

    schema = verb("schema", "print the recipe's JSON Schema (for an editor's YAML extension)", _schema)
    schema.add_argument("--markdown", action="store_true", help="the key reference as markdown instead")
    return parser


def _noise_flags(parser: argparse.ArgumentParser, default) -> None:
    """-q/-v, accepted before the verb (`hfkit -q train`) and after it (`hfkit train -q`)."""
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print only errors and the final results",
                       **({"default": default} if default is not None else {}))
    noise.add_argument("-v", "--verbose", action="store_true",
                       help="also show transformers' and datasets' logs, warnings and progress bars",
                       **({"default": default} if default is not None else {}))


def _train(args) -> int:
    from hfkit import runs
    from hfkit.recipe import load_recipe

    recipe_path, overrides = _recipe_or_resume(args)
    if args.resume:
        if not runs.is_run_dir(Path(args.resume)):
            raise HfkitError(f"--resume {args.resume}: not a run folder (it has no {runs.RECIPE})")
        from hfkit.console import say
        from hfkit.evaluation import evaluate, scoring_left

        if scoring_left(Path(args.resume)):  # training finished: only its scoring is left
            say(f"{args.resume}: training finished and its weights are saved; scoring them (as hfkit eval does)")
            evaluate(args.resume, overrides, command=args.command)
            return 0
        recipe_path = Path(args.resume) / runs.RECIPE
    recipe = load_recipe(recipe_path, overrides, require_files=True)  # path mistakes answered before torch loads
    from hfkit import distributed
    from hfkit.training import train

    run_dir, _ = train(recipe, overwrite=args.overwrite, command=args.command,
                       resume=Path(args.resume) if args.resume else None)
    if recipe.hub.push and distributed.is_main():
        return _push_after_training(run_dir, recipe.hub)
    return 0


def _push_after_training(run_dir: Path, hub_cfg) -> int:
    """hub.push: true: push the finished run; a failure keeps the run and says how to retry."""
    from hfkit import hub

    try:
        print(f"Pushed to {hub.push(run_dir, hub_cfg.repo_id, hub_cfg.private, hub_cfg.merge, hub_cfg.revision)}")
        return 0
    except HfkitError as err:
        print(f"hfkit: error: {err}\nThe run folder is complete. Retry with:\n  "
              f"{hub.retry_command(run_dir, hub_cfg.repo_id, hub_cfg.private, hub_cfg.merge, hub_cfg.revision)}",
              file=sys.stderr)
        return 1


def _recipe_or_resume(args) -> tuple[str | None, list[str]]:
    """`train RECIPE [overrides]` or `train --resume RUN [overrides]` (the first override lands in recipe)."""
    if args.resume:
        if args.recipe and "=" not in args.recipe:
            raise HfkitError("give either a recipe or --resume RUN, not both (the run folder holds its recipe)")
        return None, ([args.recipe] if args.recipe else []) + args.overrides
    if not args.recipe:
        raise HfkitError("give a recipe file, e.g. hfkit train recipes/generation/demo.yaml, or --resume RUN")
    return args.recipe, args.overrides


def _launch(args) -> int:
    import shlex
    import subprocess

    from hfkit.distributed import check_launch_config
    from hfkit.signals import wait_passing_on

    check_launch_config(Path(args.config))
    recipe, overrides = _recipe_or_resume(args)
    port = ["--main_process_port", str(args.port)] if args.port else []
    port += ["--num_processes", str(args.num_processes)] if args.num_processes else []
    train = ["-m", "hfkit", "train", *([recipe] if recipe else []), *overrides,
             *(["--overwrite"] if args.overwrite else []), *(["--resume", args.resume] if args.resume else []),
             *(["--quiet"] if args.quiet else ["--verbose"] if args.verbose else [])]
    print("accelerate launch --config_file " + shlex.join([args.config, *port, *train]), flush=True)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", args.config, *port]
    return wait_passing_on(subprocess.Popen([*launcher, *train]))


def _eval(args) -> None:
    from hfkit.recipe import check_eval_target

    check_eval_target(Path(args.target), args.overrides)  # before torch loads
    from hfkit.evaluation import evaluate
    from hfkit.sweep import run_sweep, sweep_specs

    specs = sweep_specs(args.target, args.overrides, args.decode)  # --decode, else the recipe's generation.sweep
    if specs:
        run_sweep(args.target, specs, args.overrides, overwrite=args.overwrite, command=args.command)
    else:
        evaluate(args.target, args.overrides, overwrite=args.overwrite, command=args.command)


def _validate(args) -> None:
    from hfkit.console import say
    from hfkit.recipe import check_paths
    from hfkit.study_spec import is_study_file

    if is_study_file(Path(args.recipe)):
        from hfkit.study import validate
    else:
        check_paths(args.recipe, args.overrides)  # before torch loads
        say(f"Checking {args.recipe}: schema, model, data, training arguments, output folder")
        from hfkit.validate import validate
    for line in validate(args.recipe, args.overrides, skip_hub=args.skip_hub, overwrite=args.overwrite):
        print(line if line.startswith("warning: ") else f"ok  {line}")
    print(f"{args.recipe}: valid")


def _data(args) -> None:
    from hfkit import data_html, data_report
    from hfkit.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    output = Path(args.output) if args.output else Path("data-reports") / recipe.run_name
    data_html.check_output(output)
    report = data_report.inspect(recipe)
    data_report.show(report, data_html.write(report, output))


def _merge(args) -> None:
    from hfkit.merge import merge_run

    run_dir = Path(args.run_dir)
    output = Path(args.output) if args.output else run_dir / "merged"
    dtype = merge_run(run_dir, output, args.dtype, overwrite=args.overwrite)
    print(f"Merged model written to {output} ({dtype} weights"
          + ("" if args.dtype else ", the base checkpoint's dtype; --dtype changes it") + ")")


def _push(args) -> None:
    from hfkit import hub

    hub.check_repo_id_option(args.repo_id)
    run_dir = Path(args.run_dir)
    if args.dry_run:
        files = hub.dry_run(run_dir, Path(args.dry_run), args.repo_id, args.merge)
        print(f"Would upload {len(files)} files to {args.repo_id} (written to {args.dry_run}):")
        for name in files:
            print(f"  {name}")
        return
    print(f"Pushed to {hub.push(run_dir, args.repo_id, args.private, args.merge, args.revision)}")


def _compare(args) -> None:
    from hfkit import compare, report_html, tables

    if args.resamples < 0:
        raise HfkitError(f"--resamples must be 0 (no paired tests) or more, not {args.resamples}")
    if args.output:
        report_html.check_output(Path(args.output))
    comparison = compare.collect(args.runs, resamples=args.resamples)
    if args.format == "table":
        from rich.console import Console

        console = Console()
        for part in tables.rich_tables(comparison, width=console.width, wide=args.wide):
            # --wide: as wide as the table needs (a squeezed table would cut every number short)
            natural = Console(width=100_000).measure(part).maximum if args.wide else 0
            Console(width=max(console.width, natural)).print(part)
    else:
        render = {"markdown": tables.to_markdown, "csv": tables.to_csv, "json": tables.to_json,
                  "html": report_html.standalone}[args.format]
        print(render(comparison), end="" if args.format != "json" else "\n")
    if args.output:
        # stdout holds the table (or JSON, CSV...) alone: the files written are listed on stderr
        sys.stdout.flush()
        for path in report_html.write_report(comparison, Path(args.output)):
            print(f"wrote {path}", file=sys.stderr)


def _study(args) -> None:
    from hfkit import study_spec
    from hfkit.study import run

    options = {"name": args.name, "dir": args.dir, "seeds": args.seeds, "objective": args.objective,
               "overrides": args.overrides, "storage": args.storage, "launch_config": args.launch_config}
    if study_spec.is_study_file(Path(args.target)):
        if args.grid:
            raise HfkitError("--grid goes with a recipe; a study file lists what it searches under search:")
        spec = study_spec.from_study_file(Path(args.target), **options)
    else:
        spec = study_spec.from_grid(Path(args.target), args.grid or [], **options)
    run(spec)


def _explain(args) -> None:
    from hfkit.explain import explain

    print(explain(args.key))


def _schema(args) -> None:
    from hfkit.explain import markdown, schema_text

    print(markdown() if args.markdown else schema_text(), end="")


def _recipes(args) -> None:
    from hfkit.catalog import recipe_lines

    for line in recipe_lines(Path(args.folder) if args.folder else None):
        print(line)

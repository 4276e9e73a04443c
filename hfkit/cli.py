"""The `hfkit` command: train, launch, eval, validate, merge, push, compare, recipes.

User mistakes (HfkitError) print one line and exit with code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hfkit.errors import HfkitError, Interrupted
from hfkit.runs import redact_tokens

USAGE_OVERRIDES = "key=value overrides with dotted keys, e.g. training.max_steps=20 peft.r=16"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may come after options (`train r.yaml --overwrite a=1`): argparse leaves those over.
    unknown = [item for item in extra if item.startswith("-") or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    args.command = ["hfkit", *(sys.argv[1:] if argv is None else argv)]
    try:
        return args.run(args) or 0
    except HfkitError as err:
        print(f"hfkit: error: {redact_tokens(str(err))}", file=sys.stderr)
        return 2
    except Interrupted as stopped:
        print(f"hfkit: {stopped}", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfkit", description="Fine-tune and evaluate Hugging Face models from recipes.")
    verbs = parser.add_subparsers(required=True, metavar="COMMAND")

    train = verbs.add_parser("train", help="fine-tune a recipe and write a run folder")
    train.add_argument("recipe", nargs="?", help="recipe YAML file (not with --resume)")
    train.add_argument("overrides", nargs="*", help=USAGE_OVERRIDES)
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    train.add_argument("--resume", metavar="RUN", help="continue the run folder RUN from its last complete checkpoint")
    train.set_defaults(run=_train)

    launch = verbs.add_parser("launch", help="run `hfkit train` under `accelerate launch --config_file CONFIG`")
    launch.add_argument("recipe", nargs="?", help="recipe YAML file (not with --resume)")
    launch.add_argument("overrides", nargs="*", help=USAGE_OVERRIDES)
    launch.add_argument("--config", required=True, help="accelerate config, e.g. accelerate_configs/multi_gpu.yaml")
    launch.add_argument("--port", type=int, help="main process port (overrides the config's main_process_port)")
    launch.add_argument("--num-processes", type=int, help="processes in total (overrides the config's num_processes)")
    launch.add_argument("--overwrite", action="store_true", help="passed on to hfkit train")
    launch.add_argument("--resume", metavar="RUN", help="passed on to hfkit train")
    launch.set_defaults(run=_launch)

    evaluate = verbs.add_parser("eval", help="score a run folder, or a recipe's model without training")
    evaluate.add_argument("target", help="run folder (runs/...) or recipe YAML file")
    evaluate.add_argument("overrides", nargs="*", help=USAGE_OVERRIDES)
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    evaluate.set_defaults(run=_eval)

    validate = verbs.add_parser("validate", help="check a recipe, its data, model and training arguments")
    validate.add_argument("recipe", help="recipe YAML file")
    validate.add_argument("overrides", nargs="*", help=USAGE_OVERRIDES)
    validate.add_argument("--skip-hub", action="store_true",
                          help="do not contact the Hub: Hub models and datasets are not checked")
    validate.add_argument("--overwrite", action="store_true", help="the run will be started with --overwrite")
    validate.set_defaults(run=_validate)

    merge = verbs.add_parser("merge", help="fold a run's LoRA adapter into its base model")
    merge.add_argument("run_dir", help="run folder with an adapter/")
    merge.add_argument("--output", help="where to write the merged model (default: RUN/merged)")
    merge.set_defaults(run=_merge)

    push = verbs.add_parser("push", help="upload a run's adapter or model with a model card to the Hub")
    push.add_argument("run_dir", help="run folder")
    push.add_argument("--repo-id", required=True, help="e.g. your-name/my-model")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--merge", action="store_true", help="upload the adapter merged into its base model")
    push.add_argument("--revision", help="branch to push to (created when missing)")
    push.add_argument("--dry-run", metavar="DIR", help="write the folder that would be uploaded into DIR instead")
    push.set_defaults(run=_push)

    compare = verbs.add_parser("compare", help="compare runs across tasks: table, markdown, csv, json, html")
    compare.add_argument("runs", nargs="+", help="run folders, globs (runs/*) or folders of runs (runs/)")
    compare.add_argument("--format", choices=["table", "markdown", "csv", "json", "html"], default="table")
    compare.add_argument("--output", metavar="DIR", help="also write compare.csv/.md/.json, PNG charts, report.html")
    compare.set_defaults(run=_compare)

    listing = verbs.add_parser("recipes", help="list recipes")
    listing.add_argument("folder", nargs="?", default="recipes")
    listing.set_defaults(run=_recipes)
    return parser


def _train(args) -> int:
    from hfkit import distributed, runs
    from hfkit.recipe import load_recipe
    from hfkit.train import train

    recipe_path, overrides = _recipe_or_resume(args)
    if args.resume:
        if not runs.is_run_dir(Path(args.resume)):
            raise HfkitError(f"--resume {args.resume}: not a run folder (it has no {runs.RECIPE})")
        recipe_path = Path(args.resume) / runs.RECIPE
    recipe = load_recipe(recipe_path, overrides)
    run_dir = train(recipe, overwrite=args.overwrite, command=args.command,
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

    if not Path(args.config).is_file():
        raise HfkitError(f"--config: no such accelerate config: {args.config} (see accelerate_configs/)")
    recipe, overrides = _recipe_or_resume(args)
    port = ["--main_process_port", str(args.port)] if args.port else []
    port += ["--num_processes", str(args.num_processes)] if args.num_processes else []
    train = ["-m", "hfkit", "train", *([recipe] if recipe else []), *overrides,
             *(["--overwrite"] if args.overwrite else []), *(["--resume", args.resume] if args.resume else [])]
    print("accelerate launch --config_file " + shlex.join([args.config, *port, *train]), flush=True)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", args.config, *port]
    return subprocess.call([*launcher, *train])


def _eval(args) -> None:
    from hfkit.train import evaluate

    evaluate(args.target, args.overrides, overwrite=args.overwrite, command=args.command)


def _validate(args) -> None:
    from hfkit.validate import validate

    for line in validate(args.recipe, args.overrides, skip_hub=args.skip_hub, overwrite=args.overwrite):
        print(f"ok  {line}")
    print(f"{args.recipe}: valid")


def _merge(args) -> None:
    from hfkit import lora, runs, tasks
    from hfkit.recipe import load_recipe

    run_dir = Path(args.run_dir)
    if not runs.is_run_dir(run_dir):
        raise HfkitError(f"{run_dir} is not a run folder (it has no {runs.RECIPE})")
    adapter = run_dir / runs.ADAPTER
    if not adapter.is_dir():
        raise HfkitError(f"{run_dir} has no {runs.ADAPTER}/: it was trained with peft.method: none, "
                         f"so {run_dir / runs.MODEL} is already a full model")
    recipe = load_recipe(run_dir / runs.RECIPE)
    output = Path(args.output) if args.output else run_dir / "merged"
    task = tasks.for_recipe(recipe)
    lora.merge_adapter(recipe.model, adapter, output, task.auto_model,
                         dtype=lora.frozen_base_dtype(recipe.model, recipe.peft, task.peft_task_type))
    print(f"Merged model written to {output}")


def _push(args) -> None:
    from hfkit import hub

    run_dir = Path(args.run_dir)
    if args.dry_run:
        target = Path(args.dry_run)
        if target.exists() and any(target.iterdir()):
            raise HfkitError(f"--dry-run {target}: the folder is not empty; give a new or empty folder")
        files = hub.assemble(run_dir, target, args.repo_id, args.merge)
        print(f"Would upload {len(files)} files to {args.repo_id} (written to {target}):")
        for name in files:
            print(f"  {name}")
        return
    print(f"Pushed to {hub.push(run_dir, args.repo_id, args.private, args.merge, args.revision)}")


def _compare(args) -> None:
    from hfkit import compare

    summaries = [compare.summarize(path) for path in compare.find_runs(args.runs)]
    if args.format == "table":
        from rich.console import Console

        console = Console()
        for table in compare.rich_tables(summaries):
            # As wide as the table needs: a squeezed table would cut every number short.
            natural = Console(width=100_000).measure(table).maximum
            Console(width=max(console.width, natural)).print(table)
    else:
        render = {"markdown": compare.to_markdown, "csv": compare.to_csv, "json": compare.to_json,
                  "html": compare.to_html}[args.format]
        print(render(summaries), end="")
    if args.output:
        for path in compare.write_report(summaries, Path(args.output)):
            print(f"wrote {path}")


def _recipes(args) -> None:
    import yaml

    folder = Path(args.folder)
    files = sorted(folder.rglob("*.yaml"))
    if not files:
        raise HfkitError(f"no recipes (*.yaml) under {folder}")
    for path in files:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            model = (raw.get("model") or {}).get("name_or_path", "?")
            print(f"{str(path):50} {raw.get('task', '?'):14} {model}")
        except (yaml.YAMLError, AttributeError, UnicodeDecodeError):
            print(f"{str(path):50} (not a valid recipe: run hfkit validate {path})")

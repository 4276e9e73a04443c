"""Publishing a run: assemble exactly the folder to upload, then upload it with huggingface_hub.

The folder holds the adapter (or the full, or merged, model) with its tokenizer, recipe.yaml (local
paths reduced to file names), metrics.json and a README.md model card. Only regular files from inside the run folder go in
(no symlinks out of it, no pickles). The token comes from HF_TOKEN or the huggingface_hub login
and is never printed or written.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hfkit import runs
from hfkit.cards import public_recipe_yaml, render_card
from hfkit.errors import HfkitError, first_line
from hfkit.merge import merge_into
from hfkit.recipe import load_recipe
from hfkit.record import read_record
from hfkit.redaction import redact_text

PICKLES = (".bin", ".pt", ".pth", ".pkl")  # e.g. Trainer's training_args.bin: never uploaded


def assemble(run_dir: Path, out_dir: Path, repo_id: str | None, merge: bool) -> list[str]:
    """Write the upload folder into `out_dir`; return its files (relative paths, sorted)."""
    if not runs.is_run_dir(run_dir):
        raise HfkitError(f"{run_dir} is not a run folder (it has no {runs.RECIPE})")
    record = read_record(run_dir)
    if record.status != "complete":
        raise HfkitError(f"{run_dir}: the run is {record.status}, not complete"
                         + (f" ({record.error})" if record.error else "") + "; finish it before pushing")
    recipe = load_recipe(run_dir / runs.RECIPE)
    weights = run_dir / (runs.ADAPTER if recipe.peft.adapter else runs.MODEL)
    if not weights.is_dir():
        raise HfkitError(f"{run_dir} has no {weights.name}/ folder: the run did not finish")
    out_dir.mkdir(parents=True, exist_ok=True)
    if merge and recipe.peft.adapter:
        merge_into(run_dir, out_dir / "merged")
        for path in (out_dir / "merged").iterdir():
            path.rename(out_dir / path.name)
        (out_dir / "merged").rmdir()
    else:
        _copy_inside(weights, out_dir, run_dir)
    runs.write_text(out_dir / runs.RECIPE, public_recipe_yaml(recipe))
    record.write(out_dir)  # through the record: secrets it may hold were redacted when written
    card = render_card(run_dir, repo_id=repo_id, merged=merge and recipe.peft.adapter)
    runs.write_text(out_dir / "README.md", redact_text(str(card)))
    return sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())


def dry_run(run_dir: Path, target: Path, repo_id: str | None, merge: bool) -> list[str]:
    """Write the upload folder into `target` (new or empty) through a temporary sibling."""
    if target.exists() and not target.is_dir():
        raise HfkitError(f"--dry-run {target}: that is a file, not a folder; give a new or empty folder")
    if target.exists() and any(target.iterdir()):
        raise HfkitError(f"--dry-run {target}: the folder is not empty; give a new or empty folder")
    staging = target.with_name(f".{target.name}.tmp-{runs.utc_stamp()}")
    try:
        files = assemble(run_dir, staging, repo_id, merge)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


def push(run_dir: Path, repo_id: str, private: bool = False, merge: bool = False, revision: str | None = None,
         endpoint: str | None = None) -> str:
    """Create the repo (if needed) and upload the run; returns the commit URL."""
    from huggingface_hub import HfApi, constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise HfkitError("pushing needs the Hub, but HF_HUB_OFFLINE=1; unset it (or use --dry-run DIR)")
    token = get_token()
    if not token:
        raise HfkitError("no Hub token: set HF_TOKEN or run `hf auth login` (hfkit never stores it)")
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="hfkit-push-") as tmp:
        files = assemble(run_dir, Path(tmp), repo_id, merge)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision,
                                       commit_message=f"Upload {run_dir.name} ({len(files)} files) with hfkit")
        except Exception as err:  # HTTP errors, refused connections, timeouts: all end the push the same way
            raise HfkitError(f"push to {repo_id} failed ({type(err).__name__}): "
                             f"{_without(first_line(err), token)}") from None
    return commit.commit_url


def check_repo_id_option(repo_id: str) -> None:
    """`--repo-id` must be a valid Hub repo id (huggingface_hub's rules), checked before anything else."""
    from hfkit.schema import check_repo_id

    try:
        check_repo_id(repo_id)
    except ValueError as err:
        raise HfkitError(f"--repo-id: {err}") from None


def retry_command(run_dir: Path, repo_id: str, private: bool, merge: bool, revision: str | None) -> str:
    flags = [*(["--private"] if private else []), *(["--merge"] if merge else []),
             *([f"--revision {revision}"] if revision else [])]
    return " ".join(["hfkit push", str(run_dir), "--repo-id", repo_id, *flags])


def _copy_inside(source: Path, target: Path, run_dir: Path) -> None:
    """Copy regular files that really live inside `run_dir`; skip symlinks out of it and pickles."""
    root = run_dir.resolve()
    paths = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in paths:
        if path.suffix in PICKLES or path.name == "README.md":  # peft's stub card: ours replaces it
            continue
        if not path.resolve().is_relative_to(root):
            print(f"Not uploading {path}: it links outside the run folder")
            continue
        destination = target if source.is_file() else target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)


def _without(text: str, secret: str) -> str:
    return text.replace(secret, "***")

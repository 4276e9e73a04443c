"""Where a study's trials live (an Optuna storage), and which process holds which trial.

Default: an SQLite file in the study folder, `study.db`. `--storage` takes any Optuna RDB URL
(`postgresql://`, `mysql://`, `sqlite:///`), or a file path, which becomes a JournalStorage file
(for a filesystem several machines share, where SQLite's locking cannot be trusted).

Who holds a trial: the process that takes it writes its host, pid and process start time into the
trial (`hfkit:owner`). A RUNNING trial whose owner on this host is gone (kill -9, a crash, a
reboot) is interrupted: it is marked failed and a copy with the same configuration and seed is
queued, so the next run resumes it. On an RDB storage Optuna's heartbeat does the same for trials
of other machines (no heartbeat for HEARTBEAT_GRACE_S seconds). Claims go through `claim_lock`: a
file lock beside an SQLite or journal file (SQLite ignores SELECT ... FOR UPDATE, so two processes
could otherwise both take one waiting trial); a database server locks the row itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Callable

from hfkit.errors import HfkitError, first_line
from hfkit.redaction import redact_text

DB = "study.db"
HEARTBEAT_S = 60  # the study process records a heartbeat for its running trial this often (RDB storages)
HEARTBEAT_GRACE_S = 180  # a trial of another machine without a heartbeat for this long is interrupted
UNOWNED_GRACE_S = 180  # a RUNNING trial that never got an owner (killed right after taking it)
OWNER = "hfkit:owner"
STORAGE_ENV = "HFKIT_STUDY_STORAGE"  # how a trial's process learns the storage URL (never on its command line)


def default_url(folder: Path) -> str:
    return f"sqlite:///{(folder / DB).resolve()}"


def is_rdb(url: str) -> bool:
    return "://" in url


def lock_path(url: str) -> Path | None:
    """The lock file beside a local storage file; None for a database server. Not FILE.lock beside a
    journal: Optuna's own journal lock is a symlink of that name, and a file there makes every write
    wait out its 30 s stale-lock grace period."""
    if not is_rdb(url):
        return Path(url).with_name(Path(url).name + ".claims.lock")
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).with_suffix(".lock")
    return None


def open_storage(url: str, on_stale: Callable | None = None, heartbeat: bool = True):
    """The Optuna storage at `url`; an unreachable or unusable one is a one-line error."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shown = redact_text(url)
    try:
        if not is_rdb(url):
            from optuna.storages.journal import JournalFileBackend

            Path(url).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(url)))
        engine: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        beat = {"heartbeat_interval": HEARTBEAT_S, "grace_period": HEARTBEAT_GRACE_S,
                "heartbeat_stale_trial_callback": on_stale} if heartbeat else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **beat)
    except ModuleNotFoundError as err:
        raise HfkitError(f"--storage {shown}: its database driver is not installed ({err}); pip install it "
                         "(e.g. psycopg2-binary for postgresql://, pymysql with mysql+pymysql://)") from None
    except Exception as err:  # sqlalchemy's OperationalError, ArgumentError, an OSError from the journal file
        raise HfkitError(f"--storage {shown}: cannot open it ({redact_text(first_line(err))}); check the address, "
                         "the user and the password, or leave --storage out for an SQLite file in the study folder") from None


@contextlib.contextmanager
def claim_lock(url: str):
    """Only one process at a time looks for and takes a trial (see the module's docstring)."""
    path = lock_path(url)
    if path is None:
        yield
        return
    import fcntl

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError as err:
        raise HfkitError(f"--storage {redact_text(url)}: cannot open it (cannot write {path}: {err.strerror}); "
                         "choose a folder you can write in, or leave --storage out") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid())}


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a reused pid from the original)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def is_gone(held_by: dict[str, Any]) -> bool:
    """True when the owner ran on this host and its process no longer exists."""
    if held_by.get("host") != socket.gethostname():
        return False
    pid = held_by.get("pid")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, TypeError):
        return False
    started = held_by.get("started")
    return started is not None and _start_time(pid) not in (None, started)


def interrupted(study) -> list:
    """RUNNING trials whose process is gone (this host) or that never got an owner."""
    from datetime import datetime

    from optuna.trial import TrialState

    found = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        held_by = trial.user_attrs.get(OWNER)
        if held_by is not None and is_gone(held_by):
            found.append(trial)
        elif held_by is None and trial.datetime_start is not None and \
                (datetime.now() - trial.datetime_start).total_seconds() > UNOWNED_GRACE_S:
            found.append(trial)
    return found


def fail_interrupted(study, retry: Callable) -> int:
    """Mark interrupted trials failed and queue a retry of each (Optuna's heartbeat does the same for
    RDB storages, with `retry` as its callback); returns how many were found."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError

    count = 0
    for trial in interrupted(study):
        try:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError, RuntimeError):
            continue  # another process got there first (or the trial finished meanwhile)
        retry(study, trial)
        count += 1
    with warnings.catch_warnings():  # RDB: trials of other machines, by heartbeat (a no-op elsewhere)
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    return count


def record_heartbeat(storage, trial) -> None:
    if getattr(storage, "heartbeat_interval", None):
        storage.record_heartbeat(trial._trial_id)

"""Shared fixtures. The whole suite runs offline: nothing may reach the Hub."""

import os
import sys
from pathlib import Path

# Read by huggingface_hub at import time, so set before anything imports it.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))

from support import make_tiny_llama  # noqa: E402


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


# A process a test leaves behind (an accelerate worker whose launcher was killed, a trial whose study
# died) keeps spinning on the machine's two cores and slows every later test several-fold: one such
# leftover can turn a 10-minute suite into a CI time-out. pytest is made the "subreaper" of its
# descendants (Linux), so orphans stay its children instead of moving to init; after each test any
# still alive are killed, and the test that left them is named in the summary.
def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


SUBREAPER = _become_subreaper()


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test(request):
    yield
    if not SUBREAPER:
        return
    import warnings

    import psutil

    leftovers = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)  # an orphan that exited: reap it
                continue
            leftovers.append(" ".join(child.cmdline())[:160])
            child.kill()
            child.wait(timeout=10)
        except (psutil.Error, ChildProcessError):
            continue
    if leftovers:
        warnings.warn(f"{request.node.nodeid} left {len(leftovers)} process(es) running, killed: {leftovers}")

"""What Ctrl-C and SIGTERM do outside training's own handler (hfkit.trainer.StopOnInterrupt).

SIGTERM is what Slurm, Kubernetes and `timeout` send before they kill: it unwinds like Ctrl-C
(`Terminated` is a KeyboardInterrupt), so a job records where it stopped instead of dying with its
run saying `running`, and the command exits with 143.
"""

from __future__ import annotations

import signal
import threading

from hfkit.errors import Terminated


def terminate_as_interrupt() -> None:
    """From now on SIGTERM raises `Terminated` in the main thread (no handler can be set elsewhere)."""
    def handle(signum, frame):
        raise Terminated

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)


def wait_passing_on(process) -> int:
    """Wait for a child process (`hfkit launch`'s accelerate) and return its exit code; a SIGTERM to
    this one is passed on, so the launched run stops at a step and records it (Ctrl-C reaches the
    whole process group already)."""
    try:
        return process.wait()
    except KeyboardInterrupt as stop:
        if isinstance(stop, Terminated):
            process.send_signal(signal.SIGTERM)
        return process.wait()

"""Whether a process still runs: what decides if a killed install's leftovers may go."""

from __future__ import annotations

import os


def process_exists(pid: int) -> bool:
    """Tell whether a process ``pid`` exists on this machine (of any user).

    A process of another user answers ``PermissionError``: it exists, and whatever it
    left must stay. Only "no such process" says it is gone.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True

"""Hold Ctrl-C while a few renames must happen together: the commit of an install, or its undo.

An interrupt between two renames of a commit left an environment with two versions of a
project (issue 15). A kernel's interrupt, like Ctrl-C in a terminal, is SIGINT, which
Python turns into ``KeyboardInterrupt`` in the main thread, between any two bytecodes.
``interrupts_held()`` puts a handler in its place that only notes the signal, and hands
it to the previous handler once the block is over: the commit (or its rollback) is then
whole, and the interrupt still stops the cell.

Only the main thread can set a signal handler, and only the main thread receives
``KeyboardInterrupt`` from SIGINT: in any other thread the block needs no protection, and
none is set up. Nor when the handler in place was not set from Python (it could not be
put back).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType


@dataclass
class Held:
    """What ``interrupts_held`` did: ``held`` is True once a SIGINT came during the block."""

    held: bool = False


@contextlib.contextmanager
def interrupts_held() -> Iterator[Held]:
    """Run the block without SIGINT; deliver one that came in the meantime once it ends.

    The signal goes to the handler that was in place before (``KeyboardInterrupt``
    raised here, for Python's default one), after the block's own exception, if any,
    has been set as its context. The ``Held`` yielded tells a caller catching that
    ``KeyboardInterrupt`` whether it is the one held here.
    """
    state = Held()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:
        yield state
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        state.held = True

    signal.signal(signal.SIGINT, hold)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
        if state.held:
            signal.raise_signal(signal.SIGINT)

"""A signal that lands where Python cannot raise (a weakref callback, a finaliser) prints no
traceback and still stops the run at the next check."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# SIGINT arrives while a weakref callback runs (as during TensorFlow's garbage collection at
# the end of a training epoch): the handler's Interrupted cannot leave the callback.
SCRIPT = textwrap.dedent(
    """
    import gc, os, signal, sys, weakref
    from sar_colorizer.errors import Interrupted
    from sar_colorizer.signals import interrupts_raise, raise_if_interrupted

    class Thing:
        pass

    def callback(_reference):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs between these bytecodes
            pass

    with interrupts_raise():
        thing = Thing()
        reference = weakref.ref(thing, callback)
        del thing
        gc.collect()
        try:
            raise_if_interrupted()
        except Interrupted as error:
            print("raised", error.signal_name)
    # outside the block, other unraisable errors are still reported
    class Loud:
        def __del__(self):
            raise ValueError("reported")
    Loud()
    """
)


def test_an_interruption_inside_a_weakref_callback_prints_no_traceback():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "raised SIGINT" in result.stdout
    assert "Interrupted" not in result.stderr, result.stderr
    assert "ValueError: reported" in result.stderr  # the previous hook is restored

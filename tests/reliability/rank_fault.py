"""One rank of a 2-process launch that SIGKILLs itself at a chosen point (for test_rank_faults.py).

    accelerate launch ... rank_fault.py KIND VICTIM AT STAMP -- ARGS...

KIND ``cli``: run ``grokplug ARGS`` (the real CLI: unlearn or compare); rank VICTIM kills itself at its
AT-th unlearning step (``grokplug_on_unlearn_step``). KIND ``train``: run examples/accelerate_tracking.py
with ARGS; rank VICTIM kills itself at training step AT (``grokplug_transform_gradients`` fires every
step on every rank). Before the kill it writes the time to STAMP, so the test can time the survivor.
VICTIM -1 kills nobody (the rerun). Only *where* it dies is arranged here: the kill is a real SIGKILL.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import time
from pathlib import Path

from grokplug import get_plugin_manager
from grokplug.hooks import hookimpl

KIND, VICTIM, AT, STAMP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
ARGS = sys.argv[sys.argv.index("--") + 1:]
RANK = int(os.environ.get("RANK", "0"))  # read now: compare hides the launcher's variables inside a cell


def _die() -> None:
    STAMP.write_text(str(time.time()))
    os.kill(os.getpid(), signal.SIGKILL)


class RankKiller:
    calls = 0

    @hookimpl
    def grokplug_on_unlearn_step(self, context: object, step: int, metrics: object) -> None:
        RankKiller.calls += 1
        if KIND == "cli" and RANK == VICTIM and RankKiller.calls >= AT:
            _die()

    @hookimpl
    def grokplug_transform_gradients(self, model: object, step: int) -> None:
        if KIND == "train" and RANK == VICTIM and step >= AT:
            _die()


get_plugin_manager().register(RankKiller(), name="rank-killer")
if KIND == "cli":
    from grokplug.cli import main

    sys.exit(main(ARGS))
sys.argv = [ARGS[0], *ARGS[1:]]
runpy.run_path(ARGS[0], run_name="__main__")

"""Launch a script as two CPU ranks under torch's own launcher (the slow multi-process tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def torchrun_two_ranks(script: Path, *args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with ``args`` as 2 ranks: one thread each, no plugin autoload, output captured."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torch's launcher is installed with torch"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([torchrun, "--nproc_per_node", "2", str(script), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)

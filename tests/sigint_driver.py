"""Run the ``tunescope`` command as its console script does, with one import held up (for
tests/study/test_sigint.py).

    TUNESCOPE_TEST_HOLD=torch TUNESCOPE_TEST_READY=FILE python tests/sigint_driver.py ARGS...

When the module named by ``TUNESCOPE_TEST_HOLD`` is first imported, the driver creates FILE
and then waits (up to a minute) before the import goes on, so a SIGINT sent once FILE exists
arrives while that import is under way: deterministically inside the imports of the command
line (typer), of its setup (transformers) or of a command (torch, pandas, the study code). The
hold is a finder that this script puts first on ``sys.meta_path``, so the production code
carries no test hooks.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


class HoldImport:
    """A meta path finder that stalls the first import of one module (and finds nothing)."""

    def __init__(self, name: str, ready: Path):
        self.name = name
        self.ready = ready
        self.held = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name and not self.held:
            self.held = True
            self.ready.touch()
            time.sleep(60)  # a SIGINT ends the sleep with KeyboardInterrupt
        return None


if __name__ == "__main__":
    hold = os.environ.get("TUNESCOPE_TEST_HOLD")
    if hold:
        sys.meta_path.insert(0, HoldImport(hold, Path(os.environ["TUNESCOPE_TEST_READY"])))
    from tunescope._entry import main

    sys.argv = ["tunescope", *sys.argv[1:]]
    main()

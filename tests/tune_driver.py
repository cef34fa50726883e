"""Run ``tunescope.tune`` on a toy data file and SIGKILL the process right after its first
checkpoint is written (for tests/tuning/test_tune.py):

    python tests/tune_driver.py BASE_DIR DATA_FILE OUT_DIR [kill]

Without ``kill`` it runs to the end. The settings are fixed here so that the killed run and the
uninterrupted one take the same steps.
"""

from __future__ import annotations

import os
import signal
import sys

SETTINGS = dict(epochs=3, batch_size=4, learning_rate=3e-3, warmup_steps=2, checkpoint_every=2,
                precision="float32")


def main() -> None:
    base, data, out = sys.argv[1:4]
    from tunescope.tuning import TuneConfig, loop, tune

    if sys.argv[4:] == ["kill"]:
        save = loop.save_checkpoint

        def save_then_die(*args, **kwargs):
            save(*args, **kwargs)
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        loop.save_checkpoint = save_then_die
    tune(base, data, out, TuneConfig(**SETTINGS), progress=False)


if __name__ == "__main__":
    main()

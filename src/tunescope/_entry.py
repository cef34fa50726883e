"""The ``tunescope`` console script: Ctrl-C at any moment ends it with one line and status 130.

The script's first import is this module, which imports nothing but ``sys`` (the package's
``__init__`` imports its public names lazily), so the handler below is in place before the
command-line module, typer, torch, transformers or pandas are imported: an interrupt during
those imports, during a command, or while an error is reported gives the same single line
:data:`INTERRUPTED` on stderr and exit status :data:`EXIT_INTERRUPTED`, never a traceback.
Finished jobs are safe at any moment: every output is written to a temporary name and renamed
into place (:mod:`tunescope.common.atomic`), so a rerun of the same command resumes.
"""

from __future__ import annotations

import sys

INTERRUPTED = "tunescope: interrupted (finished jobs are kept; rerun to resume)"
"""The one line printed on stderr when the user interrupts tunescope (Ctrl-C, SIGINT)."""
EXIT_INTERRUPTED = 130
"""Exit status after an interrupt (128 + SIGINT, the shell's convention)."""


def interrupted() -> None:
    """Print :data:`INTERRUPTED` and exit with :data:`EXIT_INTERRUPTED` (never returns); a
    second Ctrl-C while exiting is ignored (it would only add a traceback)."""
    while True:
        try:
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            break
        except KeyboardInterrupt:  # a second Ctrl-C before the line above took effect
            continue
        except ValueError:  # not the main thread: no second Ctrl-C can reach this one
            break
    print(INTERRUPTED, file=sys.stderr, flush=True)
    sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    """Entry point of the console script: import the command line and run it, turning an
    interrupt at any point into :func:`interrupted`."""
    try:
        from tunescope.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        interrupted()

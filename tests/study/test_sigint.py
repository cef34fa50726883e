"""Ctrl-C at any moment: one line ``tunescope: interrupted (finished jobs are kept; rerun to
resume)`` on stderr, exit status 130, no traceback: during the imports (a KeyboardInterrupt
traceback before), mid-run (a silent exit 130 before), and a rerun resumes. Usage errors and
--help keep their exit statuses.

The interrupts are real SIGINTs sent to a subprocess: at a moment made deterministic by
tests/sigint_driver.py (one import held up until the signal comes), or, for the installed
console script, once the process is seen importing (a shared library of site-packages in its
memory map) and while a study runs (after its first shard is on disk).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study.test_interrupt import study_file  # noqa: F401 (a fixture: tiny models, tiny study)
from tunescope._entry import EXIT_INTERRUPTED, INTERRUPTED

DRIVER = Path(__file__).parents[1] / "sigint_driver.py"
SCRIPT = shutil.which("tunescope", path=str(Path(sys.executable).parent))
ENV = {**os.environ, "TUNESCOPE_PROGRESS": "0"}


def start(command: list[str], env: dict | None = None) -> subprocess.Popen:
    """Start ``command`` with SIGINT at its default (a background job may inherit it ignored,
    and Python then never raises KeyboardInterrupt)."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, **(env or {})},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    """Poll ``condition()`` until it holds; fail if the process ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"ended (status {process.returncode}) before the moment to interrupt: "
                        f"{err[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the moment to interrupt never came")
        time.sleep(0.01)


def interrupt(process: subprocess.Popen) -> subprocess.CompletedProcess:
    """Send SIGINT and collect the outcome."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def assert_interrupted(done: subprocess.CompletedProcess) -> None:
    assert (done.returncode, done.stderr) == (EXIT_INTERRUPTED, INTERRUPTED + "\n"), (
        done.returncode, done.stderr[-3000:])


def importing(pid: int) -> bool:
    """Whether the process has loaded a compiled module of site-packages (the console script
    imports none before it has its Ctrl-C handler in place)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return any("site-packages" in line and ".so" in line for line in maps.splitlines())


@pytest.mark.parametrize("module", ["typer", "transformers", "torch", "pandas",
                                    "tunescope.study.runner"])
def test_interrupt_during_an_import(module, study_file, tmp_path):  # noqa: F811
    """typer: while tunescope.cli is imported; transformers: the command line's setup; torch,
    pandas and the study code: imports of the ``run`` command."""
    ready = tmp_path / "ready"
    process = start([sys.executable, str(DRIVER), "run", str(study_file), "--out",
                     str(tmp_path / "run")],
                    env={"TUNESCOPE_TEST_HOLD": module, "TUNESCOPE_TEST_READY": str(ready)})
    wait_for(ready.exists, process)
    assert_interrupted(interrupt(process))
    assert not (tmp_path / "run" / "shards").exists()


@pytest.mark.skipif(SCRIPT is None or not Path("/proc/self/maps").exists(),
                    reason="needs the installed console script and /proc")
@pytest.mark.parametrize("delay", [0.0, 0.2, 0.6])
def test_console_script_interrupted_early(delay, study_file, tmp_path):  # noqa: F811
    process = start([SCRIPT, "run", str(study_file), "--out", str(tmp_path / "run")])
    wait_for(lambda: importing(process.pid), process)
    time.sleep(delay)
    assert_interrupted(interrupt(process))


@pytest.mark.skipif(SCRIPT is None, reason="needs the installed console script")
def test_console_script_interrupted_mid_run_then_resumed(study_file, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    process = start([SCRIPT, "run", str(study_file), "--out", str(out)])

    def finished() -> list[Path]:
        return list((out / "shards").glob("*/*/result.json"))
    wait_for(lambda: finished(), process)
    done = interrupt(process)
    assert_interrupted(done)
    assert "Traceback" not in done.stdout
    kept = len(finished())
    assert kept >= 1 and not (out / "report.html").exists()

    resumed = subprocess.run([SCRIPT, "run", str(study_file), "--out", str(out)],
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{kept} already finished" in resumed.stdout
    assert (out / "report.html").exists()


@pytest.mark.skipif(SCRIPT is None, reason="needs the installed console script")
@pytest.mark.parametrize("command", [[SCRIPT], [sys.executable, "-m", "tunescope"]],
                         ids=["console-script", "python-m"])
def test_help_and_usage_errors_keep_their_exit_status(command):
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "run" in done.stdout and "models" in done.stdout
    done = subprocess.run([*command, "--bogus"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "No such option: --bogus" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([*command, "predict", "--bogus"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "No such option: --bogus" in done.stderr
    done = subprocess.run([*command, "models", "pull"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("tunescope: error: name a bundled model")


def test_importing_the_package_imports_nothing_heavy():
    """The console script imports ``tunescope`` before its Ctrl-C handler is in place: that
    import must be quick (the public names are imported on first use)."""
    code = ("import sys, tunescope, tunescope._entry; heavy = {'torch', 'transformers', "
            "'pandas', 'numpy', 'typer', 'tunescope.cli'} & set(sys.modules); "
            "print(sorted(heavy)); import tunescope as ts; "
            "print(ts.load.__module__, ts.Study.__name__, ts.Result.__name__, ts.LM.__name__, "
            "ts.TunescopeError.__name__, ts.analyses.__name__, ts.data.__name__, "
            "ts.engine.__name__, ts.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[]", "tunescope.models.loading Study Result LM TunescopeError tunescope.analyses "
        "tunescope.data tunescope.engine 0.1.0"]

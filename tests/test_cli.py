"""The command line: user errors give one line on stderr and exit status 2, never a traceback."""

import subprocess
import sys

import pytest


def tunescope(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tunescope.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize("args, message", [
    (["models", "pull", "llama-99b"], "unknown bundled model 'llama-99b'"),
    (["models", "pull"], "name a bundled model or pass --all"),
    (["predict", "not-a-model", "hello"], "unknown model 'not-a-model'"),
    (["predict", "/no/such/model.gguf", "hello"], "no such GGUF file"),
])
def test_user_errors_are_one_line_with_exit_2(args, message):
    done = tunescope(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tunescope: error: ") and message in lines[0]
    assert "Traceback" not in done.stderr


def test_unwritable_output_fails_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = tunescope("run", "--out", str(blocker / "out"))
    assert done.returncode == 2 and "not writable" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_error_and_help():
    assert tunescope("predict", "--bogus").returncode == 2
    done = tunescope("--help")
    assert done.returncode == 0 and "models" in done.stdout and "run" in done.stdout


def test_models_lists_bundled(tmp_path):
    import os
    done = tunescope("models", env={**os.environ, "TUNESCOPE_CACHE": str(tmp_path)})
    assert done.returncode == 0
    assert "gemma-3-270m" in done.stdout and "smollm2-135m-instruct" in done.stdout
    assert "ready" not in done.stdout  # an empty cache holds no prepared model


def test_datasets_list_and_pull_errors(tmp_path):
    done = tunescope("datasets")
    assert done.returncode == 0 and "mini-pararel" in done.stdout and "load_pairs" in done.stdout
    done = tunescope("datasets", "pull", "imagenet")
    assert done.returncode == 2 and "unknown dataset 'imagenet'" in done.stderr
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    done = tunescope("datasets", "pull", "pararel", "--dest", str(tmp_path / "p"),
                     "--url", f"http://127.0.0.1:{port}/")
    assert done.returncode == 2 and "ParaRel download failed" in done.stderr
    assert "Traceback" not in done.stderr

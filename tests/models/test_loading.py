"""load(): local directories, GGUF checks, bundled names, hub errors; clear one-line errors."""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading

import pytest
import torch
from tiny import tiny_model, tiny_tokenizer

from tunescope import load
from tunescope.errors import (
    HubUnavailableError,
    ModelFileError,
    ModelNotFoundError,
    UnsupportedArchitectureError,
)
from tunescope.models import bundled


def test_local_directory_round_trip(tmp_path):
    model, tok = tiny_model("llama"), tiny_tokenizer(chat=True)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    lm = load(tmp_path / "m")
    assert lm.source == "local" and lm.family == "llama" and lm.has_chat_template
    assert lm.dtype == torch.float32 and lm.device.type == "cpu"
    assert not any(p.requires_grad for p in lm.model.parameters())
    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(lm.model(ids).logits, model(ids).logits)
    meta = lm.metadata
    assert meta["n_layers"] == 3 and meta["n_kv_heads"] == 2 and meta["chat_template"] is True
    assert "<|user|>" in lm.format_prompt("hi", chat=True)
    assert load(tmp_path / "m", dtype="bfloat16").dtype == torch.bfloat16


def test_unsupported_architecture_named(tmp_path):
    d = tmp_path / "bert"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnsupportedArchitectureError, match="'bert' is not supported; supported:"):
        load(d)


@pytest.mark.parametrize("spec, error, message", [
    ("no-such-model", ModelNotFoundError, "unknown model 'no-such-model': not a bundled model"),
    ("./missing/dir", ModelNotFoundError, "no such file or directory"),
    ("/nonexistent/model.gguf", ModelNotFoundError, "no such GGUF file"),
])
def test_bad_specs(spec, error, message):
    with pytest.raises(error, match=message):
        load(spec)


def test_directory_without_config_and_plain_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load(tmp_path / "empty")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="neither a model directory nor a .gguf"):
        load(tmp_path / "weights.bin")


def test_corrupt_gguf(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        load(bad)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(ModelFileError, match="cannot read GGUF file"):
        load(truncated)


def test_broken_safetensors(tmp_path):
    model, tok = tiny_model("gpt2"), tiny_tokenizer()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="cannot load model"):
        load(tmp_path / "m")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_hub_unreachable_says_so_and_suggests_local_path(monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(HubUnavailableError, match=r"cannot reach the model hub .*local directory"):
        load("some-org/some-model")


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


def test_hub_id_not_found(tmp_path):
    """A local server standing in for the hub (HF_ENDPOINT) answers 404 for every file; the
    CLI says the id was not found, in one line, with exit status 2."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
               "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
        done = subprocess.run([sys.executable, "-m", "tunescope.cli", "predict",
                               "some-org/missing-model", "hello"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 2
        assert "hub id 'some-org/missing-model' was not found on the model hub" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_bundled_name_and_cache_override(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="unknown bundled model 'gpt-5'; bundled: gemma-3-270m"):
        bundled.get("gpt-5")
    monkeypatch.setenv("TUNESCOPE_CACHE", str(tmp_path))
    assert bundled.cache_dir() == tmp_path
    assert bundled.model_dir("gemma-3-270m") == tmp_path / "models" / "gemma-3-270m"
    s = bundled.status("smollm2-135m-instruct")
    assert s["status"] in ("installed", "not installed") and s["path"] is None
    with pytest.raises(ModelNotFoundError if s["status"] == "not installed" else Exception):
        if s["status"] == "not installed":
            bundled.pull("smollm2-135m-instruct", install=False)
        else:
            raise RuntimeError("installed: nothing to check")


def test_an_old_prepared_directory_that_cannot_be_upgraded_is_left_as_it_is(tmp_path,
                                                                             monkeypatch):
    """The in-place upgrade of an older prepared directory only speeds loading up: a tokenizer
    it cannot read (or a cache it cannot write) leaves the directory untouched, no error."""
    monkeypatch.setenv("TUNESCOPE_CACHE", str(tmp_path))
    target = bundled.model_dir("smollm2-135m-instruct")
    target.mkdir(parents=True)
    marker = json.dumps({"name": "smollm2-135m-instruct", "role": "instruct"})
    (target / bundled.MARKER).write_text(marker)
    (target / "tokenizer_config.json").write_text("{not json")
    assert bundled.pull("smollm2-135m-instruct", install=False) == target
    assert (target / bundled.MARKER).read_text() == marker
    assert (target / "tokenizer_config.json").read_text() == "{not json"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".") and p.is_dir()]

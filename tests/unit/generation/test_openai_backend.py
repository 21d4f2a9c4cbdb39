"""The OpenAI backend's protocol against a scripted HTTP server on 127.0.0.1: retries (429, 5xx,
Retry-After), timeouts, the concurrency bound, per-sample seeds, refused fields and the chat endpoint.

The server here is a real HTTP server the backend talks to over a socket; it answers from a script
(a status per request) and derives each text from the request's seed, so what the backend sent is
visible in what it got back. Real model servers are exercised in tests/unit/frontends/test_e2e_served.py.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shisa_spec.spec.cases import FIXTURES, GenerationSettings

TINY = FIXTURES / "tiny-shisa"
pytestmark = pytest.mark.skipif(not (TINY / "tokenizer_config.json").exists(), reason="fixtures/tiny-shisa is not built")


class Script:
    """What the server does: per POST, the next scripted (status, headers, body) or a normal answer."""

    def __init__(self) -> None:
        self.plan: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.refuse_fields: set[str] = set()
        self.delay_s = 0.0
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.models: tuple[int, dict[str, Any]] = (200, {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "test"}]})
        self.gets = 0
        self.model_known = True  # False: completions for any model answer 404, as a server without it would


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *a: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.script.gets += 1
        self._send(*self.script.models)

    def do_POST(self) -> None:
        sc = self.script
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with sc.lock:
            sc.posts.append((self.path, body))
            scripted = sc.plan.pop(0) if sc.plan and body.get("max_tokens") != 12 else None  # probes (12 tokens) are never scripted
            sc.inflight += 1
            sc.max_inflight = max(sc.max_inflight, sc.inflight)
        try:
            if sc.delay_s:
                sc.release.wait(sc.delay_s)
            if not sc.model_known:
                return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
            refused = sorted(sc.refuse_fields & set(body))
            if refused:
                return self._send(400, {"error": {"message": f"Unknown field: {refused[0]}"}})
            if scripted is not None:
                return self._send(scripted[0], scripted[2], scripted[1])
            text = f"seed {body.get('seed')}"
            if self.path.endswith("/chat/completions"):
                choice = {"message": {"role": "assistant", "content": " " + text}, "finish_reason": "stop"}
            else:
                choice = {"text": " " + text, "finish_reason": "stop"}
            self._send(200, {"choices": [choice], "usage": {"prompt_tokens": 3, "completion_tokens": 2}, "system_fingerprint": "fp-1"})
        finally:
            with sc.lock:
                sc.inflight -= 1


@pytest.fixture
def server():
    script = Script()
    handler = type("H", (Handler,), {"script": script})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    script.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY)


def backend(url: str, tokenizer: Any, **kw: Any):
    from shisa_spec.generation.backends.openai import OpenAIBackend, OpenAIOptions

    opts = {"retries": 2, "backoff_s": 0.01, **kw}
    return OpenAIBackend(OpenAIOptions(url, "m", **opts), tokenizer).connect()


def requests(n: int, case: str = "c"):
    from shisa_spec.generation.engine import Request

    settings = GenerationSettings(8, True, 0.3, 0.95, 1.15)
    return [Request(case, "<s>[INST] <<SYS>>\nhi\n<</SYS>>\n\n", settings, 2**31 + 100 + i, sample=i, messages=(("system", "hi"),))
            for i in range(n)]


def test_429_and_503_are_retried_and_retry_after_is_honoured(server, tokenizer, monkeypatch):
    from shisa_spec.generation.backends import openai

    url, script = server
    b = backend(url, tokenizer)
    slept: list[float] = []
    monkeypatch.setattr(openai.time, "sleep", slept.append)
    script.plan = [(429, {"Retry-After": "7"}, {"error": {"message": "slow down"}}),
                   (503, {}, {"error": {"message": "overloaded"}})]
    out = b.generate(requests(1))
    assert out[("c", 0)].output == f"seed {(2**31 + 100) % 2**31}"
    assert slept == [7.0, 0.02]  # the server's Retry-After, then backoff (0.01 x 2)
    assert b.retried == 2 and "2 request(s) retried" in b.summary()


def test_a_server_that_keeps_failing_is_one_line_naming_the_last_answer(server, tokenizer, monkeypatch):
    from shisa_spec.generation.backends import openai

    url, script = server
    b = backend(url, tokenizer)
    monkeypatch.setattr(openai.time, "sleep", lambda s: None)
    script.plan = [(503, {}, {"error": {"message": "overloaded"}})] * 3
    with pytest.raises(openai.BackendError) as e:
        b.generate(requests(1))
    assert str(e.value) == f"cannot reach {url}/completions after 3 tries (HTTP 503 (overloaded))"


def test_no_answer_within_the_timeout_is_retried_then_one_line(server, tokenizer):
    from shisa_spec.generation.backends.openai import BackendError

    url, script = server
    b = backend(url, tokenizer, retries=1, timeout_s=0.5)
    script.delay_s = 30.0
    with pytest.raises(BackendError) as e:
        b.generate(requests(1))
    assert str(e.value) == f"cannot reach {url}/completions after 2 tries (no answer within 0.5 s)"


def test_concurrency_bounds_the_requests_in_flight_and_every_sample_has_its_seed(server, tokenizer):
    url, script = server
    b = backend(url, tokenizer, concurrency=3)
    script.delay_s = 0.05
    reqs = requests(12)
    seen: list[Any] = []
    out = b.generate(reqs, on_batch=seen.extend)
    assert 2 <= script.max_inflight <= 3
    assert len(seen) == 12 and sorted(out) == [("c", i) for i in range(12)]
    sent = sorted(body["seed"] for path, body in script.posts if body["max_tokens"] == 8)
    assert sent == sorted(r.seed % 2**31 for r in reqs)
    assert all(out[r.key].output == f"seed {r.seed % 2**31}" for r in reqs)


@pytest.mark.parametrize("refused,kept", [("repeat_penalty", "repetition_penalty"),  # a vLLM-like server: llama.cpp's spelling is unknown to it
                                          ("repetition_penalty", "repeat_penalty")])  # a llama.cpp-like server: the other way round
def test_a_refused_penalty_spelling_is_dropped_and_the_other_carries_the_penalty(server, tokenizer, refused, kept):
    url, script = server
    script.refuse_fields = {refused}
    b = backend(url, tokenizer)
    assert len(b.generate(requests(2))) == 2
    assert b.cache_material()["not_honoured"] == [] and "not honoured" not in b.summary()
    last = script.posts[-1][1]
    assert refused not in last and last[kept] == 1.15


def test_a_server_refusing_every_penalty_and_top_p_says_so(server, tokenizer):
    url, script = server
    script.refuse_fields = {"repeat_penalty", "repetition_penalty", "top_p"}
    b = backend(url, tokenizer)
    assert len(b.generate(requests(2))) == 2
    assert b.cache_material()["not_honoured"] == ["repetition_penalty", "top_p"]
    assert "not honoured: repetition_penalty, top_p" in b.summary()
    assert not {"repeat_penalty", "repetition_penalty", "top_p"} & set(script.posts[-1][1])


def test_the_chat_endpoint_sends_the_case_messages(server, tokenizer):
    url, script = server
    b = backend(url, tokenizer, endpoint="chat")
    out = b.generate(requests(1))
    path, body = script.posts[-1]
    assert path == "/v1/chat/completions" and "prompt" not in body
    assert body["messages"] == [{"role": "system", "content": "hi"}]
    assert out[("c", 0)].output == f"seed {(2**31 + 100) % 2**31}"
    assert b.cache_material()["endpoint"] == "/chat/completions" and b.cache_material()["prompt_as"] == "messages"
    assert f"served by {url}/chat/completions" in b.summary()
    # the server counted 3 prompt tokens, the local rendering more: its chat template is not ours
    assert "the server's chat template gave 3 prompt tokens" in b.summary()


def test_token_ids_are_sent_where_the_server_takes_them(server, tokenizer):
    url, script = server
    b = backend(url, tokenizer)
    b.generate(requests(1))
    body = script.posts[-1][1]
    assert body["prompt"] == tokenizer("<s>[INST] <<SYS>>\nhi\n<</SYS>>\n\n", add_special_tokens=False)["input_ids"]
    assert b.prompt_as == "ids"


def test_an_unknown_endpoint_is_refused(tokenizer):
    from shisa_spec.generation.backends.openai import BackendError, OpenAIBackend, OpenAIOptions

    with pytest.raises(BackendError, match="--endpoint responses: expected one of completions, chat"):
        OpenAIBackend(OpenAIOptions("http://127.0.0.1:9/v1", "m", endpoint="responses"), tokenizer)


def test_the_chat_endpoint_needs_no_local_tokenizer_completions_does(server):
    from shisa_spec.generation.backends.openai import BackendError, OpenAIBackend, OpenAIOptions

    url, script = server
    b = OpenAIBackend(OpenAIOptions(url, "m", endpoint="chat"), None).connect()  # e.g. a hosted judge
    out = b.generate(requests(1))
    assert out[("c", 0)].prompt_tokens == 3 and "prompt tokens differ" not in b.summary()  # the server's count, nothing to compare
    with pytest.raises(BackendError, match="/v1/completions needs the model's tokenizer"):
        OpenAIBackend(OpenAIOptions(url, "m"), None)


def test_a_failing_or_empty_model_list_is_recorded_and_the_probe_decides(server, tokenizer, monkeypatch):
    """transformers serve 5.17 answers /v1/models with HTTP 500 when it has no hub cache (seen on the H100):
    the run goes on where the model answers, and says so; a server that also refuses the model stops it."""
    from shisa_spec.generation.backends import openai

    url, script = server
    monkeypatch.setattr(openai.time, "sleep", lambda s: None)
    script.models = (500, {"error": {"message": "Cache directory not found"}})
    b = backend(url, tokenizer)
    assert b.server["models_error"] == "HTTP 500 (Cache directory not found)"
    assert b.server["model_entry"] == {"id": "m", "listed": False} and b.cache_material()["models_error"]
    assert f"{url}/models failed (HTTP 500 (Cache directory not found)), the model answered anyway" in b.summary()
    assert len(script.posts) == 3 and script.gets == 2  # the three probes; /v1/models tried twice, not retries + 1 = 3 times
    script.models = (200, {"object": "list", "data": []})
    assert backend(url, tokenizer).server["model_entry"]["listed"] is False
    script.models = (500, {"error": {"message": "Cache directory not found"}})
    script.model_known = False
    with pytest.raises(openai.BackendError) as e:
        backend(url, tokenizer)
    assert str(e.value).startswith(f"{url}/models failed (HTTP 500 (Cache directory not found)) and the probe request failed too: ")
    assert "does not serve model 'm'" in str(e.value)


def test_a_fully_cached_served_run_never_loads_the_tokenizer(server, tmp_path):
    """The served backend's encodings are kept in the prepared memo: the second, fully cached run connects
    and probes the server with the recorded ids, and never calls prepare (which imports transformers)."""
    from shisa_spec.generation import loader
    from shisa_spec.generation.backends.openai import OpenAIOptions
    from shisa_spec.generation.cache import GenerationCache
    from shisa_spec.generation.prepared import Memo, memo_key
    from shisa_spec.generation.store import OutputStore, RunOptions
    from shisa_spec.spec.cases import load_suite

    url, script = server
    opts = loader.LoadOptions(model=str(TINY), device="cpu")
    calls: list[int] = []

    def prepare():
        calls.append(1)
        return loader.prepare(opts)

    def run():
        cache = GenerationCache(tmp_path / "cache")
        store = OutputStore(load_suite(), ["en-first-president"], prepare=prepare, load=None, cache=cache,
                            options=RunOptions(samples=2, openai=OpenAIOptions(url, "m", backoff_s=0.01)),
                            memo=Memo(cache.root, memo_key(opts)))
        return store, store.get("en-first-president")

    first, recs = run()
    assert calls == [1] and [r["from_cache"] for r in recs] == [False, False]
    posts = len(script.posts)
    second, again = run()
    assert calls == [1], "the fully cached run loaded the tokenizer"
    assert [r["from_cache"] for r in again] == [True, True] and [r["output"] for r in again] == [r["output"] for r in recs]
    assert len(script.posts) == posts + 3  # it still asked the server what it is (the probes): that is in the key
    probes = [b for _, b in script.posts if b["max_tokens"] == 12]
    assert len(probes) == 6 and [b["prompt"] for b in probes[:3]] == [b["prompt"] for b in probes[3:]]  # the recorded ids, sent again
    assert isinstance(probes[-1]["prompt"], list)

"""The spec through --backend openai against real servers the tests start on 127.0.0.1 (free ports, CPU):
`transformers serve` over the tiny model (the whole spec, replay, cache, a server killed mid-run), and a
small stdlib server over the same model that asks for an API key and ignores seeds (401, seeds ignored)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shisa_spec.spec.cases import FIXTURES, load_suite

ROOT = FIXTURES.parent
TINY = FIXTURES / "tiny-shisa"
SUITE = load_suite()
N_TESTS = sum(1 for c in SUITE.cases for k in c.checks if k.check != "judge")  # judge checks skip: no judge given
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONHASHSEED": "random"}

pytestmark = pytest.mark.skipif(not (TINY / "config.json").exists(), reason="fixtures/tiny-shisa is not built (python tools/build_tiny_model.py)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`transformers serve` over the tiny model on 127.0.0.1, started and stopped by the test."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transformers.cli.transformers", "serve", str(TINY), "--host", "127.0.0.1",
             "--port", str(self.port), "--device", "cpu", "--dtype", "float32"],
            stdout=self.log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("transformers serve did not answer /health within 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.log.close()


def spec(tmp: Path, url: str, *args: str, name: str = "t.jsonl", cache: str = "cache", wait: bool = True):
    transcript = tmp / name
    argv = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "spec" / "test_spec.py"), "-m", "gpu", "-rA", "-q",
            "-p", "no:cacheprovider", "--rootdir", str(ROOT), "--model", str(TINY), "--backend", "openai", "--samples", "1",
            "--base-url", url, "--transcript", str(transcript), "--cache-dir", str(tmp / cache), *args]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    if not wait:
        return proc, transcript
    out, _ = proc.communicate(timeout=480)
    proc.stdout_text = out
    return proc, transcript


def replay(transcript: Path, *args: str) -> subprocess.CompletedProcess:
    """The spec judging a transcript (no model, no server)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests" / "spec" / "test_spec.py"), "-m", "gpu", "-rA", "-q",
         "-p", "no:cacheprovider", "--rootdir", str(ROOT), "--replay", str(transcript), *args],
        cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300)


def outcomes(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        word = line.split(" ", 1)[0]
        if word in ("PASSED", "FAILED", "XFAIL", "XPASS", "ERROR", "SKIPPED") and "::" in line:
            out[line.split("::", 1)[1].split(" ")[0]] = word
    return out


def cache_entries(root: Path) -> list[dict]:
    """The generation entries (two-hex-digit folders; the prepared-prompt memo lives beside them in prepared/)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in root.glob("[0-9a-f][0-9a-f]/*.json")] if root.exists() else []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("serve") / "serve.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def full(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("served")
    proc, transcript = spec(tmp, server.url)
    return tmp, proc, transcript


def test_whole_spec_through_transformers_serve(full, server):
    tmp, proc, transcript = full
    got = outcomes(proc.stdout_text)
    assert len(got) == N_TESTS, proc.stdout_text[-3000:]
    assert {"PASSED", "FAILED", "XFAIL"} <= set(got.values()), got
    assert "ERROR" not in got.values()
    recs = [json.loads(l) for l in transcript.read_text(encoding="utf-8").splitlines()]
    assert [r["case"] for r in recs] == [c.id for c in SUITE.cases]
    first = recs[0]
    assert first["rendered_prompt"].startswith("<s>[INST] <<SYS>>\n")  # rendered here, with the model's template
    served = first["provenance"]["served"]
    assert served["served_model"] == str(TINY) and served["model_entry"]["id"] == str(TINY)
    assert served["server"] == "uvicorn" and served["dialect"] == "transformers" and served["prompt_as"] == "text"
    assert "device" not in first["provenance"]  # the tokenizer's host is not the server
    assert {r["finish_reason"] for r in recs} <= {"eos", "length"}
    assert all(r["new_tokens"] > 0 for r in recs)
    assert f"served by {server.url}" in proc.stdout_text
    assert len(cache_entries(tmp / "cache")) == len(SUITE.cases)


def test_replaying_the_served_transcript_gives_the_same_verdicts(full):
    tmp, proc, transcript = full
    replayed = replay(transcript)
    assert outcomes(replayed.stdout) == outcomes(proc.stdout_text), replayed.stdout[-2000:]


def test_second_run_against_the_same_server_is_served_from_the_cache(full, server):
    tmp, proc, transcript = full
    again, t2 = spec(tmp, server.url, name="t2.jsonl")
    n = len(SUITE.cases)
    assert f"{n} cases, {n} samples (1 per case), 0 generated in 0 request(s) to the server, {n} from cache" in again.stdout_text, again.stdout_text[-1500:]
    assert outcomes(again.stdout_text) == outcomes(proc.stdout_text)
    a = {json.loads(l)["case"]: json.loads(l)["output"] for l in transcript.read_text(encoding="utf-8").splitlines()}
    b = {json.loads(l)["case"]: json.loads(l)["output"] for l in t2.read_text(encoding="utf-8").splitlines()}
    assert a == b


def test_server_killed_mid_run_fails_clearly_and_keeps_finished_samples(tmp_path):
    victim = Served(tmp_path / "victim.log")
    try:
        proc, transcript = spec(tmp_path, victim.url, "--concurrency", "1", wait=False)
        deadline = time.monotonic() + 300
        while len(cache_entries(tmp_path / "cache")) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        finished_before_kill = len(cache_entries(tmp_path / "cache"))
    finally:
        victim.stop()
    out, _ = proc.communicate(timeout=300)
    assert finished_before_kill >= 2, out[-2000:]
    assert "BackendError: cannot reach" in out, out[-3000:]
    assert "is the server running at --base-url?" in out or "RemoteDisconnected" in out or "ConnectionResetError" in out, out[-3000:]
    kept = cache_entries(tmp_path / "cache")
    assert finished_before_kill <= len(kept) < len(SUITE.cases)
    assert all(e["finish_reason"] in ("eos", "length") and isinstance(e["output"], str) for e in kept)
    # the transcript holds exactly the finished samples
    recs = [json.loads(l) for l in transcript.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["case"] for r in recs) == sorted(e["case"] for e in kept)


# ---- the failure modes, straight through the backend ----

def _backend(url: str, model: str = str(TINY), **kw):
    from transformers import AutoTokenizer

    from shisa_spec.generation.backends.openai import OpenAIBackend, OpenAIOptions

    tok = AutoTokenizer.from_pretrained(TINY)
    return OpenAIBackend(OpenAIOptions(url, model, retries=kw.pop("retries", 1), backoff_s=0.05, **kw), tok)


def test_connection_refused_is_one_clear_line():
    from shisa_spec.generation.backends.openai import BackendError

    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError) as e:
        _backend(url).connect()
    assert str(e.value) == f"cannot reach {url}/models after 2 tries (connection refused): is the server running at --base-url?"


def test_unknown_model_names_what_the_server_serves(server):
    from shisa_spec.generation.backends.openai import BackendError

    with pytest.raises(BackendError) as e:
        _backend(server.url, "org/no-such-model").connect()
    assert str(e.value) == f"{server.url} does not serve model 'org/no-such-model'; it serves: {TINY} (pass --served-model NAME)"


class _KeyedUnseeded(BaseHTTPRequestHandler):
    """A real completions server over the tiny model that wants a Bearer key and samples without seeding."""

    model = tok = None

    def log_message(self, *a):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self):
        if self.headers.get("Authorization") != "Bearer sesame":
            self._send(401, {"error": {"message": "Invalid API key"}})
            return False
        return True

    def do_GET(self):
        if self._authorised():
            self._send(200, {"object": "list", "data": [{"id": "tiny", "object": "model"}]})

    def do_POST(self):
        import torch

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self._authorised():
            return
        ids = body["prompt"] if isinstance(body["prompt"], list) else self.tok(body["prompt"])["input_ids"]
        with torch.inference_mode():
            out = self.model.generate(torch.tensor([ids]), max_new_tokens=body["max_tokens"], do_sample=body["temperature"] > 0,
                                      temperature=body["temperature"] or None, top_p=body["top_p"], pad_token_id=0)
        new = out[0, len(ids):].tolist()
        reason = "stop" if self.tok.eos_token_id in new else "length"
        self._send(200, {"choices": [{"text": self.tok.decode(new, skip_special_tokens=True), "finish_reason": reason}],
                         "usage": {"prompt_tokens": len(ids), "completion_tokens": len(new)}})


@pytest.fixture(scope="module")
def keyed_server():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _KeyedUnseeded.tok = AutoTokenizer.from_pretrained(TINY)
    _KeyedUnseeded.model = AutoModelForCausalLM.from_pretrained(TINY).eval()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _KeyedUnseeded)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_401_without_or_with_a_wrong_key(keyed_server, monkeypatch):
    from shisa_spec.generation.backends.openai import BackendError

    with pytest.raises(BackendError) as e:
        _backend(keyed_server, "tiny").connect()
    assert str(e.value) == f"{keyed_server} refused GET /models with HTTP 401 (Invalid API key): it sent no API key (pass --api-key-env NAME)"
    monkeypatch.setenv("SHISA_TEST_KEY", "wrong")
    with pytest.raises(BackendError) as e:
        _backend(keyed_server, "tiny", api_key_env="SHISA_TEST_KEY").connect()
    assert str(e.value).endswith("HTTP 401 (Invalid API key): it sent the key in $SHISA_TEST_KEY")


def test_a_server_that_ignores_seeds_is_detected_and_said(keyed_server, monkeypatch):
    monkeypatch.setenv("SHISA_TEST_KEY", "sesame")
    b = _backend(keyed_server, "tiny", api_key_env="SHISA_TEST_KEY").connect()
    assert b.seeds == "ignored" and b.prompt_as == "ids" and b.dialect == "openai"
    assert "seed" in b.not_honoured() and "seed" in b.cache_material()["not_honoured"]
    assert "the server ignores seeds: samples are not reproducible" in b.summary()


def test_samples_through_the_chat_endpoint_have_their_seeds_and_the_servers_template(server, tmp_path):
    """--samples 3 over /v1/chat/completions: a record per (case, sample) with the in-process sample seeds,
    and the server's chat template (applied there) gives the prompt the local rendering gives."""
    from shisa_spec.generation.engine import sample_seed

    cases = ("en-first-president", "ja-apples-remaining")
    proc, transcript = spec(tmp_path, server.url, "--endpoint", "chat", "--samples", "3", "--concurrency", "2",
                            "-k", " or ".join(cases))
    got = outcomes(proc.stdout_text)
    assert len(got) == sum(len(SUITE.case(c).checks) for c in cases) and "ERROR" not in got.values(), proc.stdout_text[-3000:]
    recs = [json.loads(l) for l in transcript.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["case"], r["sample"]) for r in recs) == [(c, i) for c in sorted(cases) for i in range(3)]
    assert all(r["sample_seed"] == sample_seed(0, r["case"], r["sample"]) for r in recs)
    served = recs[0]["provenance"]["served"]
    assert served["endpoint"] == "/chat/completions" and served["prompt_as"] == "messages"
    assert "prompt_token_mismatch" not in served, served
    assert f"served by {server.url}/chat/completions" in proc.stdout_text
    assert "2 cases, 6 samples (3 per case), 6 generated in 6 request(s) to the server, 0 from cache" in proc.stdout_text


def test_endpoint_chat_needs_the_openai_backend(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "--model", str(TINY), "--endpoint", "chat"],
                          cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 4
    assert "--endpoint chat needs --backend openai (the in-process backend renders every prompt itself)" in proc.stderr


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_a_served_judge_grades_the_judge_check_and_a_replay_needs_no_judge(server, tmp_path, endpoint):
    """The judge asked through the backend (the same `transformers serve`; by default through
    /v1/chat/completions with no local tokenizer, or /v1/completions rendered by --judge-tokenizer): its
    replies land in the transcript, the judge check is judged (not skipped), and a replay without any
    judge judges alike."""
    from shisa_spec.spec.checks.judge import judge_key

    case = SUITE.case("ja-explain-llm")
    rubric = next(k for k in case.checks if k.check == "judge").params["rubric"]
    how = ["--judge-endpoint", "completions", "--judge-tokenizer", str(TINY)] if endpoint == "completions" else []
    proc, transcript = spec(tmp_path, server.url, "--samples", "2", "-k", case.id,
                            "--judge-model", str(TINY), "--judge-base-url", server.url, *how)
    got = outcomes(proc.stdout_text)
    assert len(got) == len(case.checks) and got[f"test_spec[{case.id}.explanation-judged]"] in ("PASSED", "FAILED"), proc.stdout_text[-3000:]
    recs = [json.loads(l) for l in transcript.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 2
    for r in recs:
        entry = r["judge"][judge_key(rubric)]
        assert entry["model"] == str(TINY) and entry["base_url"] == server.url and entry["endpoint"] == endpoint and isinstance(entry["reply"], str)
        assert rubric in entry["prompt"] and r["output"].strip()[:40] in entry["prompt"]
    replayed = replay(transcript, "-k", case.id, "--report", str(tmp_path / "r.html"))
    assert outcomes(replayed.stdout) == got, replayed.stdout[-2000:]
    assert f"Judge (model-graded checks): {TINY} at {server.url}, judge prompt v1, 2 replies" in (tmp_path / "r.html").read_text(encoding="utf-8")

"""An OpenAI-compatible HTTP backend: the spec's requests sent to a served model (vLLM, SGLang, TGI, llama.cpp, transformers serve).

By default (``endpoint="completions"``) prompts are rendered locally with the model's own chat
template (the document's system-message quirk included) and POSTed to ``/v1/completions``, so the
server sees exactly the text the in-process engine would. With ``endpoint="chat"`` the case's
messages go to ``/v1/chat/completions`` and the server applies its own chat template, which is what a
served product's clients get; a prompt-token count that differs from the local rendering is reported
(the served template is not the local one). One HTTP request per Request (its own seed), at most
``concurrency`` in flight (threads); each finished sample goes to ``on_batch`` at once, so an
interrupted run keeps it.

The client is the standard library's ``urllib``: a handful of blocking JSON POSTs from a thread pool
need no more, and the project gains no dependency. ``connect()`` asks the server what it is
(``/v1/models``, its ``server`` header, ``system_fingerprint``), finds which sampling parameters it
refuses (then drops them and records them as not honoured) and whether it honours seeds (one probe
sent twice): all of it goes into provenance and the cache key.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from shisa_spec.generation.engine import Request, Result, SampleKey
from shisa_spec.spec.cases import GenerationSettings

BACKEND_VERSION = "2"  # bump when a change alters what is sent (part of the cache key)
RETRY_STATUS = (429, 500, 502, 503, 504)
SEED_MOD = 2**31  # llama.cpp takes a uint32 seed, others int64: one range every server accepts
OPTIONAL_FIELDS = ("repetition_penalty", "repeat_penalty", "seed", "top_p")
PROBE_TOKENS = 12
ENDPOINTS = ("completions", "chat")
MAX_RETRY_AFTER_S = 30.0


class BackendError(RuntimeError):
    """The server cannot serve the run; the message is one line naming the server and what to do."""


@dataclass(frozen=True)
class OpenAIOptions:
    base_url: str
    served_model: str
    api_key_env: str | None = None
    concurrency: int = 4
    timeout_s: float = 300.0
    retries: int = 4
    backoff_s: float = 0.5
    endpoint: str = "completions"  # or "chat": /v1/chat/completions with the case's messages


def _finish(reason: str | None) -> str | None:
    return {"stop": "eos", "eos": "eos", "eos_token": "eos", "length": "length"}.get(reason or "")


class OpenAIBackend:
    """``generate(requests, on_batch)`` over an OpenAI-compatible ``/v1/completions`` endpoint."""

    def __init__(self, options: OpenAIOptions, tokenizer: Any):
        """``tokenizer`` renders and counts prompts; None only with ``endpoint="chat"`` (the server renders, nothing is counted here)."""
        self.options = options
        self.tokenizer = tokenizer
        self.base = options.base_url.rstrip("/")
        if not self.base.endswith("/v1"):
            self.base += "/v1"
        self.batches_run = 0
        self.dialect = "openai"  # or "transformers": transformers serve takes sampling settings as generation_config
        self.dropped: set[str] = set()
        self.server: dict[str, Any] = {}
        self.seeds = "unknown"  # "honoured", "ignored", or "unknown" (no sampled probe possible)
        self.prompt_token_mismatch: str | None = None
        if options.endpoint not in ENDPOINTS:
            raise BackendError(f"--endpoint {options.endpoint}: expected one of {', '.join(ENDPOINTS)}")
        self.chat = options.endpoint == "chat"
        if tokenizer is None and not self.chat:
            raise BackendError("/v1/completions needs the model's tokenizer to render prompts (--model, or --judge-tokenizer for a judge)")
        self.path = "/chat/completions" if self.chat else "/completions"
        # the chat endpoint sends messages; completions sends token ids where the server takes them (vLLM, SGLang, llama.cpp), else "text"
        self.prompt_as = "messages" if self.chat else "ids"
        self.retried = 0
        self._lock = threading.Lock()

    # ---- HTTP ----

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.options.api_key_env:
            key = os.environ.get(self.options.api_key_env)
            if not key:
                raise BackendError(f"--api-key-env {self.options.api_key_env}: that environment variable is not set")
            h["Authorization"] = f"Bearer {key}"
        return h

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              status_retries: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """JSON in, JSON and headers out; retries 429/5xx (at most ``status_retries`` times), timeouts and
        dropped connections with backoff. A server that keeps answering 429/5xx raises _ServerFailing."""
        url = self.base + path
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        last = ""
        statuses = 0
        retry_after: float | None = None
        for attempt in range(self.options.retries + 1):
            if attempt:
                # the server's Retry-After (seconds) where it sends one, else exponential backoff
                delay = retry_after if retry_after is not None else self.options.backoff_s * 2 ** (attempt - 1)
                with self._lock:
                    self.retried += 1
                time.sleep(min(delay, MAX_RETRY_AFTER_S))
            retry_after = None
            req = urllib.request.Request(url, data=data, method=method, headers=self._headers())
            try:
                with urllib.request.urlopen(req, timeout=self.options.timeout_s) as resp:
                    return json.loads(resp.read().decode("utf-8")), {k.lower(): v for k, v in resp.headers.items()}
            except urllib.error.HTTPError as e:
                text = e.read().decode("utf-8", "replace")
                if e.code in (401, 403):
                    how = f"the key in ${self.options.api_key_env}" if self.options.api_key_env else "no API key (pass --api-key-env NAME)"
                    raise BackendError(f"{self.options.base_url} refused {method} {path} with HTTP {e.code} ({_detail(text)}): it sent {how}") from None
                if e.code in RETRY_STATUS:
                    last = f"HTTP {e.code} ({_detail(text)})"
                    retry_after = _retry_after(e.headers.get("Retry-After") if e.headers else None)
                    statuses += 1
                    if status_retries is not None and statuses > status_retries:
                        raise _ServerFailing(f"{url} answered {last} {statuses} times", last)
                    continue
                raise _HTTPStatus(e.code, _detail(text)) from None
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError, OSError) as e:
                reason = getattr(e, "reason", e)
                if isinstance(reason, ConnectionRefusedError):
                    last = "connection refused"
                elif isinstance(reason, (socket.timeout, TimeoutError)):
                    last = f"no answer within {self.options.timeout_s:g} s"
                else:
                    last = f"{type(reason).__name__}: {reason}"
                continue
            except json.JSONDecodeError:
                raise BackendError(f"{url} answered with something that is not JSON: is --base-url an OpenAI-compatible server?") from None
        hint = ": is the server running at --base-url?" if last == "connection refused" else ""
        message = f"cannot reach {url} after {self.options.retries + 1} tries ({last}){hint}"
        raise _ServerFailing(message, last) if last.startswith("HTTP ") else BackendError(message)

    # ---- connection: what the server is and what it honours ----

    def connect(self) -> "OpenAIBackend":
        """Read /v1/models and probe the server. A model list that names other models is final (the model is
        not served); a list that fails or is empty (transformers serve 5.17 without a hub cache answers 500)
        is recorded, and the probe then decides whether the model answers."""
        models_error = None
        try:
            models, headers = self._call("GET", "/models", status_retries=1)
        except _HTTPStatus as e:
            models, headers, models_error = {}, {}, f"HTTP {e.code} ({e.detail})"
        except _ServerFailing as e:
            models, headers, models_error = {}, {}, e.last
        entries = [m for m in models.get("data") or [] if isinstance(m, dict)]
        ids = [m.get("id") for m in entries]
        if ids and self.options.served_model not in ids:
            raise BackendError(
                f"{self.options.base_url} does not serve model {self.options.served_model!r}; it serves: {', '.join(map(str, ids))} (pass --served-model NAME)"
            )
        entry = next((m for m in entries if m.get("id") == self.options.served_model), {"id": self.options.served_model, "listed": False})
        self.server = {
            "base_url": self.options.base_url,
            "served_model": self.options.served_model,
            # what names the served weights; created/status change between restarts
            "model_entry": {k: v for k, v in entry.items() if k not in ("created", "status")},
            "server": headers.get("server"),
        }
        if models_error:
            self.server["models_error"] = models_error
        probe = self._probe_request(seed=1234)
        try:
            first = self._complete(probe)
        except BackendError as e:
            if models_error:
                raise BackendError(f"{self.base}/models failed ({models_error}) and the probe request failed too: {e}") from None
            raise
        second = self._complete(probe)
        self.server["system_fingerprint"] = first.extra.get("system_fingerprint")
        other = self._complete(self._probe_request(seed=98765))
        if first.output != second.output:
            self.seeds = "ignored"
        elif other.output != first.output:
            self.seeds = "honoured"
        return self

    def _probe_request(self, seed: int) -> Request:
        rendered = (getattr(self.tokenizer, "bos_token", None) or "") + "Hello, "
        return Request("_probe", rendered, GenerationSettings(PROBE_TOKENS, True, 1.0, 1.0, 1.0), seed,
                       messages=(("user", "Hello, "),))

    # ---- one request ----

    def _prompt(self, rendered: str, exact: list[int]) -> list[int] | str:
        """The rendered prompt (whose ids are ``exact``) as the server should see it.

        Token ids are exact. A server that takes only text tokenizes it with special tokens on: a
        rendered prompt that already starts with BOS is sent without it where that re-tokenizes to
        the same ids, else as it is (the server then adds a second BOS; the token count check says so).
        """
        if self.prompt_as == "ids":
            return exact
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and rendered.startswith(bos) and self.tokenizer(rendered[len(bos):])["input_ids"] == exact:
            return rendered[len(bos):]
        return rendered

    def _body(self, req: Request, ids: list[int] | None) -> dict[str, Any]:
        s = req.settings
        body: dict[str, Any] = {"model": self.options.served_model, "max_tokens": s.max_new_tokens, "stream": False}
        if self.chat:
            if not req.messages:
                raise BackendError(f"case {req.case_id!r} has no chat messages to send to {self.base}/chat/completions")
            body["messages"] = [{"role": role, "content": content} for role, content in req.messages]
        else:
            body["prompt"] = self._prompt(req.rendered, ids)
        temperature = s.temperature if s.do_sample else 0.0
        top_p = s.top_p if s.do_sample else 1.0
        if self.dialect == "transformers":
            # transformers serve refuses unknown fields and samples only where its generation config says so
            body["generation_config"] = json.dumps({
                "do_sample": s.do_sample, "temperature": s.temperature, "top_p": s.top_p,
                "repetition_penalty": s.repetition_penalty, "max_new_tokens": s.max_new_tokens, "use_cache": True,
            })
            body["seed"] = req.seed % SEED_MOD
            return body
        body.update({"temperature": temperature, "top_p": top_p, "seed": req.seed % SEED_MOD,
                     "repetition_penalty": s.repetition_penalty,  # vLLM, SGLang, TGI
                     "repeat_penalty": s.repetition_penalty})  # llama.cpp server
        for f in self.dropped:
            body.pop(f, None)
        return body

    def _complete(self, req: Request) -> Result:
        start = time.perf_counter()
        # the rendered prompt's ids, encoded once: sent (completions) and counted against the server's count
        ids = self.tokenizer(req.rendered, add_special_tokens=False)["input_ids"] if self.tokenizer is not None else None
        while True:
            body = self._body(req, ids)
            try:
                data, _ = self._call("POST", self.path, body)
                break
            except _HTTPStatus as e:
                if e.code in (400, 404) and ("model" in e.detail.lower() and ("not found" in e.detail.lower() or "does not exist" in e.detail.lower() or "pinned" in e.detail.lower())):
                    raise BackendError(f"{self.options.base_url} does not serve model {self.options.served_model!r}: HTTP {e.code} ({e.detail})") from None
                refused = [f for f in OPTIONAL_FIELDS if f in body and f in e.detail]
                with self._lock:
                    if e.code in (400, 422) and self.prompt_as == "ids" and not self.chat and "prompt" in e.detail.lower():
                        self.prompt_as = "text"
                        continue
                    if "Unexpected fields in the request" in e.detail and self.dialect != "transformers":
                        self.dialect = "transformers"
                        continue
                    if e.code in (400, 422) and refused:
                        self.dropped.update(refused)
                        continue
                raise BackendError(f"{self.base}{self.path} answered HTTP {e.code} for case {req.case_id!r}: {e.detail}") from None
        choice = (data.get("choices") or [{}])[0]
        reason = _finish(choice.get("finish_reason"))
        text = (choice.get("message") or {}).get("content") if self.chat else choice.get("text")
        if reason is None or not isinstance(text, str):
            raise BackendError(f"{self.base}{self.path} gave case {req.case_id!r} no usable choice (finish_reason {choice.get('finish_reason')!r})")
        usage = data.get("usage") or {}
        server_prompt = usage.get("prompt_tokens")
        # no local tokenizer (a chat-endpoint judge): the server's count is the only one
        local_prompt = len(ids) if ids is not None else int(server_prompt or 0)
        if isinstance(server_prompt, int) and server_prompt != local_prompt and self.prompt_token_mismatch is None and req.case_id != "_probe":
            what = "the server's chat template gave" if self.chat else "the server counted"
            self.prompt_token_mismatch = f"case {req.case_id}: {what} {server_prompt} prompt tokens, the local rendering {local_prompt}"
        return Result(
            case_id=req.case_id, output=text.strip(), finish_reason=reason,
            new_tokens=int(usage.get("completion_tokens") or 0), prompt_tokens=local_prompt,
            seconds=time.perf_counter() - start, batch_size=1, sample=req.sample,
            extra={"system_fingerprint": data.get("system_fingerprint"), "server_seed": body.get("seed")},
        )

    # ---- the engine interface ----

    def generate(self, requests: Sequence[Request], on_batch: Callable[[list[Result]], None] | None = None) -> dict[SampleKey, Result]:
        """Results by (case id, sample); ``on_batch`` sees each as it finishes; the first failure stops the run (finished ones kept)."""
        out: dict[SampleKey, Result] = {}
        todo = sorted(requests, key=lambda r: (r.case_id, r.sample))
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency), thread_name_prefix="shisa-openai") as pool:
            pending: set[Future] = {pool.submit(self._complete, r) for r in todo}
            error: BaseException | None = None
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.cancelled():
                        continue
                    exc = fut.exception()
                    if exc is not None:
                        if error is None:
                            error = exc
                            for p in pending:
                                p.cancel()
                        continue
                    result = fut.result()
                    self.batches_run += 1
                    if on_batch is not None:
                        on_batch([result])
                    out[result.key] = result
            if error is not None:
                raise error
        return out

    # ---- what the run reports ----

    def cache_material(self) -> dict[str, Any]:
        """What the cache key takes from the server: what it is, what it refused, how requests are sent."""
        return {"backend": "openai", "backend_version": BACKEND_VERSION, **self.server, "endpoint": self.path,
                "dialect": self.dialect, "prompt_as": self.prompt_as, "not_honoured": sorted(self.not_honoured())}

    def not_honoured(self) -> list[str]:
        # the penalty goes out in two spellings, one meant for each kind of server: lost only when both were refused
        penalty = {"repetition_penalty", "repeat_penalty"}
        out = set(self.dropped) - penalty
        if self.dialect == "openai" and penalty <= self.dropped:
            out.add("repetition_penalty")
        if self.seeds == "ignored":
            out.add("seed")
        return sorted(out)

    def provenance(self) -> dict[str, Any]:
        prov = {**self.cache_material(), "seeds": self.seeds}
        if self.prompt_token_mismatch:
            prov["prompt_token_mismatch"] = self.prompt_token_mismatch
        return prov

    def summary(self) -> str:
        line = f"served by {self.options.base_url}{self.path if self.chat else ''} ({self.options.served_model}, {self.server.get('server') or 'unknown server'})"
        if self.retried:
            line += f"; {self.retried} request(s) retried"
        if self.seeds == "ignored":
            line += "; the server ignores seeds: samples are not reproducible"
        elif self.dialect == "transformers" and self.options.concurrency > 1:
            line += "; transformers serve seeds one global RNG per request: samples are reproducible only with --concurrency 1"
        if self.server.get("models_error"):
            line += f"; {self.base}/models failed ({self.server['models_error']}), the model answered anyway"
        nh = [f for f in self.not_honoured() if f != "seed"]
        if nh:
            line += f"; not honoured: {', '.join(nh)}"
        if self.prompt_token_mismatch:
            line += f"; prompt tokens differ ({self.prompt_token_mismatch})"
        return line


class _ServerFailing(BackendError):
    """The server is up but keeps answering 429/5xx; ``last`` is its last answer in a few words."""

    def __init__(self, message: str, last: str):
        super().__init__(message)
        self.last = last


class _HTTPStatus(Exception):
    def __init__(self, code: int, detail: str):
        super().__init__(f"HTTP {code}: {detail}")
        self.code = code
        self.detail = detail


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from model servers and is treated as absent)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _detail(text: str) -> str:
    """The server's error message in one line (OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the body)."""
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            err = data.get("error")
            msg = err.get("message") if isinstance(err, dict) else err or data.get("detail") or data.get("message")
            if msg:
                text = msg if isinstance(msg, str) else json.dumps(msg)
    except ValueError:
        pass
    return " ".join(text.split())[:300]

"""Asking the judge model for the ``judge`` checks, after generation and before judging.

The judge is any generation backend: a served model (``--judge-base-url``, the OpenAI backend) or a
model loaded in this process. A served judge is asked through ``/v1/chat/completions`` by default
(every server and hosted API has it; the server applies the judge's template, no tokenizer is loaded
here), or through ``/v1/completions`` with the prompt rendered here by ``--judge-tokenizer``; an
in-process judge's prompt is rendered with its own chat template. Answers are greedy; the raw reply, the judge's model and the prompt go into the record
(``record["judge"][judge_key(rubric)]``), so a replayed transcript judges without the judge model.
Replies are cached under a key holding the judge's identity (model, tokenizer, chat template,
server), the rendered prompt and its settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from shisa_spec.generation import loader, prompting
from shisa_spec.generation.cache import GenerationCache, cache_key
from shisa_spec.generation.engine import Engine, Request
from shisa_spec.spec.cases import GenerationSettings
from shisa_spec.spec.checks.judge import JUDGE_PROMPT_VERSION, judge_key, judge_prompt

JUDGE_SYSTEM = "You are a strict, fair grader. You answer in the format you are asked for."


@dataclass(frozen=True)
class JudgeOptions:
    model: str  # hub id or local dir (in-process), or the served model's name (with base_url)
    base_url: str | None = None
    tokenizer: str | None = None  # tokenizer and chat template for the judge prompt (default: model)
    api_key_env: str | None = None
    device: str = "cuda"
    max_new_tokens: int = 96
    endpoint: str = "chat"  # a served judge: "chat" (messages; no local tokenizer) or "completions" (rendered with `tokenizer`)

    @property
    def settings(self) -> GenerationSettings:
        return GenerationSettings(self.max_new_tokens, False, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class JudgeItem:
    case_id: str
    check_id: str
    question: str
    answer: str
    rubric: str


class Judge:
    def __init__(self, options: JudgeOptions, cache: GenerationCache | None = None):
        self.options = options
        self.cache = cache
        self.backend: Any = None
        self.tokenizer: Any = None
        self.identity: dict[str, Any] = {}
        self.asked = 0

    def _ensure(self) -> None:
        if self.backend is not None:
            return
        o = self.options
        if o.base_url:
            from shisa_spec.generation.backends.openai import OpenAIBackend, OpenAIOptions

            local: dict[str, Any] = {}  # the chat endpoint renders on the server: no tokenizer here
            if o.endpoint != "chat":
                prepared = loader.prepare(loader.LoadOptions(model=o.tokenizer or o.model, device="cpu"))
                self.tokenizer = prepared.tokenizer
                local = {"tokenizer": prepared.provenance.get("tokenizer"), "chat_template": prepared.provenance.get("chat_template")}
            self.backend = OpenAIBackend(OpenAIOptions(o.base_url, o.model, o.api_key_env, endpoint=o.endpoint), self.tokenizer).connect()
            self.identity = {**local, "served": self.backend.cache_material()}
        else:
            lopts = loader.LoadOptions(model=o.model, device=o.device)
            prepared = loader.prepare(lopts)
            self.tokenizer = prepared.tokenizer
            self.backend = Engine(loader.load(lopts, prepared), batch_size=8)
            self.identity = dict(prepared.provenance)

    def describe(self) -> dict[str, Any]:
        return {"model": self.options.model, "base_url": self.options.base_url, "prompt_version": JUDGE_PROMPT_VERSION}

    def ask(self, items: Sequence[JudgeItem]) -> dict[tuple[str, str], dict[str, Any]]:
        """Entries {"model", "prompt", "reply", ...} by (case id, check id); cached replies are not asked again."""
        if not items:
            return {}
        self._ensure()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        todo: list[Request] = []
        meta: dict[str, tuple[JudgeItem, str, str]] = {}
        for it in items:
            prompt = judge_prompt(it.question, it.answer, it.rubric)
            messages = (("system", JUDGE_SYSTEM), ("user", prompt))
            # with no local tokenizer (a chat-endpoint judge) the messages themselves are what is sent and keyed
            rendered = prompting.render(self.tokenizer, prompt, "chat", JUDGE_SYSTEM) if self.tokenizer is not None else json.dumps(messages, ensure_ascii=False)
            key = cache_key({"model": self.options.model, **self.identity}, rendered, self.options.settings.as_dict(), 0,
                            {"judge": JUDGE_PROMPT_VERSION, "judge_identity": self.identity})
            rid = f"{it.case_id}#{it.check_id}"
            hit = self.cache.get(key) if self.cache else None
            if hit is not None:
                out[(it.case_id, it.check_id)] = self._entry(it, prompt, hit["output"], from_cache=True)
                continue
            meta[rid] = (it, prompt, key)
            todo.append(Request(rid, rendered, self.options.settings, 0, messages=messages))
        if todo:
            self.asked += len(todo)
            for res in self.backend.generate(todo).values():
                it, prompt, key = meta[res.case_id]
                entry = self._entry(it, prompt, res.output)
                out[(it.case_id, it.check_id)] = entry
                if self.cache:
                    self.cache.put(key, {"case": res.case_id, "output": res.output, "finish_reason": res.finish_reason, "judge": entry})
        return out

    def _entry(self, it: JudgeItem, prompt: str, reply: str, from_cache: bool = False) -> dict[str, Any]:
        return {"model": self.options.model, "base_url": self.options.base_url, "endpoint": self.options.endpoint if self.options.base_url else None,
                "prompt_version": JUDGE_PROMPT_VERSION,
                "rubric_key": judge_key(it.rubric), "prompt": prompt, "reply": reply, "from_cache": from_cache}

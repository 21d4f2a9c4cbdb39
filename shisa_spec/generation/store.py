"""Where a spec test gets its case's output: a replayed transcript, the generation cache, or the model.

Live runs collect, then batch: the first test that needs an output triggers generation for
every selected case this process owns, in a handful of batched ``generate()`` calls. Under
pytest-xdist the selected cases are split between workers (one GPU each); a worker that needs a
case owned by another waits for it in a shared exchange folder, or claims and generates it itself
if nobody has, so every case is generated once overall.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from shisa_spec.generation import prompting
from shisa_spec.generation.cache import GenerationCache, cache_key
from shisa_spec.spec.cases import Case, Suite
from shisa_spec.generation.engine import ENGINE_VERSION, Engine, Request, Result, case_seed


class MissingCase(LookupError):
    pass


@dataclass(frozen=True)
class RunOptions:
    seed: int = 0
    prompt_style: str | None = None  # None: each case's own style
    system_prompt: str | None = None
    batch_size: int = 16
    static_cache: bool = False
    openai: Any = None  # backends.openai.OpenAIOptions: send requests to a server instead of the in-process engine
    judge: Any = None  # judging.JudgeOptions: the judge model the `judge` checks ask

    def style_for(self, case: Case) -> str:
        return self.prompt_style or case.prompt_style


class Exchange:
    """A folder shared by xdist workers: claim a case before generating it, publish its record after."""

    def __init__(self, root: Path, wait_s: float = 3600.0):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.wait_s = wait_s

    def _claim_path(self, case_id: str) -> Path:
        return self.root / f"{case_id}.claim"

    def _result_path(self, case_id: str) -> Path:
        return self.root / f"{case_id}.json"

    def claim(self, case_id: str) -> bool:
        try:
            fd = os.open(self._claim_path(case_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True

    def publish(self, record: dict[str, Any]) -> None:
        tmp = self._result_path(record["case"]).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self._result_path(record["case"]))

    def fetch(self, case_id: str) -> dict[str, Any] | None:
        p = self._result_path(case_id)
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None

    def _holder_alive(self, case_id: str) -> bool:
        try:
            pid = int(self._claim_path(case_id).read_text() or "0")
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False

    def wait(self, case_id: str) -> dict[str, Any] | None:
        """The record once its claimer publishes it; None if the claimer died or time ran out."""
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            rec = self.fetch(case_id)
            if rec is not None:
                return rec
            if not self._holder_alive(case_id):
                self._claim_path(case_id).unlink(missing_ok=True)
                return None
            time.sleep(0.2)
        return None


class OutputStore:
    def __init__(
        self,
        suite: Suite,
        needed: Sequence[str],
        *,
        replay: dict[str, dict[str, Any]] | None = None,
        prepare: Callable[[], Any] | None = None,
        load: Callable[[Any], Any] | None = None,
        options: RunOptions = RunOptions(),
        cache: GenerationCache | None = None,
        exchange: Exchange | None = None,
        worker: tuple[int, int] = (0, 1),
        progress: Callable[[str, dict[str, Any]], None] | None = None,
    ):
        self.suite = suite
        self.needed = [c.id for c in suite.cases if c.id in set(needed)]
        self.replay = replay
        self._prepare = prepare
        self._load = load
        self.prepared: Any = None
        self.options = options
        self.cache = cache
        self.exchange = exchange
        self.worker = worker
        self.progress = progress  # (event, info): load, loaded, generate, batch, done
        self.loaded: Any = None
        self.engine: Any = None  # engine.Engine, or a backend with the same generate()
        self.judge: Any = None  # judging.Judge, made on first use
        self.records: dict[str, dict[str, Any]] = {}
        self._started = False

    @property
    def generate_calls(self) -> int:
        return self.engine.batches_run if self.engine else 0

    def get(self, case_id: str) -> dict[str, Any]:
        """The transcript record for a case (keys: case, output, finish_reason, ...)."""
        if case_id in self.records:
            return self.records[case_id]
        if self.replay is not None:
            rec = self.replay.get(case_id)
            if rec is None:
                raise MissingCase(f"case {case_id!r} is not in the replayed transcript")
            self.records[case_id] = rec
            return rec
        if not self._started:
            self._started = True
            index, count = self.worker
            mine = self.needed[index::count]
            if self.exchange is not None:
                mine = [c for c in mine if self.exchange.claim(c)]
            self._produce(mine)
        if case_id not in self.records:
            self._obtain_foreign(case_id)
        return self.records[case_id]

    def _obtain_foreign(self, case_id: str) -> None:
        assert self.exchange is not None or case_id not in self.needed, case_id
        if self.exchange is None:
            self._produce([case_id])
            return
        while case_id not in self.records:
            rec = self.exchange.fetch(case_id)
            if rec is None and not self.exchange.claim(case_id):
                rec = self.exchange.wait(case_id)
            elif rec is None:
                self._produce([case_id])
                continue
            if rec is not None:
                self.records[case_id] = rec

    def _ensure_prepared(self) -> Any:
        """Tokenizer and provenance: enough for prompts and cache keys, without reading the weights."""
        if self.prepared is None:
            assert self._prepare is not None, "a live run needs a loader"
            self.prepared = self._prepare()
        return self.prepared

    def _emit(self, event: str, **info: Any) -> None:
        if self.progress is not None:
            self.progress(event, info)

    def _ensure_engine(self) -> Any:
        if self.engine is None and self.options.openai is not None:
            from shisa_spec.generation.backends.openai import OpenAIBackend

            self.engine = OpenAIBackend(self.options.openai, self._ensure_prepared().tokenizer).connect()
        if self.engine is None:
            assert self._load is not None, "a live run needs a loader"
            prepared = self._ensure_prepared()
            start = time.perf_counter()
            self._emit("load", model=prepared.provenance.get("model") if isinstance(prepared.provenance, dict) else None)
            self.loaded = self._load(prepared)
            self._emit("loaded", seconds=time.perf_counter() - start)
            self.engine = Engine(self.loaded, batch_size=self.options.batch_size, static_cache=self.options.static_cache)
        return self.engine

    def _case_request(self, case: Case) -> Request:
        style = self.options.style_for(case)
        system = self.options.system_prompt if self.options.system_prompt is not None else case.system_prompt
        rendered = prompting.render(self._ensure_prepared().tokenizer, case.prompt, style, system)
        return Request(case.id, rendered, case.generation, case_seed(self.options.seed, case.id))

    def _produce(self, case_ids: Sequence[str]) -> None:
        if not case_ids:
            return
        prepared = self._ensure_prepared()
        requests = [self._case_request(self.suite.case(c)) for c in case_ids]
        todo: list[Request] = []
        keys: dict[str, str] = {}
        if self.options.openai is not None:  # the key takes what the server reports, so ask it first
            extra = self._ensure_engine().cache_material()
        else:
            extra = {"engine": ENGINE_VERSION, "batch_size": self.options.batch_size, "static_cache": self.options.static_cache}
        for req in requests:
            key = cache_key(prepared.provenance, req.rendered, req.settings.as_dict(), req.seed, extra)
            keys[req.case_id] = key
            hit = self.cache.get(key) if self.cache else None
            if hit is not None:
                result = Result(hit["case"], hit["output"], hit["finish_reason"], hit.get("new_tokens", 0), hit.get("prompt_tokens", 0), from_cache=True)
                self._record(req, result)
            else:
                todo.append(req)
        by_id = {r.key: r for r in todo}

        counts = {"batch": 0, "done": 0, "tokens": 0}

        def keep(done: list[Result]) -> None:  # record and cache each batch at once: an interrupt loses no finished batch
            counts["batch"] += 1
            counts["done"] += len(done)
            counts["tokens"] += sum(r.new_tokens for r in done)
            self._emit("batch", total=len(todo), **counts)
            for result in done:
                self._record(by_id[result.key], result)
                if self.cache:
                    self.cache.put(keys[result.case_id], {k: v for k, v in self.records[result.case_id].items() if k != "from_cache"})

        if todo:
            engine = self._ensure_engine()
            self._emit("generate", total=len(todo), **counts)
            engine.generate(todo, on_batch=keep)
            self._emit("done", total=len(todo), **counts)
        self._attach_judgements(case_ids)

    def _attach_judgements(self, case_ids: Sequence[str]) -> None:
        """Ask the judge model about each `judge` check's rubric; its raw reply goes into the record (and the cache)."""
        if self.options.judge is None:
            return
        from shisa_spec.generation.judging import Judge, JudgeItem

        if self.judge is None:
            self.judge = Judge(self.options.judge, self.cache)
        items = [JudgeItem(c, spec.id, self.suite.case(c).prompt, self.records[c]["output"], spec.params["rubric"])
                 for c in case_ids if c in self.records for spec in self.suite.case(c).checks if spec.check == "judge"]
        touched = set()
        for (cid, _), entry in self.judge.ask(items).items():
            self.records[cid].setdefault("judge", {})[entry["rubric_key"]] = entry
            touched.add(cid)
        if self.exchange is not None:
            for cid in touched:
                self.exchange.publish(self.records[cid])

    def _record(self, req: Request, result: Result) -> None:
        case = self.suite.case(req.case_id)
        rec = {
            "case": req.case_id,
            "output": result.output,
            "finish_reason": result.finish_reason,
            "new_tokens": result.new_tokens,
            "prompt_tokens": result.prompt_tokens,
            "from_cache": result.from_cache,
            "prompt_style": self.options.style_for(case),
            "rendered_prompt": req.rendered,
            "seed": self.options.seed,
            "case_seed": req.seed,
            "generation": req.settings.as_dict(),
            "batch_size": result.batch_size,
            "seconds": round(result.seconds, 4),
            "provenance": (self.loaded or self.prepared).provenance,
        }
        if self.options.openai is not None and self.engine is not None:
            local = ("dtype", "device", "device_map", "quantize", "torch", "gpu", "capability")  # the tokenizer's host, not the server
            rec["provenance"] = {**{k: v for k, v in rec["provenance"].items() if k not in local}, "served": self.engine.provenance()}
        self.records[req.case_id] = rec
        if self.exchange is not None:
            self.exchange.publish(rec)

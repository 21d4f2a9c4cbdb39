"""Where a spec test gets its case's output: a replayed transcript, the generation cache, or the model.

Live runs collect, then batch: the first test that needs an output triggers generation for
every selected case this process owns, in a handful of batched ``generate()`` calls. A sampled case
gets ``samples`` samples (seeded by ``sample_seed``), a greedy one (``do_sample: false``) one; records,
cache entries and the exchange are kept per (case, sample). Under
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
from shisa_spec.generation.engine import ENGINE_VERSION, Engine, Request, Result, SampleKey, sample_seed


class MissingCase(LookupError):
    pass


@dataclass(frozen=True)
class RunOptions:
    seed: int = 0
    prompt_style: str | None = None  # None: each case's own style
    system_prompt: str | None = None
    batch_size: int = 16
    static_cache: bool = False
    samples: int = 1  # per sampled case; the pytest plugin's --samples default is DEFAULT_SAMPLES

    def samples_for(self, case: Case) -> int:
        return self.samples if case.generation.do_sample else 1

    engine: str = "auto"  # auto: the CUDA-graph engine where it runs the model on CUDA; graph; generate

    def engine_kind(self, provenance: dict[str, Any]) -> str:
        """The engine a run uses, known before loading (it is part of the cache key)."""
        if self.engine == "generate" or self.static_cache:
            return "generate"
        if self.engine == "graph":
            return "graph"
        on_cuda = str(provenance.get("device", "")).startswith("cuda")
        return "graph" if on_cuda and provenance.get("graph_engine") and provenance.get("quantize") == "none" else "generate"
    openai: Any = None  # backends.openai.OpenAIOptions: send requests to a server instead of the in-process engine
    judge: Any = None  # judging.JudgeOptions: the judge model the `judge` checks ask

    def style_for(self, case: Case) -> str:
        return self.prompt_style or case.prompt_style


DEFAULT_SAMPLES = 16  # README: "Choosing N" (power analysis)


class Exchange:
    """A folder shared by xdist workers: claim a case before generating it, publish each sample's record after."""

    def __init__(self, root: Path, wait_s: float = 3600.0):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.wait_s = wait_s

    def _claim_path(self, case_id: str) -> Path:
        return self.root / f"{case_id}.claim"

    def _result_path(self, case_id: str, sample: int) -> Path:
        return self.root / f"{case_id}.{sample}.json"

    def claim(self, case_id: str) -> bool:
        try:
            fd = os.open(self._claim_path(case_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True

    def publish(self, record: dict[str, Any]) -> None:
        final = self._result_path(record["case"], record["sample"])
        tmp = final.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, final)

    def fetch(self, case_id: str, samples: int) -> list[dict[str, Any]] | None:
        """All ``samples`` records of a case once every one is published, else None."""
        paths = [self._result_path(case_id, i) for i in range(samples)]
        if not all(p.exists() for p in paths):
            return None
        return [json.loads(p.read_text(encoding="utf-8")) for p in paths]

    def _holder_alive(self, case_id: str) -> bool:
        try:
            pid = int(self._claim_path(case_id).read_text() or "0")
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False

    def wait(self, case_id: str, samples: int) -> list[dict[str, Any]] | None:
        """The case's records once its claimer publishes them all; None if the claimer died or time ran out."""
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            rec = self.fetch(case_id, samples)
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
        memo: Any = None,
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
        self.engine: Any = None  # Engine, GraphEngine, or a backend with the same generate()
        self.judge: Any = None  # judging.Judge, made on first use
        self.records: dict[SampleKey, dict[str, Any]] = {}  # (case, sample) -> transcript record
        self._started = False
        self.memo = memo  # prepared.Memo: provenance and rendered prompts without loading the tokenizer
        self._rendered_new: dict[str, str] = {}
        self._memo_tokenizer: Any = None  # prepared.MemoTokenizer, for the served backend

    @property
    def generate_calls(self) -> int:
        return self.engine.batches_run if self.engine else 0

    def samples_of(self, case_id: str) -> list[dict[str, Any]] | None:
        """The case's sample records if every one is at hand, else None."""
        n = self.options.samples_for(self.suite.case(case_id))
        recs = [self.records.get((case_id, i)) for i in range(n)]
        return None if any(r is None for r in recs) else recs  # type: ignore[return-value]

    def get(self, case_id: str) -> list[dict[str, Any]]:
        """The case's transcript records, one per sample (keys: case, sample, output, finish_reason, ...)."""
        if self.replay is not None:
            recs = self.replay.get(case_id)
            if recs is None:
                raise MissingCase(f"case {case_id!r} is not in the replayed transcript")
            for i, rec in enumerate(recs):
                self.records[(case_id, i)] = rec
            return recs
        done = self.samples_of(case_id)
        if done is not None:
            return done
        if not self._started:
            self._started = True
            index, count = self.worker
            mine = self.needed[index::count]
            if self.exchange is not None:
                mine = [c for c in mine if self.exchange.claim(c)]
            self._produce(mine)
        done = self.samples_of(case_id)
        if done is None:
            self._obtain_foreign(case_id)
            done = self.samples_of(case_id)
        assert done is not None, case_id
        return done

    def _obtain_foreign(self, case_id: str) -> None:
        assert self.exchange is not None or case_id not in self.needed, case_id
        if self.exchange is None:
            self._produce([case_id])
            return
        n = self.options.samples_for(self.suite.case(case_id))
        while self.samples_of(case_id) is None:
            recs = self.exchange.fetch(case_id, n)
            if recs is None and not self.exchange.claim(case_id):
                recs = self.exchange.wait(case_id, n)
            elif recs is None:
                self._produce([case_id])
                continue
            if recs is not None:
                for rec in recs:
                    self.records[(case_id, rec["sample"])] = rec

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

            self.engine = OpenAIBackend(self.options.openai, self._served_tokenizer()).connect()
        if self.engine is None:
            assert self._load is not None, "a live run needs a loader"
            prepared = self._ensure_prepared()
            start = time.perf_counter()
            self._emit("load", model=prepared.provenance.get("model") if isinstance(prepared.provenance, dict) else None)
            self.loaded = self._load(prepared)
            self._emit("loaded", seconds=time.perf_counter() - start)
            if self.options.engine_kind(self.loaded.provenance) == "graph":
                from shisa_spec.generation.graph_engine import GraphEngine, unsupported

                why = unsupported(self.loaded)
                if why is not None:
                    from shisa_spec.generation.loader import ModelLoadError

                    raise ModelLoadError(f"--engine graph cannot run {self.loaded.options.model}: {why}; use --engine generate")
                # one fixed width per run: rows = cases per batch x samples per case, idle rows fill the rest
                width = self.options.batch_size * int(getattr(self.options, "samples", 1) or 1)
                self.engine = GraphEngine(self.loaded, width=width)
            else:
                self.engine = Engine(self.loaded, batch_size=self.options.batch_size, static_cache=self.options.static_cache)
        return self.engine

    def _served_tokenizer(self) -> Any:
        """The tokenizer for the served backend: through the memo where there is one (a fully cached run then
        never loads it), else the real one."""
        if self.memo is None:
            return self._ensure_prepared().tokenizer
        from shisa_spec.generation.prepared import MemoTokenizer

        self._memo_tokenizer = MemoTokenizer(self.memo, lambda: self._ensure_prepared().tokenizer)
        return self._memo_tokenizer

    def _save_encodings(self) -> None:
        tok = self._memo_tokenizer
        if tok is not None and tok.new:  # new encodings came from the real tokenizer, or the memo already had a provenance
            self.memo.save(self._provenance(), {}, tok.new)
            tok.new = {}

    def _memo_ready(self) -> bool:
        return self.prepared is None and self.memo is not None and self.memo.provenance is not None

    def _provenance(self) -> dict[str, Any]:
        if self.loaded is not None:
            return self.loaded.provenance
        return self.memo.provenance if self._memo_ready() else self._ensure_prepared().provenance

    def _case_requests(self, case: Case) -> list[Request]:
        from shisa_spec.generation.prepared import prompt_key

        style = self.options.style_for(case)
        system = self.options.system_prompt if self.options.system_prompt is not None else case.system_prompt
        pk = prompt_key(case.prompt, style, system)
        rendered = self.memo.rendered.get(pk) if self._memo_ready() else None
        if rendered is None:
            rendered = prompting.render(self._ensure_prepared().tokenizer, case.prompt, style, system)
            self._rendered_new[pk] = rendered
        seed = self.options.seed
        messages = tuple((m["role"], m["content"]) for m in prompting.messages_for(case.prompt, style, system))
        return [Request(case.id, rendered, case.generation, sample_seed(seed, case.id, i), sample=i, messages=messages)
                for i in range(self.options.samples_for(case))]

    def _produce(self, case_ids: Sequence[str]) -> None:
        if not case_ids:
            return
        requests = [r for c in case_ids for r in self._case_requests(self.suite.case(c))]
        if self.memo is not None and self.prepared is not None and (self._rendered_new or self.memo.provenance != self.prepared.provenance):
            self.memo.save(self.prepared.provenance, self._rendered_new)
            self._rendered_new = {}
        provenance = self._provenance()
        todo: list[Request] = []
        keys: dict[SampleKey, str] = {}
        if self.options.openai is not None:  # the key takes what the server reports, so ask it first
            extra = self._ensure_engine().cache_material()
            self._save_encodings()  # the probes' encodings: the next fully cached run needs no tokenizer
        else:
            extra = {"engine": ENGINE_VERSION, "batch_size": self.options.batch_size, "static_cache": self.options.static_cache,
                     "engine_kind": self.options.engine_kind(provenance)}
        for req in requests:
            key = cache_key(provenance, req.rendered, req.settings.as_dict(), req.seed, extra)
            keys[req.key] = key
            hit = self.cache.get(key) if self.cache else None
            if hit is not None:
                result = Result(hit["case"], hit["output"], hit["finish_reason"], hit.get("new_tokens", 0), hit.get("prompt_tokens", 0),
                                from_cache=True, sample=req.sample)
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
                    self.cache.put(keys[result.key], {k: v for k, v in self.records[result.key].items() if k != "from_cache"})

        if todo:
            engine = self._ensure_engine()
            self._emit("generate", total=len(todo), **counts)
            try:
                engine.generate(todo, on_batch=keep)
            finally:
                self._save_encodings()
            self._emit("done", total=len(todo), **counts)
        self._attach_judgements(case_ids)

    def _attach_judgements(self, case_ids: Sequence[str]) -> None:
        """Ask the judge model about each `judge` check's rubric; its raw reply goes into the record (and the cache)."""
        if self.options.judge is None:
            return
        from shisa_spec.generation.judging import Judge, JudgeItem

        if self.judge is None:
            self.judge = Judge(self.options.judge, self.cache)
        # one judge question per (case, sample, judge check); the item's id carries the sample key
        keyed = {f"{c}#{s}": (c, s) for (c, s) in self.records if c in set(case_ids)}
        items = [JudgeItem(rid, spec.id, self.suite.case(c).prompt, self.records[(c, s)]["output"], spec.params["rubric"])
                 for rid, (c, s) in keyed.items() for spec in self.suite.case(c).checks if spec.check == "judge"]
        touched = set()
        for (rid, _), entry in self.judge.ask(items).items():
            self.records[keyed[rid]].setdefault("judge", {})[entry["rubric_key"]] = entry
            touched.add(keyed[rid])
        if self.exchange is not None:
            for key in touched:
                self.exchange.publish(self.records[key])

    def _record(self, req: Request, result: Result) -> None:
        case = self.suite.case(req.case_id)
        rec = {
            "case": req.case_id,
            "sample": req.sample,
            "output": result.output,
            "finish_reason": result.finish_reason,
            "new_tokens": result.new_tokens,
            "prompt_tokens": result.prompt_tokens,
            "from_cache": result.from_cache,
            "prompt_style": self.options.style_for(case),
            "rendered_prompt": req.rendered,
            "seed": self.options.seed,
            "sample_seed": req.seed,
            "generation": req.settings.as_dict(),
            "batch_size": result.batch_size,
            "seconds": round(result.seconds, 4),
            "provenance": self._provenance(),
        }
        if self.options.openai is not None and self.engine is not None:
            local = ("dtype", "device", "device_map", "quantize", "torch", "gpu", "capability")  # the tokenizer's host, not the server
            rec["provenance"] = {**{k: v for k, v in rec["provenance"].items() if k not in local}, "served": self.engine.provenance()}
        self.records[req.key] = rec
        if self.exchange is not None:
            self.exchange.publish(rec)

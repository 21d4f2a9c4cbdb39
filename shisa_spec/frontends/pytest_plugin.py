"""pytest glue: options, parametrisation of the spec (one test per case and check), fixtures, transcripts.

Registered by the project's ``conftest.py``; other projects can use ``-p shisa_spec.frontends.pytest_plugin``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shisa_spec.spec import checks, sandbox
from shisa_spec.generation import loader
from shisa_spec.frontends import pytest_gate as plugin_gate
from shisa_spec.frontends import paths_check, pytest_rootdir, tokenizer_spec
from shisa_spec.frontends.pytest_state import _state, _suite, finalize_records
from shisa_spec.spec.cases import Case, CheckSpec, KnownFailure
from shisa_spec.generation.engine import GenerationOOM
from shisa_spec.generation.prompting import TemplateError
from shisa_spec.generation.store import DEFAULT_SAMPLES, MissingCase
from shisa_spec.generation.transcript import flatten
from shisa_spec.generation.transcript import write as write_transcript
from shisa_spec.generation.backends.openai import BackendError
from shisa_spec.verdicts import stats
from shisa_spec.verdicts.aggregate import judged_by_model
from shisa_spec.verdicts.judge import output_of, sample_key

class SpecCheckFailed(AssertionError):
    """A check judged the output wrong: the only failure a known-failure (xfail) mark expects."""


@dataclass(frozen=True)
class SpecItem:
    case: Case
    check: CheckSpec
    known: KnownFailure | None = None  # the known-failure mark that applies to this run

    @property
    def id(self) -> str:
        return f"{self.case.id}.{self.check.id}"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    pytest_rootdir.redo_setup(early_config, args)  # why: see pytest_rootdir's docstring


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("shisa-spec", "shisa-spec: the executable model spec")
    g.addoption("--model", dest="shisa_model", default=loader.DEFAULT_MODEL, help="hub id or local model directory (default %(default)s)")
    g.addoption("--revision", dest="shisa_revision", default=None, help="hub revision (branch, tag or commit)")
    g.addoption("--device", dest="shisa_device", default="cuda", help="cuda, cuda:N or cpu (default cuda; under xdist each worker takes its own GPU)")
    g.addoption("--dtype", dest="shisa_dtype", default="auto", choices=loader.DTYPES, help="auto: bf16 where supported, else fp16; fp32 on CPU")
    g.addoption("--quantize", dest="shisa_quantize", default="none", choices=loader.QUANTIZE, help="bitsandbytes quantisation (needs CUDA)")
    g.addoption("--device-map", dest="shisa_device_map", default=None, choices=["auto"], help="auto: spread a model too large for one GPU with accelerate")
    g.addoption("--trust-remote-code", dest="shisa_trust_remote_code", action="store_true", help="allow the model's own Python code (off by default)")
    g.addoption("--seed", dest="shisa_seed", type=int, default=0, help="run seed; each case samples from a stream seeded by it and the case id")
    g.addoption("--prompt-style", dest="shisa_prompt_style", default=None, choices=["document", "chat"], help="override the case file: document (the source's ask(): prompt as a system message) or chat (system prompt + user message)")
    g.addoption("--system-prompt", dest="shisa_system_prompt", default=None, help="system prompt for --prompt-style chat (default: the model card's)")
    g.addoption("--cases", dest="shisa_cases", default=None, help="case file (YAML); default: the checkout's fixtures/cases/shisa-7b-v1-document.yaml, else the installed package's")
    g.addoption("--batch-size", dest="shisa_batch_size", type=int, default=16, help="rows (samples) per generate() call (1 for strict batch-1 runs)")
    g.addoption("--samples", dest="shisa_samples", type=int, default=DEFAULT_SAMPLES,
                help="samples per sampled case (default %(default)s; greedy cases take one); verdicts from k of N with a 95%% interval")
    g.addoption("--static-cache", dest="shisa_static_cache", default="off", choices=["on", "off"], help="our decode loop over a static KV cache with a compiled, CUDA-graphed step: 3.7x faster steps once compiled, but compiling costs time once per process (see README)")
    g.addoption("--engine", dest="shisa_engine", default="auto", choices=["auto", "graph", "generate"], help="graph: our decode loop with the whole step one CUDA graph (auto: where it runs the model, on CUDA); generate: transformers' generate(), the reference")
    g.addoption("--transcript", dest="shisa_transcript", default=None, help="write a JSON Lines record per case to this path")
    g.addoption("--replay", dest="shisa_replay", default=None, help="judge the outputs of a transcript instead of running a model")
    g.addoption("--no-cache", dest="shisa_no_cache", action="store_true", help="do not read or write the generation cache")
    g.addoption("--refresh-cache", dest="shisa_refresh_cache", action="store_true", help="regenerate every output and overwrite the cache")
    g.addoption("--sandbox", dest="shisa_sandbox", default="auto", choices=["auto", "strict"], help="strict: model-written code never runs without a jail (bwrap or user namespaces); the check fails instead")
    g.addoption("--cache-dir", dest="shisa_cache_dir", default=None, help="generation cache folder (default $SHISA_SPEC_CACHE or ~/.cache/shisa-spec)")
    g.addoption("--backend", dest="shisa_backend", default="transformers", choices=["transformers", "openai"], help="transformers: the model in this process (default); openai: an OpenAI-compatible server at --base-url (vLLM, SGLang, TGI, llama.cpp, transformers serve), prompts rendered here with --model's chat template")
    g.addoption("--base-url", dest="shisa_base_url", default=None, help="--backend openai: the server, e.g. http://127.0.0.1:8000/v1")
    g.addoption("--api-key-env", dest="shisa_api_key_env", default=None, help="--backend openai: environment variable holding the API key (sent as a Bearer token)")
    g.addoption("--served-model", dest="shisa_served_model", default=None, help="--backend openai: the model name the server knows (default: --model)")
    g.addoption("--judge-model", dest="shisa_judge_model", default=None, help="the judge model the `judge` checks ask (hub id or dir in this process, or a served name with --judge-base-url); without it judge checks are skipped unless the replayed records hold replies")
    g.addoption("--judge-base-url", dest="shisa_judge_base_url", default=None, help="ask the judge through an OpenAI-compatible server or hosted API")
    g.addoption("--judge-endpoint", dest="shisa_judge_endpoint", default="chat", choices=["chat", "completions"],
                help="a served judge: chat (default): /v1/chat/completions, the server applies the judge's template; completions: the prompt rendered here by --judge-tokenizer")
    g.addoption("--judge-tokenizer", dest="shisa_judge_tokenizer", default=None, help="--judge-endpoint completions: tokenizer and chat template of the served judge (default: --judge-model)")
    g.addoption("--judge-api-key-env", dest="shisa_judge_api_key_env", default=None, help="environment variable holding the judge server's API key (default: --api-key-env)")
    g.addoption("--concurrency", dest="shisa_concurrency", type=int, default=4, help="--backend openai: requests in flight at once (default %(default)s)")
    g.addoption("--endpoint", dest="shisa_endpoint", default="completions", choices=["completions", "chat"],
                help="--backend openai: completions (default): /v1/completions with the prompt rendered here, exactly the in-process text; "
                     "chat: /v1/chat/completions with the case's messages, rendered by the server's own chat template")
    g.addoption("--request-timeout", dest="shisa_request_timeout", type=float, default=300.0,
                help="--backend openai: seconds to wait for one answer before retrying (default %(default)s)")
    parser.addini("shisa_spec_paths", type="paths", default=[],
                  help="where the spec's test modules are: `pytest -m gpu` (or -m tokenizer) collects only these")
    plugin_gate.add_gate_options(parser)
    tokenizer_spec.add_tokenizer_options(parser)


MARKERS = (
    "gpu: the executable spec: runs a model (CUDA by default) or a replayed transcript",
    "tokenizer: the tokenizer and chat-template spec (tokenizer files only, CPU)",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:  # known wherever the spec runs, with or without the repository's pyproject.toml
        config.addinivalue_line("markers", line)
    opt = config.option
    if opt.shisa_batch_size < 1:
        raise pytest.UsageError("--batch-size must be at least 1")
    if opt.shisa_samples < 1:
        raise pytest.UsageError("--samples must be at least 1")
    if config.option.shisa_backend == "openai" and not config.option.shisa_base_url:
        raise pytest.UsageError("--backend openai needs --base-url URL (e.g. http://127.0.0.1:8000/v1)")
    if config.option.shisa_concurrency < 1:
        raise pytest.UsageError("--concurrency must be at least 1")
    if config.option.shisa_request_timeout <= 0:
        raise pytest.UsageError("--request-timeout must be more than 0 seconds")
    if config.option.shisa_backend != "openai" and config.option.shisa_endpoint != "completions":
        raise pytest.UsageError(f"--endpoint {config.option.shisa_endpoint} needs --backend openai (the in-process backend renders every prompt itself)")
    _check_paths(config)
    _state(config)
    sandbox.set_strict(config.option.shisa_sandbox == "strict")
    config.pluginmanager.register(plugin_gate, "shisa_spec.frontends.pytest_gate")
    tokenizer_spec.report(config)  # registered in every process, so the xdist controller can print workers' snapshot news


def _check_paths(config: pytest.Config) -> None:
    """Output paths and a --model directory, checked before anything loads (a finished run must not die on them)."""
    opt = config.option
    for dest in ("shisa_transcript", "shisa_replay", "shisa_cache_dir", "shisa_report", "shisa_baseline"):
        value = getattr(opt, dest, None)
        if isinstance(value, str) and value.startswith("~"):  # `--opt=~/x` and quoted forms reach us unexpanded
            setattr(opt, dest, os.path.expanduser(value))
    outputs = [("--transcript", opt.shisa_transcript, False), ("--report", getattr(opt, "shisa_report", None), False),
               ("--cache-dir", None if opt.shisa_no_cache else opt.shisa_cache_dir, True)]
    for flag, path, is_dir in outputs:
        if path:
            problem = paths_check.output_problem(path, directory=is_dir)
            if problem:
                raise pytest.UsageError(f"{flag} {path}: {problem}")
    if loader.looks_like_path(opt.shisa_model):
        opt.shisa_model = os.path.expanduser(opt.shisa_model)
        if not opt.shisa_replay and not Path(opt.shisa_model).is_dir():
            raise pytest.UsageError(f"--model {opt.shisa_model}: no such directory")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "spec_item" not in metafunc.fixturenames:
        return
    suite = _suite(metafunc.config)
    state = _state(metafunc.config)
    params = []
    for case in suite.cases:
        for spec in case.checks:
            kf = case.known_failure(spec.id, state.run_conditions(case))
            item = SpecItem(case, spec, kf)
            marks = [pytest.mark.xdist_group(case.id)]
            if kf is not None:
                reason = f"known failure (measured {kf.rate}): {kf.reason}" if kf.rate else kf.reason
                marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=SpecCheckFailed))
            params.append(pytest.param(item, id=item.id, marks=marks))
    metafunc.parametrize("spec_item", params)


def _spec_items(items: list[pytest.Item]) -> list[pytest.Item]:
    return [i for i in items if "spec_item" in getattr(i, "fixturenames", ())]


SPEC_ONLY_MARKEXPRS = {"gpu", "tokenizer", "gpu or tokenizer", "tokenizer or gpu"}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`pytest -m gpu` from the repository collects the spec alone, not the harness's unit tests it would deselect.

    Only when the paths come from ``testpaths`` (the user named none) and the ini file names the spec's
    folders (``shisa_spec_paths``); named paths are always collected.
    """
    if (config.option.markexpr or "").strip() not in SPEC_ONLY_MARKEXPRS:
        return None
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return None
    spec_paths = config.getini("shisa_spec_paths")
    if not spec_paths:
        return None
    for sp in spec_paths:
        if collection_path == sp or sp in collection_path.parents or collection_path in sp.parents:
            return None
    return True


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    if state.live and config.option.shisa_backend == "transformers" and config.option.shisa_device.startswith("cuda") and _spec_items(items):
        if not loader.cuda_available():
            skip = pytest.mark.skip(reason="no CUDA device: the spec needs a GPU (or --device cpu with a small --model, or --replay PATH)")
            for item in _spec_items(items):
                item.add_marker(skip)


def _worker(config: pytest.Config) -> tuple[int, int]:
    wi = getattr(config, "workerinput", None)
    if not wi:
        return (0, 1)
    return (int(wi["workerid"].lstrip("gw")), int(wi["workercount"]))


def _device(config: pytest.Config) -> str:
    """--device cuda under xdist means one GPU per worker, chosen from the worker id."""
    dev = config.option.shisa_device
    index, _ = _worker(config)
    if dev == "cuda" and getattr(config, "workerinput", None):
        import torch

        n = torch.cuda.device_count()
        return f"cuda:{index % n}" if n else dev
    return dev


def _judge_options(config: pytest.Config) -> Any:
    opt = config.option
    if not opt.shisa_judge_model:
        return None
    from shisa_spec.generation.judging import JudgeOptions

    return JudgeOptions(opt.shisa_judge_model, opt.shisa_judge_base_url, opt.shisa_judge_tokenizer,
                        opt.shisa_judge_api_key_env or opt.shisa_api_key_env, _device(config), endpoint=opt.shisa_judge_endpoint)


def _make_store(config: pytest.Config, needed: list[str], tmp_root: Path) -> Any:
    from shisa_spec.generation.cache import GenerationCache
    from shisa_spec.generation.store import Exchange, OutputStore, RunOptions

    opt = config.option
    state = _state(config)
    suite = _suite(config)
    if not state.live:
        return OutputStore(suite, needed, replay=state.replay)
    served = None
    device = _device(config)
    if opt.shisa_backend == "openai":
        from shisa_spec.generation.backends.openai import OpenAIOptions

        served = OpenAIOptions(opt.shisa_base_url, opt.shisa_served_model or opt.shisa_model, opt.shisa_api_key_env, opt.shisa_concurrency,
                               timeout_s=opt.shisa_request_timeout, endpoint=opt.shisa_endpoint)
        device = "cpu"  # only the tokenizer is loaded here
    load_opts = loader.LoadOptions(
        model=opt.shisa_model, revision=opt.shisa_revision, device=device, dtype=opt.shisa_dtype,
        quantize=opt.shisa_quantize, device_map=opt.shisa_device_map, trust_remote_code=opt.shisa_trust_remote_code,
    )
    static = opt.shisa_static_cache == "on"
    run = RunOptions(seed=opt.shisa_seed, prompt_style=opt.shisa_prompt_style, system_prompt=opt.shisa_system_prompt,
                     batch_size=opt.shisa_batch_size, static_cache=static, samples=opt.shisa_samples, engine=opt.shisa_engine,
                     openai=served, judge=_judge_options(config))
    cache = None if opt.shisa_no_cache else GenerationCache(opt.shisa_cache_dir, refresh=opt.shisa_refresh_cache)
    worker = _worker(config)
    exchange = Exchange(tmp_root / "shisa-exchange") if worker[1] > 1 else None
    memo = None
    if cache is not None and not opt.shisa_refresh_cache:
        from shisa_spec.generation.prepared import Memo, memo_key

        key = memo_key(load_opts)
        memo = Memo(cache.root, key) if key else None
    return OutputStore(suite, needed, prepare=lambda: loader.prepare(load_opts), load=lambda p: loader.load(load_opts, p),
                       options=run, cache=cache, exchange=exchange, worker=worker, progress=_progress(config),
                       memo=memo)


def _progress(config: pytest.Config) -> Any:
    """The live progress line (frontends/progress.py), written with pytest's capture suspended."""
    from shisa_spec.frontends.progress import Progress

    capman = config.pluginmanager.getplugin("capturemanager")
    suspend = capman.global_and_fixture_disabled if capman is not None else None
    wi = getattr(config, "workerinput", None)
    prefix = f"shisa-spec [{wi['workerid']}]" if wi else "shisa-spec"
    stream = sys.__stderr__ if sys.__stderr__ is not None else sys.stderr
    return Progress(stream, prefix=prefix, suspend=suspend)


@pytest.fixture(scope="session")
def spec_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = request.config
    state = _state(config)
    if state.store is None:
        needed = sorted({i.callspec.params["spec_item"].case.id for i in _spec_items(request.session.items)})
        state.store = _make_store(config, needed, tmp_path_factory.getbasetemp().parent)
    return state.store


@pytest.fixture
def spec_output(spec_item: SpecItem, spec_store: Any, request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The transcript records of the item's case, one per sample (generated in batches on first use)."""
    state = _state(request.config)
    if state.load_error:
        pytest.fail(state.load_error, pytrace=False)
    try:
        return spec_store.get(spec_item.case.id)
    except MissingCase as e:
        pytest.fail(f"{e} ({state.replay_path}): the spec cannot judge it", pytrace=False)
    except (loader.ModelLoadError, GenerationOOM, TemplateError, BackendError) as e:
        state.load_error = f"{type(e).__name__}: {e}"
        request.session.shouldstop = state.load_error
        pytest.fail(state.load_error, pytrace=False)


@pytest.fixture
def spec_property(request: pytest.FixtureRequest) -> Any:
    """Like pytest's ``record_property``, into the test's JUnit ``<properties>``, without its warning under xunit2
    (pytest's default junit_family), so CI logs stay clean."""

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))

    return record


def judge(item: SpecItem, records: list[dict[str, Any]], record_property: Any, runxfail: bool = False) -> stats.Decision:
    """Run the item's check on every sample of its case and decide (``stats.decide``); raise SpecCheckFailed
    when the decision fails the test: unmarked and clearly below the required rate, or marked and not
    clearly meeting it (so the strict xfail holds). With one sample, the sample's verdict decides."""
    __tracebackhide__ = True
    if not judged_by_model(item.check, records):
        pytest.skip(f"{item.id} [judge]: no judge reply in the records and no judge asked: pass --judge-model M "
                    "(with --judge-base-url URL for a served judge), or replay a transcript that has the replies")
    seen: dict[tuple[str, str, str], checks.Verdict] = {}  # checks are pure: each distinct text is judged once
    verdicts: list[checks.Verdict] = []
    for r in records:
        key = sample_key(r)
        if key not in seen:
            seen[key] = checks.run(item.check.check, output_of(r), item.check.params)
        verdicts.append(seen[key])
    for r, v in zip(records, verdicts):
        if "sandbox" in v.evidence:  # the transcript says which jail ran the model's code
            r["sandbox"] = v.evidence["sandbox"]
    k = sum(v.passed for v in verdicts)
    marked = item.known is not None and not runxfail
    d = stats.decide(k, len(verdicts), item.check.min_pass_rate, marked)
    record_property("shisa", json.dumps({
        "case": item.case.id, "check": item.check.id, "kind": item.check.check,
        "passed": not d.failed if not marked else d.outcome == stats.XPASS, "k": k, "n": d.n,
        "ci_low": d.low, "ci_high": d.high, "min_pass_rate": d.required, "outcome": d.outcome,
        "known_rate": item.known.rate if item.known else None,
        "detail": verdicts[0].detail if d.n == 1 else d.summary(),
        "samples": [v.passed for v in verdicts],
    }, ensure_ascii=False))
    if d.failed:
        bad = next((i for i, v in enumerate(verdicts) if not v.passed), 0)
        rec = records[bad]
        text = rec["output"]
        shown = text if len(text) <= 600 else text[:600] + f"… [{len(text) - 600} more chars]"
        if d.n == 1:
            head = f"{item.id} [{item.check.check}]: {verdicts[0].detail} (1 sample: no interval)"
            label = "output"
        else:
            head = f"{item.id} [{item.check.check}]: {d.summary()}\nfirst failing sample {bad}: {verdicts[bad].detail}"
            label = f"output of sample {bad}"
        raise SpecCheckFailed(f"{head}\n--- {label} (finish_reason={rec['finish_reason']}) ---\n{shown}")
    return d


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = _state(config)
    if getattr(config, "workerinput", None) is not None:
        store = state.store
        records = list(store.records.values()) if store is not None else []
        config.workeroutput["shisa_records"] = json.dumps(records, ensure_ascii=False)
        return
    records = finalize_records(config)
    if config.option.shisa_transcript and records:
        write_transcript(config.option.shisa_transcript, flatten(records))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    out = getattr(node, "workeroutput", {}) or {}
    if "shisa_records" in out:
        _state(node.config).worker_records.extend(json.loads(out["shisa_records"]))  # one record per (case, sample)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    records = state.final_records
    if not records:
        return
    tr = terminalreporter
    samples = sum(len(v) for v in records.values())
    ns = sorted({len(v) for v in records.values()})
    per = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
    if state.live:
        cached = sum(1 for v in records.values() for r in v if r.get("from_cache"))
        calls = state.store.generate_calls if state.store is not None else 0
        served = state.store is not None and state.store.options.openai is not None
        where = f"{calls} request(s) to the server" if served else f"{calls} batched generate() call(s) in this process"
        line = (f"shisa-spec: {len(records)} cases, {samples} samples ({per} per case), {samples - cached} generated in "
                f"{where}, {cached} from cache")
        if not served and state.store is not None and state.store.loaded is None and (state.store.prepared is not None or state.store.memo is not None):
            line += " (weights not loaded)"
    else:
        line = f"shisa-spec: {len(records)} cases, {samples} samples ({per} per case) replayed from {state.replay_path}"
    if state.live and hasattr(getattr(state.store, "engine", None), "summary"):
        line += "; " + state.store.engine.summary()
    if config.option.shisa_transcript:
        line += f"; transcript: {config.option.shisa_transcript}"
    tr.write_line(line)

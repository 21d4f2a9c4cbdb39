"""A memo of what ``loader.prepare`` found (provenance, rendered prompts, and the token ids the served
backend asked the tokenizer for), so a run served from the generation cache imports neither torch nor
transformers and never starts CUDA, in-process or against a server.

The memo is keyed by everything ``prepare`` reads: every file of the local model directory (name,
size, modification time), the load options, the installed versions of torch, transformers, tokenizers
and jinja2, the source of the code that renders prompts and describes the run, and the GPU (through
NVML; without NVML on a CUDA run there is no memo). A hub id (not a local directory) gets no memo.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

PACKAGES = ("torch", "transformers", "tokenizers", "jinja2")


def nvml_gpus() -> list[tuple[str, str]] | None:
    """(name, compute capability) of every GPU NVML sees; None without NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            out.append((name.decode() if isinstance(name, bytes) else name, f"{major}.{minor}"))
        return out
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def memo_key(opts: Any) -> str | None:
    """The memo's key for these load options, or None where no memo is safe."""
    path = Path(opts.model)
    if not path.is_dir():
        return None
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file())
    gpus = None
    if opts.device.startswith("cuda") or opts.quantize != "none" or opts.device_map:
        gpus = nvml_gpus()
        if not gpus:
            return None
    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join((here / f).read_bytes() for f in ("loader.py", "prompting.py", "prepared.py"))).hexdigest()
    material = {"files": files, "model_dir": str(path.resolve()), "options": asdict(opts), "gpus": gpus, "code": code,
                "versions": {p: _version(p) for p in PACKAGES}, "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def prompt_key(prompt: str, style: str, system: str | None) -> str:
    return hashlib.sha256(json.dumps([prompt, style, system], ensure_ascii=False).encode()).hexdigest()


class Memo:
    """provenance and rendered prompts under ``root/prepared/<key>.json`` (a corrupt file is ignored)."""

    def __init__(self, root: Path, key: str):
        self.path = root / "prepared" / f"{key}.json"
        self.provenance: dict[str, Any] | None = None
        self.rendered: dict[str, str] = {}
        self.encoded: dict[str, Any] = {}  # encoding_key(text, add_special_tokens) -> token ids; "bos_token" -> str | None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data.get("provenance"), dict) and isinstance(data.get("rendered"), dict):
                self.provenance, self.rendered = data["provenance"], data["rendered"]
                self.encoded = data["encoded"] if isinstance(data.get("encoded"), dict) else {}
        except (OSError, ValueError, AttributeError):
            pass

    def save(self, provenance: dict[str, Any], rendered: dict[str, str], encoded: dict[str, Any] | None = None) -> None:
        self.provenance = provenance
        self.rendered = {**self.rendered, **rendered}
        self.encoded = {**self.encoded, **(encoded or {})}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"provenance": provenance, "rendered": self.rendered, "encoded": self.encoded}, ensure_ascii=False),
                       encoding="utf-8")
        os.replace(tmp, self.path)


def encoding_key(text: str, add_special_tokens: bool) -> str:
    return hashlib.sha256(json.dumps([text, add_special_tokens], ensure_ascii=False).encode()).hexdigest()


class MemoTokenizer:
    """The tokenizer as the served backend uses it (``tok(text, add_special_tokens=...)["input_ids"]`` and
    ``bos_token``), answered from the memo; the real tokenizer (``load()``, which imports transformers) is
    loaded on the first text the memo lacks, and what it answers is kept in ``new`` for the memo.

    The ids are the real tokenizer's own, recorded on an earlier run with the same memo key (same tokenizer
    files and library versions), so a fully cached run against a server need not import transformers."""

    def __init__(self, memo: Memo, load: Callable[[], Any]):
        self.memo = memo
        self._load = load
        self.real: Any = None
        self.new: dict[str, Any] = {}

    def _tokenizer(self) -> Any:
        if self.real is None:
            self.real = self._load()
        return self.real

    @property
    def bos_token(self) -> str | None:
        if "bos_token" in self.memo.encoded:
            return self.memo.encoded["bos_token"]
        bos = getattr(self._tokenizer(), "bos_token", None)
        self.new["bos_token"] = bos
        return bos

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        key = encoding_key(text, add_special_tokens)
        ids = self.memo.encoded.get(key, self.new.get(key))
        if ids is None:
            ids = list(self._tokenizer()(text, add_special_tokens=add_special_tokens)["input_ids"])
            self.new[key] = ids
        return {"input_ids": ids}

"""A memo of what ``loader.prepare`` found (provenance, rendered prompts), so a run served from the
generation cache imports neither torch nor transformers and never starts CUDA.

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
from typing import Any

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
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data.get("provenance"), dict) and isinstance(data.get("rendered"), dict):
                self.provenance, self.rendered = data["provenance"], data["rendered"]
        except (OSError, ValueError, AttributeError):
            pass

    def save(self, provenance: dict[str, Any], rendered: dict[str, str]) -> None:
        self.provenance = provenance
        self.rendered = {**self.rendered, **rendered}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"provenance": provenance, "rendered": self.rendered}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)

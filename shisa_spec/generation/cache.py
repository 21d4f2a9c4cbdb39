"""A generation cache on disk, keyed by everything that can change an output.

Entries are JSON files written atomically; a corrupt or truncated entry is ignored with a
warning and regenerated. The default location is ``$SHISA_SPEC_CACHE``, else
``$XDG_CACHE_HOME/shisa-spec``, else ``~/.cache/shisa-spec``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

# Provenance fields that change what a model generates; paths and timestamps are not among them.
KEY_FIELDS = (
    "model", "revision", "commit", "weights", "tokenizer", "chat_template",
    "dtype", "quantize", "device_map", "gpu", "capability", "torch", "transformers",
)


class CacheWarning(UserWarning):
    pass


def default_dir() -> Path:
    if os.environ.get("SHISA_SPEC_CACHE"):
        return Path(os.environ["SHISA_SPEC_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "shisa-spec"


def cache_key(provenance: dict[str, Any], rendered: str, settings: dict[str, Any], seed: int, extra: dict[str, Any]) -> str:
    device = provenance.get("device", "")
    material = {
        "provenance": {k: provenance.get(k) for k in KEY_FIELDS},
        "device_kind": device.split(":")[0],
        "rendered": rendered,
        "settings": settings,
        "seed": seed,
        **extra,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class GenerationCache:
    def __init__(self, root: str | Path | None = None, refresh: bool = False):
        self.root = Path(root) if root else default_dir()
        self.refresh = refresh
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        if self.refresh or not path.exists():
            self.misses += 1
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("key") != key or not isinstance(entry.get("output"), str) or entry.get("finish_reason") not in ("eos", "length"):
                raise ValueError("entry does not match its key or lacks output/finish_reason")
        except (OSError, ValueError, AttributeError) as e:
            warnings.warn(CacheWarning(f"ignoring corrupt cache entry {path} ({e}); regenerating"), stacklevel=2)
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({**entry, "key": key}, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

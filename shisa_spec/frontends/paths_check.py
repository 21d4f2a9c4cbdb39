"""Checks of the paths a run will write, made before anything is loaded: one line naming the path and the problem."""

from __future__ import annotations

import os
from pathlib import Path


def output_problem(path: str, *, directory: bool = False) -> str | None:
    """Why ``path`` cannot be written (as a file, or as a folder to create files in), or None if it can."""
    p = Path(path).expanduser()
    if p.exists():
        if directory and not p.is_dir():
            return "exists and is not a directory"
        if not directory and p.is_dir():
            return "is a directory"
        target = p if directory else p.parent
        return None if os.access(target, os.W_OK | os.X_OK) else f"{target} is not writable"
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, so {p} cannot be created"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return None

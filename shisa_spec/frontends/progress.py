"""A live progress line while the model loads and generates, visible through pytest's capture and under xdist.

On a terminal one line is rewritten in place (phase, samples done/total, tokens, tokens/s, elapsed, estimate);
elsewhere (CI logs, pipes) one line per finished batch. Writes go to the process's real stderr with pytest's
capture suspended; an xdist worker's stderr is the controller's, so workers' lines reach the terminal too,
prefixed with the worker id.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from typing import Any, Callable, TextIO


def fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 100 else f"{s / 60:.1f} min"


class Progress:
    """Receives the output store's events and writes the progress line."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, prefix: str = "shisa-spec",
                 suspend: Callable[[], Any] | None = None, clock: Callable[[], float] = time.perf_counter):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.prefix = prefix
        self.suspend = suspend or nullcontext
        self.clock = clock
        self.start = clock()
        self.gen_start: float | None = None
        self.open_line = False

    def line(self, info: dict[str, Any]) -> str:
        phase = info.get("phase")
        elapsed = self.clock() - self.start
        if phase == "load":
            return f"{self.prefix}: loading {info.get('model') or 'the model'} ({fmt_seconds(elapsed)} elapsed)"
        if phase == "loaded":
            return f"{self.prefix}: loaded in {info.get('seconds', 0):.1f} s"
        done, total, tokens = info.get("done", 0), info.get("total", 0), info.get("tokens", 0)
        gen_elapsed = self.clock() - (self.gen_start if self.gen_start is not None else self.start)
        rate = tokens / gen_elapsed if gen_elapsed > 0 else 0.0
        text = (f"{self.prefix}: generating batch {info.get('batch', 0)}, {done}/{total} samples, {tokens} tokens, "
                f"{rate:.0f} tok/s, {fmt_seconds(elapsed)} elapsed")
        if 0 < done < total:
            text += f", ~{fmt_seconds(gen_elapsed / done * (total - done))} left"
        return text

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        info = {"phase": event, **info}
        if event == "generate" and self.gen_start is None:
            self.gen_start = self.clock()
        if event in ("generate", "done") and not self.tty:
            return  # one line per batch says it all
        text = self.line(info)
        with self.suspend():
            if self.tty:
                self.stream.write("\r\x1b[2K" + text)
                self.open_line = event != "done"
                if event in ("loaded", "done"):
                    self.stream.write("\n")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

"""Per-process pytest state shared by the plugin and the gate hooks: the loaded suite and the run's state."""

from __future__ import annotations

from typing import Any

import pytest

from shisa_spec.generation.transcript import Records, TranscriptError
from shisa_spec.generation.transcript import read as read_transcript
from shisa_spec.spec.cases import Case, CaseFileError, Suite, default_cases, load_suite

SUITE_KEY = pytest.StashKey[Suite]()
STATE_KEY = pytest.StashKey["SpecState"]()



class SpecState:
    """Per-process state: options, the output store, and the transcript records gathered."""

    def __init__(self, config: pytest.Config):
        self.config = config
        opt = config.option
        self.replay_path = opt.shisa_replay
        self.replay = None
        if self.replay_path:
            try:
                self.replay = read_transcript(self.replay_path)
            except TranscriptError as e:
                raise pytest.UsageError(str(e)) from None
        self.store: Any = None
        self.load_error: str | None = None
        self.worker_records: list[dict[str, Any]] = []  # one per (case, sample), from xdist workers
        self.final_records: Records | None = None  # case -> its samples' records; set at session end (controller)

    @property
    def live(self) -> bool:
        return self.replay is None

    def run_conditions(self, case: Case) -> dict[str, str]:
        opt = self.config.option
        return {
            "quantize": opt.shisa_quantize,
            "prompt_style": opt.shisa_prompt_style or case.prompt_style,
            "model": opt.shisa_model,
        }


def _suite(config: pytest.Config) -> Suite:
    if SUITE_KEY not in config.stash:
        try:
            config.stash[SUITE_KEY] = load_suite(config.option.shisa_cases or default_cases(config.rootpath))
        except CaseFileError as e:
            # A CollectError is shown as its message alone: one line naming file, case and field.
            raise pytest.Collector.CollectError(str(e)) from None
    return config.stash[SUITE_KEY]


def _state(config: pytest.Config) -> SpecState:
    if STATE_KEY not in config.stash:
        config.stash[STATE_KEY] = SpecState(config)
    return config.stash[STATE_KEY]


def finalize_records(config: pytest.Config) -> Records:
    """The run's records by case (suite order), samples in order: this process's and the xdist workers'.
    Computed once at session end, whichever of the plugin and the gate asks first."""
    state = _state(config)
    if state.final_records is not None:
        return state.final_records
    found: dict[tuple[str, int], dict[str, Any]] = {}
    if state.store is not None:
        found.update(state.store.records)
    for rec in state.worker_records:
        found.setdefault((rec["case"], rec.get("sample", 0)), rec)
    order = {c.id: n for n, c in enumerate(_suite(config).cases)}
    records: Records = {}
    for case, sample in sorted(found, key=lambda k: (order.get(k[0], len(order)), k[0], k[1])):
        records.setdefault(case, []).append(found[(case, sample)])
    state.final_records = records
    return records

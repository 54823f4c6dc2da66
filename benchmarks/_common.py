"""Shared by the benchmark scripts: where results go and how tables are printed."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def write(name: str, payload: dict, table: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(table)
    print(f"\nwritten: {path}")
    return path


@dataclass(frozen=True)
class ChildOutcome:
    """What a measurement run in its own process gave: the JSON of its last line, or why there is none."""

    result: dict | None
    problem: str | None  # "stopped after N s", or the last line of the child's stderr
    stderr: str
    timed_out: bool = False


def run_child(command: list[str], timeout: float | None = None, **options) -> ChildOutcome:
    """Run ``command`` (a benchmark script with its ``--one``-style arguments) in a fresh process, so its peak memory
    and threads are its own; its result is the JSON object its last stdout line prints. ``options`` go to
    ``subprocess.run`` (``env``, ``cwd``)."""
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    except subprocess.TimeoutExpired:
        return ChildOutcome(None, f"stopped after {timeout:.0f} s", "", timed_out=True)
    if out.returncode:
        return ChildOutcome(None, (out.stderr.strip().splitlines() or ["(no message)"])[-1][:300], out.stderr)
    return ChildOutcome(json.loads(out.stdout.strip().splitlines()[-1]), None, out.stderr)


def run_this_script(script: str, *arguments: str, timeout: float | None = None) -> dict | None:
    """``run_child`` of ``script`` (a benchmark's ``__file__``) with ``arguments``: its result, or None with the
    child's error written to stderr."""
    outcome = run_child([sys.executable, script, *arguments], timeout=timeout)
    if outcome.result is None:
        print(f"{' '.join(arguments)}: {outcome.problem}", file=sys.stderr)
        sys.stderr.write(outcome.stderr[-2000:])
    return outcome.result


class StepClock:
    """Times the steps of one epoch from the trainer's batch events, and stops the fit after
    ``max_steps`` (0: never), so an epoch too long to wait for can be extrapolated from its first steps.

    Pass ``clock.on_event`` as the fit's callback; catch ``TrainingCancelled`` around the fit and call
    :meth:`extrapolated`: the seconds to the last measured step plus the remaining steps at the rate of
    the steps after the first quarter (the first steps pay for warm-up)."""

    def __init__(self, max_steps: int = 0):
        self.max_steps = max_steps
        self.started = time.perf_counter()
        self.marks: list[tuple[float, int]] = []  # (clock, batches in the epoch) after each step

    def on_event(self, event) -> None:
        from recsys_core.errors import TrainingCancelled

        if event.kind == "batch":
            self.marks.append((time.perf_counter(), event.batches))
            if self.max_steps and len(self.marks) >= self.max_steps and event.batch < event.batches:
                raise TrainingCancelled("measured steps done")

    def extrapolated(self) -> dict:
        n, total = len(self.marks), self.marks[-1][1]
        warm = n // 4
        rate = (self.marks[-1][0] - self.marks[warm][0]) / max(1, n - 1 - warm)
        return {
            "steps_measured": n,
            "steps_per_epoch": total,
            "seconds_per_step": rate,
            "epoch_seconds": (self.marks[-1][0] - self.started) + (total - n) * rate,
            "measured": f"{n:,} of {total:,} steps, extrapolated",
        }

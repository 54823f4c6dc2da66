"""Shared by the benchmark scripts: where results go and how tables are printed."""

from __future__ import annotations

import json
import platform
import time
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

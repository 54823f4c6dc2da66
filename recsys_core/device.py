"""Where tensors live and in which precision: the one place that knows about CUDA.

``resolve_device`` turns the user's choice ("auto", "cpu", "cuda", "cuda:1") into a
``torch.device`` and refuses a GPU that is not there with a message and a way out;
``device_description`` is the name a run records and the app shows; ``autocast`` is the mixed
precision rule (bf16 on CUDA when enabled, nothing on the CPU, where bf16 is slower and changes
results). The trainer resolves the device once and hands it to the model in its
:class:`~recsys_core.fit_context.FitContext`; a loaded model gets it from ``from_state``.
"""

from __future__ import annotations

import contextlib

import torch

from .errors import ModelError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; a clear error when CUDA is asked for but absent."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was requested but no CUDA GPU is available", "Use --device auto or --device cpu.")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ModelError(f"unknown device {device!r}", "Use auto, cpu or cuda.")
    return torch.device(device)


def device_description(device: torch.device) -> str:
    """``cpu`` or ``cuda (<GPU name>)``: what a run records as its device."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def autocast(device: torch.device, mixed_precision: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``mixed_precision`` is on; a no-op on the CPU."""
    if mixed_precision and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()

"""A model whose constructor needs a device this machine lacks (`.cuda()`, tensors on `cuda`, `torch.cuda.*`)
is no code error: the cause is the environment. Recognised by torch's own messages and by the failing line.
"""

from __future__ import annotations

import re

from ckaudit.compat.diagnosis import Context
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.worker import ModelBuild

# torch's messages when a device is missing: a CPU-only build, no driver, no GPU, no MPS
_MESSAGES = {
    "cuda": re.compile(
        r"Torch not compiled with CUDA enabled|Found no NVIDIA driver|No CUDA GPUs are available|"
        r"CUDA driver version is insufficient|no CUDA-capable device|CUDA is not available",
        re.I,
    ),
    "mps": re.compile(r"from the 'MPS' backend|MPS backend|not built with MPS|MPS is not available", re.I),
    "xpu": re.compile(r"Torch not compiled with XPU|XPU is not available", re.I),
}
# the failing line itself asks for a device
_CALLS = re.compile(
    r"""\.(cuda|xpu)\(|torch\.(cuda|xpu|mps)\.|device\(\s*['"](cuda|mps|xpu)|['"](cuda|mps|xpu)(:\d+)?['"]"""
)


def missing_device(build: ModelBuild) -> str | None:
    """ "cuda", "mps", "xpu" when the build failed for want of that device; else None."""
    error = build.error
    if error is None or error.kind != "raised":
        return None
    text = f"{error.message}\n{error.traceback}"
    for device, pattern in _MESSAGES.items():
        if pattern.search(text):
            return device
    snippet = error.location.snippet if error.location is not None else None
    match = _CALLS.search(snippet or "")
    return next((g for g in match.groups() if g and not g.startswith(":")), None) if match else None


def device_error(ctx: Context, build: ModelBuild, factory: str, device: str) -> Finding:
    """The `device` finding for a build that failed because it needs `device` (found by `needed_device`): an
    environment cause, with the line that asked for it."""
    error = build.error
    assert error is not None
    where = error.location
    at = f" ({where.path}:{where.line}: `{where.snippet}`)" if where and where.snippet else ""
    return ctx.finding(
        Rule.DEVICE,
        Severity.ERROR,
        f"model {ctx.model} could not be built here: it needs {device.upper()}, which this machine lacks{at}",
        f"Let {factory} build without {device.upper()} (e.g. `device = 'cuda' if torch.cuda.is_available() "
        "else 'cpu'`, or take the device as an argument), or run ckaudit where the device exists.",
        location=where,
        device=device,
        error=error.message,
        traceback=error.traceback,
    )

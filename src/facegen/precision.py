"""The default training precision on the CPU: bf16-mixed where the CPU computes bfloat16 natively.

On the 2-core AVX512-BF16 machine of docs/benchmarks.md, bf16-mixed trained the base model at 64x64
1.85 times as fast as float32 and scored within 0.1 dB of it on held-out faces. CPUs without bfloat16
instructions convert to and from float32 around each operation; that path was not measured here, and
float32 stays their default.
"""

from __future__ import annotations

import functools
import logging

import torch
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

# `precision: ${cpu_precision:}` in conf/trainer/cpu.yaml calls default_cpu_precision.
RESOLVER_NAME = "cpu_precision"
# Private torch.cpu helpers (present in torch 2.14) that report x86 instructions oneDNN uses for bfloat16.
NATIVE_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_has_native_bf16() -> bool:
    """Report whether the CPU has AVX512-BF16 or AMX instructions, False where torch cannot tell."""
    for name in NATIVE_BF16_CHECKS:
        check = getattr(torch.cpu, name, None)
        if check is not None and check():
            return True
    return False


@functools.cache
def default_cpu_precision() -> str:
    """Choose Lightning's precision setting for CPU training (once per process) and log the choice."""
    if cpu_has_native_bf16():
        log.info("the CPU computes bfloat16 natively, so CPU training runs in bf16-mixed; set trainer.precision=32-true for float32")
        return "bf16-mixed"
    log.info("the CPU has no bfloat16 instructions, so CPU training runs in 32-true")
    return "32-true"


def register_resolver() -> None:
    """Make ``${cpu_precision:}`` resolvable in configs; calling it again is harmless."""
    OmegaConf.register_new_resolver(RESOLVER_NAME, default_cpu_precision, replace=True)

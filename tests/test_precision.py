"""The CPU trainer's default precision: bf16-mixed only where the CPU has bfloat16 instructions."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from facegen import precision
from facegen.precision import cpu_has_native_bf16, default_cpu_precision, register_resolver

from conftest import PROJECT_ROOT


@pytest.fixture
def fresh_choice():
    """Forget the cached choice before and after the test, so that patched CPU checks take effect."""
    default_cpu_precision.cache_clear()
    yield
    default_cpu_precision.cache_clear()


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected",
    [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"), (False, False, "32-true")],
)
def test_choice_follows_cpu_instructions(monkeypatch, fresh_choice, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert default_cpu_precision() == expected


def test_missing_torch_helpers_mean_float32(monkeypatch, fresh_choice):
    for name in precision.NATIVE_BF16_CHECKS:
        monkeypatch.delattr(torch.cpu, name, raising=False)
    assert not cpu_has_native_bf16()
    assert default_cpu_precision() == "32-true"


def test_cpu_trainer_resolves_the_choice():
    # Importing facegen.training registers the resolver for train.py; this test registers it directly.
    register_resolver()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["trainer=cpu"])
        overridden = compose(config_name="train", overrides=["trainer=cpu", "trainer.precision=32-true"])
    assert OmegaConf.select(cfg, "trainer.precision") == default_cpu_precision()
    assert OmegaConf.select(overridden, "trainer.precision") == "32-true"

"""Ways for the reliability tests to run training: train.py subprocesses that can build the callbacks in
``reliability_callbacks``, and in-process runs from a composed config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from facegen.training import train

from conftest import PROJECT_ROOT, run_train, subprocess_env

TESTS = Path(__file__).resolve().parent


def reliability_env(cache_dir: Path) -> dict[str, str]:
    """Return the environment of a train.py subprocess, with this folder on PYTHONPATH for reliability_callbacks."""
    env = subprocess_env(cache_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p)
    return env


def run_train_with_helpers(args: list[str], run_dir: Path, cache_dir: Path, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python train.py`` like conftest's run_train, but able to build the callbacks in reliability_callbacks."""
    return run_train(args, run_dir, cache_dir, timeout=timeout, check=check, env=reliability_env(cache_dir))


def compose_config(run_dir: Path, cache_dir: Path, *overrides: str) -> DictConfig:
    """Compose conf/train.yaml with ``overrides`` as train.py would, writing into ``run_dir``."""
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=[*overrides, f"paths.run_dir={run_dir}", f"paths.cache_dir={cache_dir}"])


def train_in_process(run_dir: Path, cache_dir: Path, *overrides: str) -> dict[str, float]:
    """Train in this process, on one thread like the subprocesses; faster than a train.py subprocess,
    which spends seconds importing Lightning."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(compose_config(run_dir, cache_dir, *overrides))
    finally:
        torch.set_num_threads(threads)

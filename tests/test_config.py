"""Every shipped config option composes and builds, using Hydra's compose API."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from facegen.generator import Generator
from facegen.training import generator_settings, validate

from conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.run_dir=/tmp/facegen-config-test", *overrides])


def test_groups_have_the_documented_options():
    assert {"adam", "adagrad", "sgd", "rmsprop", "adadelta"} <= set(options("optimizer"))
    assert {"small", "base"} <= set(options("model"))
    assert {"cpu", "gpu", "ddp"} <= set(options("trainer"))
    assert {"wandb", "csv", "none"} <= set(options("logger"))
    assert {"synthetic", "rafd", "manifest", "london"} <= set(options("data"))


@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_optimizer_builds(optimizer):
    cfg = composed(f"optimizer={optimizer}")
    generator = Generator(num_identities=2, num_emotions=2, **{**generator_settings(cfg), "width": 32, "height": 32})
    built = instantiate(cfg.optimizer)(params=generator.parameters())
    assert type(built).__name__.lower() == OmegaConf.select(cfg, "optimizer._target_").rsplit(".", 1)[1].lower()


@pytest.mark.parametrize("scheduler", [s for s in options("scheduler") if s != "none"])
def test_scheduler_builds(scheduler):
    cfg = composed(f"scheduler={scheduler}")
    generator = Generator(num_identities=2, num_emotions=2, width=32, height=32, widths=[8, 8, 8], grid_channels=8, embed_dim=8, fc_dims=[8])
    optimizer = instantiate(cfg.optimizer)(params=generator.parameters())
    schedule = instantiate(cfg.scheduler)(optimizer, total_steps=100)
    rates = []
    for _ in range(100):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[-1] < max(rates)


@pytest.mark.parametrize("resolution", options("resolution"))
@pytest.mark.parametrize("model", options("model"))
def test_model_and_resolution_validate(model, resolution):
    validate(composed(f"model={model}", f"resolution={resolution}"))


def test_rafd_needs_a_root():
    cfg = composed("data=rafd")
    with pytest.raises(Exception, match="root"):
        OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)


def test_london_preset_points_at_shared_data():
    cfg = composed("data=london")
    assert cfg.data._target_ == "facegen.data.manifest.ManifestSource"
    assert Path(cfg.data.root).as_posix().endswith("shared/data/london")


def test_experiment_preset_overrides_groups():
    cfg = composed("experiment=london_64")
    assert cfg.data.root.endswith("london")
    assert cfg.resolution.width == 64
    assert cfg.optimizer.lr == 0.002

"""Generator shapes for every shipped resolution, config checks, and one optimizer step."""

from pathlib import Path

import pytest
import torch
import yaml

from facegen.faceset import encode_orientation
from facegen.generator import ConfigError, Generator, check_config, count_blocks

from conftest import PROJECT_ROOT

RESOLUTIONS = sorted((PROJECT_ROOT / "conf" / "resolution").glob("*.yaml"))
SMALL = yaml.safe_load((PROJECT_ROOT / "conf" / "model" / "small.yaml").read_text())
SMALL.pop("_target_")


def make_inputs(batch: int, identities: int, emotions: int) -> tuple[torch.Tensor, ...]:
    identity = torch.nn.functional.one_hot(torch.arange(batch) % identities, identities).float()
    emotion = torch.nn.functional.one_hot(torch.arange(batch) % emotions, emotions).float()
    orientation = encode_orientation(torch.linspace(-90, 90, batch))
    return identity, emotion, orientation


def test_shipped_resolutions_cover_the_documented_sizes():
    names = {p.stem for p in RESOLUTIONS}
    assert {"32x32", "64x64", "128x128", "128x160", "256x320", "512x640"} <= names


@pytest.mark.parametrize("path", RESOLUTIONS, ids=lambda p: p.stem)
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_per_resolution(path: Path, channels: int):
    resolution = yaml.safe_load(path.read_text())
    generator = Generator(num_identities=5, num_emotions=8, channels=channels, **resolution, **SMALL)
    generator.eval()
    with torch.no_grad():
        images = generator(*make_inputs(2, 5, 8))
    assert images.shape == (2, channels, resolution["height"], resolution["width"])
    assert images.min() >= 0
    assert images.max() <= 1


def test_block_count_follows_resolution():
    assert count_blocks(64, 64, 4, 4) == 4
    assert count_blocks(128, 160, 4, 5) == 5
    assert count_blocks(512, 640, 4, 5) == 7


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(width=48, height=48), "48x48 is not a power-of-two multiple of the initial grid 4x4"),
        (dict(width=64, height=80), "64x80 is not a power-of-two multiple"),
        (dict(widths=[32, 16]), "model.widths has 2 entries but resolution 64x64 needs 4 blocks"),
        (dict(widths="64,32,16,8"), "model.widths must be a list of positive integers"),
        (dict(widths=[64, 32.5, 16, 8]), "model.widths must be a list of positive integers"),
        (dict(kernels=[5, 4]), "model.kernels must be two odd positive integers"),
        (dict(channels=2), "channels must be 1"),
    ],
)
def test_check_config_rejects(settings, message):
    arguments = dict(width=64, height=64, grid_width=4, grid_height=4, widths=[64, 32, 16, 8], kernels=[5, 3], channels=3)
    arguments.update(settings)
    with pytest.raises(ConfigError, match=message):
        check_config(**arguments)


def test_kernel_sizes_are_used():
    generator = Generator(num_identities=2, num_emotions=2, width=32, height=32, **{**SMALL, "kernels": [7, 1]})
    convolutions = [m for m in generator.deconv.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convolutions[:2]] == [(7, 7), (1, 1)]


def test_one_optimizer_step_lowers_the_loss():
    torch.manual_seed(0)
    generator = Generator(num_identities=4, num_emotions=3, width=32, height=32, **SMALL)
    inputs = make_inputs(8, 4, 3)
    target = torch.rand(8, 3, 32, 32)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        return torch.nn.functional.mse_loss(generator(*inputs), target)

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    after = loss()
    assert after.item() < before.item()

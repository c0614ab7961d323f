"""The speed options that train.py applies to the generator: channels_last memory order and torch.compile."""

from __future__ import annotations

import torch
from hydra import compose, initialize_config_dir

from facegen.data.datamodule import FaceDataModule
from facegen.faceset import FaceSet
from facegen.training import build_module

from conftest import PROJECT_ROOT

SMALL = ["data=synthetic", "resolution=32x32", "model=small"]


class FixedSource:
    """A data source that returns a prepared face set."""

    def __init__(self, faceset: FaceSet) -> None:
        self.faceset = faceset

    def load(self, width: int, height: int, channels: int) -> FaceSet:
        return self.faceset


def datamodule() -> FaceDataModule:
    faceset = FaceSet(
        images=torch.zeros(4, 3, 32, 32, dtype=torch.uint8),
        identities=torch.tensor([0, 0, 1, 1]),
        emotions=torch.eye(2)[[0, 1, 0, 1]],
        yaws=torch.zeros(4),
        identity_names=["a", "b"],
        emotion_names=["happy", "neutral"],
    )
    return FaceDataModule(FixedSource(faceset), width=32, height=32)


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.run_dir=/tmp/facegen-options-test", *SMALL, *overrides])


def generator_inputs() -> tuple[torch.Tensor, ...]:
    return torch.eye(2)[[0, 1]], torch.eye(2)[[1, 0]], torch.tensor([[0.0, 1.0], [0.5, 0.866]])


def test_channels_last_flag_is_applied():
    channels_last = build_module(composed("channels_last=true"), datamodule()).generator
    contiguous = build_module(composed("channels_last=false"), datamodule()).generator
    weight = channels_last.deconv[0][1].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not contiguous.deconv[0][1].weight.is_contiguous(memory_format=torch.channels_last)

    # Same weights, same images: only the memory order differs.
    contiguous.load_state_dict(channels_last.state_dict())
    channels_last.eval()
    contiguous.eval()
    with torch.no_grad():
        assert torch.allclose(channels_last(*generator_inputs()), contiguous(*generator_inputs()), atol=1e-5)


def test_compile_flag_is_applied():
    # nn.Module.compile only wraps the call; nothing is compiled until a forward pass, which this test never runs.
    assert build_module(composed("compile=true"), datamodule()).generator._compiled_call_impl is not None
    assert build_module(composed("compile=false"), datamodule()).generator._compiled_call_impl is None

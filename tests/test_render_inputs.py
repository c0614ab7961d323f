"""Render inputs without a checkpoint: mixtures, constraints, clamps, keyframes, random walks and seeds."""

from __future__ import annotations

import math

import pytest
import torch

from omegaconf import OmegaConf

from facegen.render.config import compose_render_config
from facegen.render.errors import RenderError
from facegen.render.modes import build_inputs
from facegen.render.spec import read_spec
from facegen.render.values import parse_length, parse_mixture

IDENTITIES = ["synthetic_00", "synthetic_01", "synthetic_02", "synthetic_03"]
EMOTIONS = ["angry", "happy", "neutral", "sad"]
SQRT_HALF = math.sqrt(0.5)


def inputs_for(*overrides: str, seed: int = 0, identities=IDENTITIES, emotions=EMOTIONS):
    """Compose a render config from overrides as render.py would, and compute its frame inputs."""
    cfg = compose_render_config(["ckpt=unused.ckpt", "out=unused", *overrides])
    spec = read_spec(OmegaConf.to_container(cfg, resolve=True))
    return build_inputs(spec, identities, emotions, seed)


def test_mixture_of_indices_adds_one_hots():
    assert parse_mixture("1+3", IDENTITIES, "identity", "identity").tolist() == [0.0, 1.0, 0.0, 1.0]
    assert parse_mixture(2, IDENTITIES, "identity", "identity").tolist() == [0.0, 0.0, 1.0, 0.0]
    # A part may repeat, and names and indices mix.
    assert parse_mixture("synthetic_00+0+3", IDENTITIES, "identity", "identity").tolist() == [2.0, 0.0, 0.0, 1.0]


def test_mixture_prefers_names_that_look_like_numbers():
    names = ["001", "002", "010"]
    assert parse_mixture("010", names, "identity", "identity").tolist() == [0.0, 0.0, 1.0]
    # "1" is no name here, so it is index 1.
    assert parse_mixture("1", names, "identity", "identity").tolist() == [0.0, 1.0, 0.0]


def test_emotion_mixture_constrained_is_unit_length():
    inputs = inputs_for("emotion=happy+sad")
    assert torch.allclose(inputs.emotion[0], torch.tensor([0.0, SQRT_HALF, 0.0, SQRT_HALF]))


def test_identity_mixture_constrained_and_unconstrained():
    constrained = inputs_for("identity=0+2")
    assert torch.allclose(constrained.identity[0], torch.tensor([SQRT_HALF, 0.0, SQRT_HALF, 0.0]))
    unconstrained = inputs_for("identity=0+2", "constrained=false")
    assert unconstrained.identity[0].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_unconstrained_scale_multiplies_inputs():
    inputs = inputs_for("identity=0+1+2", "constrained=false", "inputs.identity.scale=3", "inputs.emotion.scale=0.5", "emotion=happy")
    assert inputs.identity[0].tolist() == [3.0, 3.0, 3.0, 0.0]
    assert inputs.emotion[0].tolist() == [0.0, 0.5, 0.0, 0.0]


def test_constrained_orientation_is_sin_cos_of_yaw():
    inputs = inputs_for("orientation=30")
    assert torch.allclose(inputs.orientation[0], torch.tensor([0.5, math.sqrt(3) / 2]))


def test_unconstrained_orientation_pair_goes_in_raw():
    inputs = inputs_for("constrained=false", "orientation=[2.0,-1.0]", "inputs.orientation.scale=2")
    assert inputs.orientation[0].tolist() == [4.0, -2.0]


def test_clamps_apply_before_the_constraint():
    raw = inputs_for("identity=0+0+0+2", "constrained=false", "inputs.identity.max=2")
    assert raw.identity[0].tolist() == [2.0, 0.0, 1.0, 0.0]
    constrained = inputs_for("identity=0+0+0+2", "inputs.identity.max=2")
    assert torch.allclose(constrained.identity[0], torch.tensor([2.0, 0.0, 1.0, 0.0]) / math.sqrt(5))
    yaw = inputs_for("orientation=80", "inputs.orientation.max=30")
    assert torch.allclose(yaw.orientation[0], torch.tensor([0.5, math.sqrt(3) / 2]))


def test_random_constrained_rows_are_unit_length():
    inputs = inputs_for("mode=random", "frames=20", seed=3)
    assert len(inputs) == 20
    assert torch.allclose(inputs.identity.norm(dim=1), torch.ones(20))
    assert torch.allclose(inputs.emotion.norm(dim=1), torch.ones(20))
    assert torch.allclose(inputs.orientation.norm(dim=1), torch.ones(20))
    yaws = torch.rad2deg(torch.atan2(inputs.orientation[:, 0], inputs.orientation[:, 1]))
    assert yaws.min() >= -90.0
    assert yaws.max() <= 90.0
    assert yaws.std() > 10.0


def test_random_unconstrained_rows_are_raw_mixture_weights():
    inputs = inputs_for("mode=random", "frames=20", "constrained=false", seed=3)
    # Dirichlet draws sum to 1, so their L2 norm is below 1 unless one entry takes everything.
    assert torch.allclose(inputs.identity.sum(dim=1), torch.ones(20))
    assert (inputs.identity.norm(dim=1) < 1.0 - 1e-4).any()


def test_random_keeps_fixed_inputs():
    inputs = inputs_for("mode=random", "frames=5", "identity=1", "orientation=0")
    assert (inputs.identity == torch.tensor([0.0, 1.0, 0.0, 0.0])).all()
    assert (inputs.orientation == torch.tensor([0.0, 1.0])).all()
    assert inputs.emotion.unique(dim=0).shape[0] == 5


def test_seed_repeats_random_and_drunk():
    for mode in ("mode=random", "mode=drunk"):
        first = inputs_for(mode, "frames=8", seed=11)
        again = inputs_for(mode, "frames=8", seed=11)
        other = inputs_for(mode, "frames=8", seed=12)
        for name in ("identity", "emotion", "orientation"):
            assert torch.equal(getattr(first, name), getattr(again, name)), (mode, name)
        assert not torch.equal(first.identity, other.identity), mode


def test_drunk_steps_have_the_set_size():
    inputs = inputs_for(
        "mode=drunk", "frames=10", "constrained=false", "identity=0", "emotion=happy", "orientation=10",
        "inputs.identity.min=null", "inputs.emotion.min=null",
        "inputs.identity.step=0.25", "inputs.emotion.step=0.5", "inputs.orientation.step=4",
    )  # fmt: skip
    identity_steps = inputs.identity.diff(dim=0).norm(dim=1)
    emotion_steps = inputs.emotion.diff(dim=0).norm(dim=1)
    yaws = torch.rad2deg(torch.atan2(inputs.orientation[:, 0], inputs.orientation[:, 1]))
    assert torch.allclose(identity_steps, torch.full((9,), 0.25), atol=1e-5)
    assert torch.allclose(emotion_steps, torch.full((9,), 0.5), atol=1e-5)
    assert torch.allclose(yaws.diff().abs(), torch.full((9,), 4.0), atol=1e-3)
    assert inputs.identity[0].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_drunk_constrained_walk_stays_on_sphere():
    inputs = inputs_for("mode=drunk", "frames=30", "inputs.identity.step=0.3", seed=5)
    assert torch.allclose(inputs.identity.norm(dim=1), torch.ones(30), atol=1e-5)
    # The drunk mode's defaults clamp at 0, so the walk stays among mixtures of real identities.
    assert (inputs.identity >= 0).all()
    assert inputs.identity.diff(dim=0).norm(dim=1).min() > 0


def test_interpolation_endpoints_equal_keyframe_inputs():
    keyframes = "keyframes=[{identity: 0, emotion: happy, orientation: -30, length: 4}, {identity: 2+3, length: 3}, {emotion: sad+happy, orientation: 45}]"
    inputs = inputs_for("mode=interpolate", keyframes)
    assert len(inputs) == 4 + 3 + 1
    # Each keyframe as a single image, with the values it carries over.
    expected = [
        inputs_for("identity=0", "emotion=happy", "orientation=-30"),
        inputs_for("identity=2+3", "emotion=happy", "orientation=-30"),
        inputs_for("identity=2+3", "emotion=sad+happy", "orientation=45"),
    ]
    for frame, single in zip((0, 4, 7), expected):
        for name in ("identity", "emotion", "orientation"):
            assert torch.equal(getattr(inputs, name)[frame], getattr(single, name)[0]), (frame, name)


def test_interpolation_blends_linearly():
    inputs = inputs_for("mode=interpolate", "constrained=false", "keyframes=[{identity: 0, orientation: 0, length: 4}, {identity: 1, orientation: 80}]")
    assert torch.allclose(inputs.identity[1], torch.tensor([0.75, 0.25, 0.0, 0.0]))
    assert torch.allclose(inputs.identity[2], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    # Orientation blends by angle: halfway from 0 to 80 degrees is 40, not the chord's midpoint.
    assert torch.allclose(inputs.orientation[2], torch.tensor([math.sin(math.radians(40)), math.cos(math.radians(40))]))


def test_interpolation_constrained_blend_is_unit_length():
    inputs = inputs_for("mode=interpolate", "keyframes=[{identity: 0, length: 4}, {identity: 1}]")
    assert torch.allclose(inputs.identity.norm(dim=1), torch.ones(5))
    assert torch.allclose(inputs.identity[2], torch.tensor([SQRT_HALF, SQRT_HALF, 0.0, 0.0]))


def test_keyframe_lengths_in_seconds():
    inputs = inputs_for("mode=interpolate", "fps=4", "keyframes=[{identity: 0, length: 1s}, {identity: 1, length: 0.5s}, {identity: 2, length: 3}]")
    # 1 s and 0.5 s at 4 fps, then the last keyframe held for 3 frames.
    assert len(inputs) == 4 + 2 + 3
    assert parse_length("1.5s", 12, "keyframe 1") == 18
    assert parse_length("24", 12, "keyframe 1") == 24


def test_unconstrained_pair_keyframes_blend_componentwise():
    inputs = inputs_for("mode=interpolate", "constrained=false", "keyframes=[{orientation: [0.0, 1.0], length: 2}, {orientation: [2.0, 3.0]}]")
    assert inputs.orientation.tolist() == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["emotion=hapy"], r"emotion='hapy': unknown emotion 'hapy'; this checkpoint allows angry, happy, neutral, sad"),
        (["identity=nobody"], r"unknown identity 'nobody'; this checkpoint allows a name \(synthetic_00, .*\) or an index from 0 to 3"),
        (["identity=4"], r"identity index 4 is out of range; this checkpoint has 4 identities, so use an index from 0 to 3"),
        (["identity=-1"], r"identity index -1 is out of range"),
        (["identity=1++2"], r"identity='1\+\+2' is not a valid mixture"),
        (["emotion=happy+"], r"emotion='happy\+' is not a valid mixture"),
        (["emotion=2"], r"emotion must be a name or a mixture such as happy\+sad, got 2"),
        (["identity=[0,1]"], r"identity must be a name, an index or a mixture such as 0\+2, got \[0, 1\]"),
        (["mode=interpolate", "keyframes=[{identity: 0}, {identity: 1}]"], r"keyframe 1 of 2 has no length; .*length: 24.*length: 2s"),
        (["mode=interpolate", "keyframes=[{identity: 0, length: -4}, {identity: 1}]"], r"keyframe 1 of 2: length -4 is negative"),
        (["mode=interpolate", "keyframes=[{identity: 0, length: -1s}, {identity: 1}]"], r"keyframe 1 of 2: length '-1s' is negative"),
        (["mode=interpolate", "keyframes=[{identity: 0, length: 2m}, {identity: 1}]"], r"length '2m' is not a whole number of frames"),
        (["mode=interpolate", "fps=2", "keyframes=[{identity: 0, length: 0.1s}, {identity: 1}]"], r"length '0.1s' is 0 frames at fps=2"),
        (["mode=interpolate", "keyframes=[{identity: 0, length: 3, yaw: 4}, {identity: 1}]"], r"keyframe 1 of 2 has unknown keys yaw"),
        (["mode=interpolate", "keyframes=[{identity: 0, length: 3}, {identity: 9}]"], r"keyframe 2 identity=9: identity index 9 is out of range"),
        (["orientation=[0.0,1.0]"], r"a free \(sin, cos\) pair needs constrained=false"),
        (["inputs.identity.scale=2"], r"inputs.identity.scale=2 needs constrained=false"),
        (["mode=single", "frames=3"], r"mode=single draws one image, so frames must be 1"),
        (["mode=random", "keyframes=[{identity: 0}]"], r"keyframes only apply to mode=interpolate"),
    ],
)
def test_bad_values_name_value_and_allowed(overrides, message):
    with pytest.raises(RenderError, match=message):
        inputs_for(*overrides)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mode: drunk\nframes: [1,\n", r"is not readable YAML"),
        ("mode: drunk\nfrmes: 3\n", r"has unknown keys frmes; allowed: .*frames"),
        ("mode: drunk\ninputs:\n  identity: {stepp: 3}\n", r"sets inputs.identity.stepp, which a render config does not have"),
        ("mode: sideways\n", r"sets mode='sideways', which is not a render mode; allowed: single, random, drunk, interpolate"),
        ("- 1\n- 2\n", r"must contain a mapping of render settings"),
        ("spec: other.yaml\n", r"a spec file cannot load another one"),
    ],
)
def test_bad_spec_files_rejected(tmp_path, text, message):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(RenderError, match=message):
        compose_render_config([f"spec={path}", "ckpt=unused.ckpt", "out=unused"])


def test_missing_spec_lists_presets():
    with pytest.raises(RenderError, match=r"spec file not found: nosuch; pass a YAML file or one of the presets in .*: drunk_walk, identity_emotion"):
        compose_render_config(["spec=nosuch", "ckpt=unused.ckpt", "out=unused"])


def test_spec_file_then_command_line():
    cfg = compose_render_config(["spec=drunk_walk", "frames=5", "inputs.emotion.step=0.5", "ckpt=unused.ckpt", "out=unused"])
    # The preset's mode picks the drunk defaults, the preset sets its values, and the command line wins.
    assert cfg.mode == "drunk"
    assert cfg.seed == 7
    assert cfg.frames == 5
    assert cfg.inputs.identity.step == 0.08
    assert cfg.inputs.emotion.step == 0.5
    assert cfg.inputs.emotion.min == 0.0

"""The procedural face renderer: determinism, labels and visible differences."""

import torch

from facegen.data.synthetic import SyntheticSource, make_identity, render_face
from facegen.faceset import RAFD_EMOTIONS, DataError

import numpy as np
import pytest


def test_synthetic_is_deterministic():
    first = SyntheticSource(num_identities=3, yaws_per_face=2, seed=7).load(32, 32, 3)
    second = SyntheticSource(num_identities=3, yaws_per_face=2, seed=7).load(32, 32, 3)
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.yaws, second.yaws)


def test_synthetic_seed_changes_faces():
    first = SyntheticSource(num_identities=3, seed=1).load(32, 32, 3)
    second = SyntheticSource(num_identities=3, seed=2).load(32, 32, 3)
    assert not torch.equal(first.images, second.images)


def test_synthetic_labels_cover_every_combination():
    faces = SyntheticSource(num_identities=4, yaws_per_face=3, yaw_range=(-30, 50), seed=0).load(32, 40, 1)
    assert len(faces) == 4 * 8 * 3
    assert faces.images.shape == (96, 1, 40, 32)
    assert faces.emotion_names == list(RAFD_EMOTIONS)
    assert faces.emotions.sum(dim=0).tolist() == [12.0] * 8
    assert faces.identities.bincount().tolist() == [24] * 4
    assert faces.yaws.min() >= -30
    assert faces.yaws.max() <= 50
    # Continuous yaw, not a handful of steps.
    assert len(set(faces.yaws.tolist())) == 96


@pytest.mark.parametrize("identity", range(6))
def test_synthetic_emotions_differ_visibly(identity):
    who = make_identity(0, identity)
    pictures = {e: np.asarray(render_face(who, e, 0.0, 64, 64), dtype=np.float32) for e in RAFD_EMOTIONS}
    for a in RAFD_EMOTIONS:
        for b in RAFD_EMOTIONS:
            if a < b:
                # Share of pixels where some channel moves by more than 25 of 255 levels; 1% is 41 pixels at 64x64.
                changed = (np.abs(pictures[a] - pictures[b]).max(axis=2) > 25).mean()
                assert changed > 0.01, f"{a} and {b} look the same for identity {identity} ({changed:.2%} of pixels differ)"


def test_synthetic_yaw_moves_the_face():
    who = make_identity(0, 1)
    left = np.asarray(render_face(who, "neutral", -45.0, 64, 64), dtype=np.float32)
    right = np.asarray(render_face(who, "neutral", 45.0, 64, 64), dtype=np.float32)
    assert np.abs(left - right).mean() > 2.0


def test_synthetic_rejects_bad_settings():
    with pytest.raises(DataError, match="the synthetic renderer draws"):
        SyntheticSource(emotions=["bored"])
    with pytest.raises(DataError, match="yaw_range"):
        SyntheticSource(yaw_range=(-120, 0))

"""Held-out evaluation: which records are held out, that training never sees them, the baselines, the
metrics logged by the test stage and the comparison sheet written by ``train.py test=true``."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from facegen.checkpoint import load_generator, read_checkpoint
from facegen.data.datamodule import FaceDataModule
from facegen.evaluation import Holdout, emotion_labels, mean_emotion_images, same_identity_baselines
from facegen.faceset import FaceSet
from facegen.generator import ConfigError, Generator
from facegen.module import FaceGenModule
from facegen.training import validate

from conftest import PROJECT_ROOT, TINY_TRAINING, run_train, subprocess_env

EMOTIONS = ["happy", "neutral", "sad"]


def make_faceset(people: int = 4, yaws: tuple[float, ...] = (-30.0, 0.0, 30.0), size: int = 8, names: list[str] | None = None) -> FaceSet:
    """Every identity with every emotion at every yaw; each image is filled with a value unique to its record."""
    records = [(p, e, y) for p in range(people) for e in range(len(EMOTIONS)) for y in yaws]
    images = torch.stack([torch.full((3, size, size), (7 * i) % 256, dtype=torch.uint8) for i in range(len(records))])
    return FaceSet(
        images=images,
        identities=torch.tensor([r[0] for r in records]),
        emotions=torch.nn.functional.one_hot(torch.tensor([r[1] for r in records]), len(EMOTIONS)).float(),
        yaws=torch.tensor([r[2] for r in records], dtype=torch.float32),
        identity_names=names or [f"p{i}" for i in range(people)],
        emotion_names=list(EMOTIONS),
    )


class FixedSource:
    """A data source that returns a prepared face set, for data modules built in-process."""

    def __init__(self, faceset: FaceSet) -> None:
        self.faceset = faceset

    def load(self, width: int, height: int, channels: int) -> FaceSet:
        return self.faceset


def record_keys(faceset: FaceSet, mask: torch.Tensor) -> set[tuple[int, int, float]]:
    labels = emotion_labels(faceset)
    return {(int(faceset.identities[i]), int(labels[i]), float(faceset.yaws[i])) for i in torch.nonzero(mask).flatten().tolist()}


def test_emotion_holdout_picks_count_identities():
    faceset = make_faceset(people=6)
    mask = Holdout(emotion="happy", count=3, seed=0).select(faceset)
    labels = emotion_labels(faceset)
    assert (labels[mask] == 0).all()
    assert len(set(faceset.identities[mask].tolist())) == 3
    # Every yaw of a chosen identity's happy photos is held out.
    assert mask.sum() == 3 * 3


def test_emotion_holdout_depends_on_seed():
    faceset = make_faceset(people=12)
    first = Holdout(emotion="happy", count=4, seed=0).select(faceset)
    again = Holdout(emotion="happy", count=4, seed=0).select(faceset)
    other = Holdout(emotion="happy", count=4, seed=1).select(faceset)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_emotion_holdout_fraction():
    mask = Holdout(emotion="sad", fraction=0.5, seed=3).select(make_faceset(people=8))
    assert mask.sum() == 4 * 3


def test_yaw_holdout_selects_the_range():
    faceset = make_faceset(yaws=(-40.0, -20.0, 0.0, 20.0, 30.0, 40.0, 50.0))
    mask = Holdout(yaw_ranges=((20.0, 40.0),)).select(faceset)
    assert set(faceset.yaws[mask].tolist()) == {20.0, 30.0, 40.0}
    assert set(faceset.yaws[~mask].tolist()) == {-40.0, -20.0, 0.0, 50.0}


def test_combinations_match_numeric_names():
    faceset = make_faceset(names=["001", "002", "010", "011"])
    # YAML reads 010 as the number 10; it still names the identity "010".
    mask = Holdout(combinations=((10, "happy"), ("001", "sad", 30.0))).select(faceset)
    assert record_keys(faceset, mask) == {(2, 0, -30.0), (2, 0, 0.0), (2, 0, 30.0), (0, 2, 30.0)}


def test_random_combinations_keep_every_input():
    faceset = make_faceset(people=5)
    mask = Holdout(fraction=0.6, seed=2).select(faceset)
    combos = {(p, e) for p, e, _ in record_keys(faceset, mask)}
    assert len(combos) == round(0.6 * 15)
    kept = ~mask
    assert set(faceset.identities[kept].tolist()) == set(range(5))
    assert set(emotion_labels(faceset)[kept].tolist()) == set(range(len(EMOTIONS)))


@pytest.mark.parametrize(
    "holdout, message",
    [
        (Holdout(combinations=(("p0", "happy"), ("p0", "neutral"), ("p0", "sad"))), "every training record of identities"),
        (Holdout(yaw_ranges=((-90.0, 90.0),)), "every training record"),
        (Holdout(yaw_ranges=((60.0, 90.0),)), "select no record.*yaws run from -30 to 30 degrees"),
        (Holdout(combinations=(("p9", "happy"),)), "unknown identity"),
        (Holdout(combinations=(("p0", "angry"),)), "unknown emotion"),
        (Holdout(combinations=(("p0", "happy", 45.0),)), "matches no record"),
        (Holdout(emotion="happy", count=5), "only 4 identities"),
    ],
)
def test_holdout_rejects(holdout, message):
    with pytest.raises(ConfigError, match=message):
        holdout.select(make_faceset())


@pytest.mark.parametrize(
    "config, message",
    [
        ({"emotion": "happy"}, "needs holdout.count or holdout.fraction"),
        ({"emotion": "happy", "count": 2, "fraction": 0.5}, "not both.*holdout.count=null"),
        ({"fraction": 1.5}, "strictly between 0 and 1"),
        ({"count": 0}, "positive integer"),
        ({"yaw_ranges": [[40, 20]]}, "low <= high"),
        ({"yaw_ranges": [["a", "b"]]}, "low <= high"),
        ({"yaw_ranges": [[20, 40, 60]]}, "low <= high"),
        ({"yaw_ranges": [-90, 90]}, r"list of \[low, high\] pairs"),
        ({"yaw_ranges": 30}, r"list of \[low, high\] pairs"),
        ({"combinations": [["p0"]]}, "each holdout combination"),
        ({"combinations": [], "emotion": None}, "select nothing"),
        ({"identity": "p0"}, "unknown holdout setting"),
    ],
)
def test_holdout_config_rejects(config, message):
    with pytest.raises(ConfigError, match=message):
        Holdout.from_config(config)


def test_empty_holdout_config_is_none():
    assert Holdout.from_config(None) is None
    assert Holdout.from_config({}) is None


def training_records(datamodule: FaceDataModule, epochs: int) -> set[tuple[int, int, float]]:
    """Collect (identity, emotion, yaw) of every record the training loader yields over ``epochs`` epochs."""
    seen = set()
    for _ in range(epochs):
        for batch in datamodule.train_dataloader():
            yaws = torch.rad2deg(torch.atan2(batch["orientation"][:, 0], batch["orientation"][:, 1]))
            for identity, emotion, yaw in zip(batch["identity"].argmax(1), batch["emotion"].argmax(1), yaws):
                seen.add((int(identity), int(emotion), round(float(yaw), 3)))
    return seen


def test_training_never_sees_heldout_records():
    faceset = make_faceset(people=6)
    datamodule = FaceDataModule(FixedSource(faceset), width=8, height=8, batch_size=5, holdout=Holdout(emotion="happy", count=3))
    datamodule.setup("fit")
    heldout = record_keys(faceset, torch.isin(torch.arange(len(faceset)), datamodule.heldout_index))
    seen = training_records(datamodule, epochs=2)
    assert len(heldout) == 9
    assert seen.isdisjoint(heldout)
    assert len(seen) == len(faceset) - 9


def test_flips_skip_heldout_yaws():
    faceset = make_faceset(yaws=(-50.0, -30.0, 0.0, 30.0, 50.0))
    holdout = Holdout(yaw_ranges=((20.0, 40.0),))
    datamodule = FaceDataModule(FixedSource(faceset), width=8, height=8, batch_size=7, hflip=True, holdout=holdout)
    torch.manual_seed(0)
    seen_yaws = {yaw for _, _, yaw in training_records(datamodule, epochs=20)}
    # Flips still happen (50 becomes -50), but -30 is never mirrored into the held-out 30.
    assert {-50.0, -30.0, 0.0, 50.0} <= seen_yaws
    assert all(not 20.0 <= yaw <= 40.0 for yaw in seen_yaws)


def test_same_identity_baseline_prefers_neutral():
    faceset = make_faceset()
    mask = Holdout(combinations=(("p1", "sad"),)).select(faceset)
    train_index, heldout_index = torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()
    chosen = same_identity_baselines(faceset, train_index, heldout_index)
    labels = emotion_labels(faceset)
    assert (faceset.identities[chosen] == 1).all()
    assert (labels[chosen] == EMOTIONS.index("neutral")).all()
    assert torch.equal(faceset.yaws[chosen], faceset.yaws[heldout_index])


def test_same_identity_baseline_nearest_yaw():
    faceset = make_faceset(yaws=(-40.0, 0.0, 25.0, 35.0, 60.0))
    mask = Holdout(yaw_ranges=((20.0, 40.0),)).select(faceset)
    train_index, heldout_index = torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()
    chosen = same_identity_baselines(faceset, train_index, heldout_index)
    assert torch.equal(faceset.identities[chosen], faceset.identities[heldout_index])
    assert torch.equal(emotion_labels(faceset)[chosen], emotion_labels(faceset)[heldout_index])
    # 25 is closer to 0 than to 60; 35 is closer to 60.
    expected = {25.0: 0.0, 35.0: 60.0}
    assert [expected[y] for y in faceset.yaws[heldout_index].tolist()] == faceset.yaws[chosen].tolist()


def test_mean_emotion_uses_training_photos_only():
    faceset = make_faceset()
    mask = Holdout(emotion="happy", count=2).select(faceset)
    train_index = torch.nonzero(~mask).flatten()
    means = mean_emotion_images(faceset, train_index)
    happy_train = train_index[emotion_labels(faceset)[train_index] == 0]
    assert means.shape == (len(EMOTIONS), 3, 8, 8)
    assert torch.allclose(means[0], faceset.images[happy_train].float().mean(0) / 255.0)


def run_test_stage(faceset: FaceSet, root: Path, precision: str = "32-true") -> tuple[dict, FaceDataModule]:
    """Run Lightning's test stage on an untrained small generator with two identities' happy photos held out."""
    size = faceset.images.shape[-1]
    datamodule = FaceDataModule(FixedSource(faceset), width=size, height=size, batch_size=4, holdout=Holdout(emotion="happy", count=2))
    datamodule.setup("test")
    settings = dict(num_identities=len(faceset.identity_names), num_emotions=3, width=size, height=size, embed_dim=8, fc_dims=[16], grid_channels=8, widths=[8, 8])
    torch.manual_seed(0)
    module = FaceGenModule(
        generator=Generator(**settings),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        generator_config=settings,
        identity_names=faceset.identity_names,
        emotion_names=faceset.emotion_names,
        holdout=datamodule.heldout_records(),
    )
    trainer = L.Trainer(
        accelerator="cpu", precision=precision, logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root
    )
    return trainer.test(module, datamodule=datamodule, verbose=False)[0], datamodule


def test_test_stage_logs_metrics(tmp_path):
    metrics, datamodule = run_test_stage(make_faceset(people=4, size=16), tmp_path)

    dataset = datamodule.heldout_dataset()
    items = [dataset[i] for i in range(len(dataset))]
    real = torch.stack([item["image"] for item in items])
    for name in ("same_identity", "mean_emotion"):
        baseline = torch.stack([item[name] for item in items])
        per_image = [10 * math.log10(1.0 / torch.mean((b - r) ** 2).item()) for b, r in zip(baseline, real)]
        assert metrics[f"test/psnr_{name}"] == pytest.approx(sum(per_image) / len(per_image), rel=1e-4)
        assert -1.0 <= metrics[f"test/ssim_{name}"] <= 1.0
    assert set(metrics) == {f"test/{m}{p}" for m in ("psnr", "ssim") for p in ("", "_same_identity", "_mean_emotion")}


def test_metrics_unaffected_by_bf16_autocast(tmp_path):
    faceset = make_faceset(people=4, size=16)
    # Textured images, because SSIM of flat images says little about its variance terms.
    faceset.images = torch.randint(0, 256, faceset.images.shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    full, _ = run_test_stage(faceset, tmp_path / "fp32")
    mixed, _ = run_test_stage(faceset, tmp_path / "bf16", precision="bf16-mixed")
    for name in ("same_identity", "mean_emotion"):
        assert mixed[f"test/ssim_{name}"] == pytest.approx(full[f"test/ssim_{name}"], abs=1e-5)
        assert mixed[f"test/psnr_{name}"] == pytest.approx(full[f"test/psnr_{name}"], abs=1e-4)
    # The generator itself runs in bf16, so its images, and only they, differ slightly.
    assert mixed["test/ssim"] == pytest.approx(full["test/ssim"], abs=0.02)


def test_checkpoint_rejects_other_holdout():
    settings = dict(num_identities=2, num_emotions=2, width=8, height=8, embed_dim=4, fc_dims=[4], grid_channels=4, widths=[4])

    def module(holdout):
        return FaceGenModule(Generator(**settings), torch.optim.SGD, settings, ["a", "b"], ["happy", "neutral"], holdout=holdout)

    trained = module([["a", "happy", 0.0]])
    checkpoint = {"state_dict": trained.state_dict()}
    trained.on_save_checkpoint(checkpoint)
    module([["a", "happy", 0.0]]).on_load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="may have trained on this run's held-out records"):
        module([["b", "happy", 0.0]]).on_load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="may have trained on this run's held-out records"):
        module(None).on_load_checkpoint(checkpoint)


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.run_dir=/tmp/facegen-evaluation-test", *overrides])


def test_test_needs_a_holdout():
    with pytest.raises(ConfigError, match="no holdout is set"):
        validate(composed("test=true"))
    with pytest.raises(ConfigError, match="train=false only evaluates a trained run: also set test=true and ckpt_path"):
        validate(composed("train=false", "holdout=emotion"))
    with pytest.raises(ConfigError, match=r"also set ckpt_path \("):
        validate(composed("train=false", "test=true", "holdout=emotion"))
    validate(composed("test=true", "holdout=emotion"))


@pytest.mark.slow
def test_train_py_test_stage(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    result = run_train(
        [*TINY_TRAINING, "data.yaws_per_face=2", "trainer.max_epochs=2", "holdout=emotion", "holdout.count=2", "test=true", "logger=wandb"],
        run_dir,
        cache_dir,
    )
    log_text = result.stdout + result.stderr
    for name in ("generated", "same_identity", "mean_emotion"):
        assert name in log_text

    # 2 identities x 2 yaws of happy photos, 4 columns; each tile is 32 pixels plus 2 of padding.
    sheet = Image.open(run_dir / "holdout_sheet.png")
    assert sheet.size == (4 * 34 + 2, 4 * 34 + 2)
    # The sheet logged to W&B has the same pixels.
    logged = list((run_dir / "wandb").glob("offline-run-*/files/media/images/holdout_sheet*.png"))
    assert len(logged) == 1
    assert np.array_equal(np.asarray(Image.open(logged[0]).convert("RGB")), np.asarray(sheet.convert("RGB")))

    stored = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["facegen"]["holdout"]
    assert len(stored) == 4
    assert {record[1] for record in stored} == {"happy"}
    assert load_generator(run_dir).holdout == stored

    # The sheet of held-out people: one row per held-out identity, one generated face per emotion.
    heldout_sheet = tmp_path / "heldout_people.png"
    command = [sys.executable, str(PROJECT_ROOT / "scripts" / "sample_sheet.py"), str(run_dir), str(heldout_sheet), "--heldout", "--zoom", "1"]
    script = subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr[-2000:]
    assert Image.open(heldout_sheet).size == (8 * 34 + 2, 2 * 34 + 2)
    script = subprocess.run([*command, "--transpose"], cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr[-2000:]
    assert Image.open(heldout_sheet).size == (2 * 34 + 2, 8 * 34 + 2)
    # With the real photos: the nearest-yaw photo of each pair, and the generated face at that photo's yaw.
    script = subprocess.run([*command, "--with-real", "--yaw", "30"], cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr[-2000:]
    assert "(real, generated)" in script.stdout
    assert "no photo" not in script.stdout
    assert Image.open(heldout_sheet).size == (16 * 34 + 2, 2 * 34 + 2)
    bad_inputs = [
        ([command[1], str(tmp_path), str(heldout_sheet)], "error: no last.ckpt"),
        ([*command[1:], "--zoom", "0"], "--zoom must be at least 1"),
    ]
    for bad, message in bad_inputs:
        script = subprocess.run([sys.executable, *bad], cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=120)
        assert script.returncode != 0
        assert message in script.stderr
        assert "Traceback" not in script.stderr

    # Held-out records scored beside trained ones, by yaw, and against the person's other emotions.
    command = [sys.executable, str(PROJECT_ROOT / "scripts" / "score_records.py"), str(run_dir), "--yaw-bins", "-90", "0", "90"]
    script = subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr[-2000:]
    tables = script.stdout
    assert "| held out | 4 |" in tables
    assert "| trained | 44 |" in tables
    yaw_counts = [int(line.split("|")[2]) for line in tables.splitlines() if line.startswith("| -90 to 0 |") or line.startswith("| 0 to 90 |")]
    assert sum(yaw_counts) == 48
    # The 4 held-out happy faces are scored once against their own photos, then against each of the person's
    # 7 trained emotions, and each generated other emotion against the held-out photo.
    assert tables.count("| generated happy | real happy (held out) | 4 |") == 1
    assert tables.count("| generated happy | real ") == 8
    assert tables.count("| real happy (held out) | 4 |") == 8

    # A rejected start in the run folder rewrites .hydra/config.yaml; the scripts read the checkpoint's settings.
    config_path = run_dir / ".hydra" / "config.yaml"
    config_path.write_text(config_path.read_text().replace("num_identities: 3", "num_identities: 12"))
    again_scored = subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=120)
    assert again_scored.returncode == 0, again_scored.stderr[-2000:]
    assert again_scored.stdout == script.stdout

    # Evaluating the run again from its checkpoint gives the same numbers.
    again = run_train(
        [*TINY_TRAINING, "data.yaws_per_face=2", "holdout=emotion", "holdout.count=2", "test=true", "train=false", "ckpt_path=last"],
        run_dir,
        cache_dir,
    )
    table = [line for line in log_text.splitlines() if line.startswith("generated")]
    assert table and table[-1] in (again.stdout + again.stderr)

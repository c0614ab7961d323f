"""Score a trained run's generated faces against the real photos: held-out records beside trained ones.

    python scripts/score_records.py RUN_FOLDER [--yaw-bins -60 -40 -20 0 20 40 60]

The test stage of ``train.py test=true`` scores only the held-out records. This script scores the records
the run trained on the same way (PSNR per image, then averaged; SSIM averaged over the group), so that
the loss on unseen faces can be read against the fit on seen ones. ``--yaw-bins`` splits every record by
yaw. For held-out records whose person also has trained photos with other emotions, it scores the
generated held-out face against those photos too, and the generated other emotion against the held-out
photo: it shows whether the emotion input moved the face towards the held-out expression.

The data settings stored in the run's checkpoint rebuild the data and its split (older checkpoints fall
back to RUN_FOLDER/.hydra/config.yaml). The images are generated in float32 from checkpoints/last.ckpt,
so the scores of a bf16-mixed run can differ from its test stage in the third digit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from facegen.checkpoint import CheckpointError, LoadedGenerator, load_generator, run_data_config
from facegen.evaluation import describe_records, emotion_labels, image_metrics
from facegen.faceset import FaceSet, encode_orientation
from facegen.training import build_datamodule

BATCH_SIZE = 64


@torch.no_grad()
def generate(loaded: LoadedGenerator, faces: FaceSet, index: torch.Tensor) -> torch.Tensor:
    """Draw the records at ``index`` as (N, C, H, W) floats in [0, 1]."""
    identity_count = len(loaded.identity_names)
    parts = []
    for batch in index.split(BATCH_SIZE):
        identity = torch.nn.functional.one_hot(faces.identities[batch], identity_count).float()
        parts.append(loaded.generator(identity, faces.emotions[batch].float(), encode_orientation(faces.yaws[batch])).float())
    return torch.cat(parts)


def score(generated: torch.Tensor, real: torch.Tensor) -> tuple[str, str]:
    """Return PSNR (dB) and SSIM of ``generated`` against ``real``, scored as the test stage does, as table cells."""
    metrics = image_metrics("")
    for fake_batch, real_batch in zip(generated.split(BATCH_SIZE), real.split(BATCH_SIZE)):
        metrics.update(fake_batch, real_batch)
    values = metrics.compute()
    return f"{float(values['psnr']):.2f}", f"{float(values['ssim']):.3f}"


def real_images(faces: FaceSet, index: torch.Tensor) -> torch.Tensor:
    return faces.images[index].float() / 255.0


def markdown(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines.extend("| " + " | ".join(str(value) for value in row) + " |" for row in rows)
    return "\n".join(lines)


def split_table(loaded: LoadedGenerator, faces: FaceSet, train_index: torch.Tensor, heldout_index: torch.Tensor) -> str:
    rows = []
    for name, index in (("held out", heldout_index), ("trained", train_index)):
        if len(index):
            rows.append((name, len(index), *score(generate(loaded, faces, index), real_images(faces, index))))
    return markdown(("records", "count", "PSNR (dB)", "SSIM"), rows)


def yaw_table(loaded: LoadedGenerator, faces: FaceSet, heldout: torch.Tensor, edges: list[float]) -> str:
    rows = []
    yaws = f"{float(faces.yaws.min()):g} to {float(faces.yaws.max()):g} degrees"
    for low, high in zip(edges, edges[1:]):
        # The last bin includes its upper edge, so that every record between the first and last edge is counted.
        inside = (faces.yaws >= low) & ((faces.yaws < high) if high != edges[-1] else (faces.yaws <= high))
        index = torch.nonzero(inside).flatten()
        if not len(index):
            continue
        held = int(heldout[index].sum())
        if held == len(index):
            trained_on = "no"
        elif held == 0:
            trained_on = "yes"
        else:
            trained_on = f"{len(index) - held} of {len(index)}"
        rows.append((f"{low:g} to {high:g}", len(index), trained_on, *score(generate(loaded, faces, index), real_images(faces, index))))
    if not rows:
        raise SystemExit(f"no record has a yaw in --yaw-bins {' '.join(f'{edge:g}' for edge in edges)}; this data set's yaws run from {yaws}")
    return markdown(("yaw (degrees)", "records", "trained on", "PSNR (dB)", "SSIM"), rows)


def cross_emotion_table(loaded: LoadedGenerator, faces: FaceSet, train_index: torch.Tensor, heldout_index: torch.Tensor) -> str | None:
    """Pair each held-out record with the same person's trained record of each other emotion (nearest yaw).

    Only records whose emotion the run never saw for that person are paired, as in an emotion holdout.
    A yaw holdout trains the same emotion at other yaws, so its records are left to the split and yaw tables.
    """
    labels = emotion_labels(faces)
    pairs: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for record in heldout_index.tolist():
        same_person = train_index[faces.identities[train_index] == faces.identities[record]]
        if (labels[same_person] == labels[record]).any():
            continue
        for emotion in labels[same_person].unique().tolist():
            if emotion == int(labels[record]):
                continue
            candidates = same_person[labels[same_person] == emotion]
            partner = int(candidates[(faces.yaws[candidates] - faces.yaws[record]).abs().argmin()])
            key = (faces.emotion_names[int(labels[record])], faces.emotion_names[emotion])
            pairs.setdefault(key, []).append((record, partner))
    if not pairs:
        return None
    rows = []
    for held_emotion in sorted({held for held, _ in pairs}):
        # Each held-out record once against its own photo, then paired with each of the person's other emotions.
        held_records = torch.tensor(sorted({record for (held, _), matched in pairs.items() if held == held_emotion for record, _ in matched}))
        own_score = score(generate(loaded, faces, held_records), real_images(faces, held_records))
        rows.append((f"generated {held_emotion}", f"real {held_emotion} (held out)", len(held_records), *own_score))
        for (held, other_emotion), matched in sorted(pairs.items()):
            if held != held_emotion:
                continue
            records = torch.tensor([record for record, _ in matched])
            partners = torch.tensor([partner for _, partner in matched])
            generated_held, generated_other = generate(loaded, faces, records), generate(loaded, faces, partners)
            real_held, real_other = real_images(faces, records), real_images(faces, partners)
            rows.append((f"generated {held_emotion}", f"real {other_emotion} (trained)", len(matched), *score(generated_held, real_other)))
            rows.append((f"generated {other_emotion}", f"real {held_emotion} (held out)", len(matched), *score(generated_other, real_held)))
    return markdown(("image", "against", "records", "PSNR (dB)", "SSIM"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with checkpoints/last.ckpt")
    parser.add_argument("--yaw-bins", type=float, nargs="+", metavar="DEGREES", help="bin edges in degrees, ascending, for a table by yaw")
    args = parser.parse_args()
    edges = args.yaw_bins
    if edges is not None and (len(edges) < 2 or any(low >= high for low, high in zip(edges, edges[1:]))):
        parser.error(f"--yaw-bins needs at least two strictly ascending edges, got {' '.join(f'{edge:g}' for edge in edges)}")

    try:
        loaded = load_generator(args.run)
        datamodule = build_datamodule(run_data_config(loaded, args.run))
    except CheckpointError as error:
        raise SystemExit(f"error: {error}") from None
    faces = datamodule.load()
    if faces.identity_names != loaded.identity_names:
        raise SystemExit(f"{args.run}: the data's identities differ from the checkpoint's; was the data changed after training?")
    train_index, heldout_index = datamodule.split()
    if describe_records(faces, heldout_index) != loaded.holdout:
        raise SystemExit(f"{args.run}: the data settings select other held-out records than those stored in {loaded.path}")
    heldout = torch.zeros(len(faces), dtype=torch.bool)
    heldout[heldout_index] = True

    tables = [split_table(loaded, faces, train_index, heldout_index)]
    if edges:
        tables.append(yaw_table(loaded, faces, heldout, edges))
    cross = cross_emotion_table(loaded, faces, train_index, heldout_index) if len(heldout_index) else None
    if cross:
        tables.append(cross)
    print(f"{loaded.path} (epoch {loaded.epoch + 1}), {len(faces)} records\n")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()

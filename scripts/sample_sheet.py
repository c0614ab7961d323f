"""Draw a sheet of the faces a trained run generates at one yaw, optionally beside the real photos.

    python scripts/sample_sheet.py RUN_FOLDER OUT.png [--rows 8] [--zoom 2] [--yaw 0] [--with-real] [--heldout] [--transpose]

Rows are identities spread evenly over the run's identities, columns each emotion, drawn at ``--yaw``
degrees. With ``--heldout`` the rows are instead the identities of the records that the run held out of
training (stored in its checkpoint), so one sheet shows each of those people with the emotions it saw
and the one it did not.

With ``--with-real`` each generated face follows the real photo of the same identity and emotion whose
yaw is nearest to ``--yaw``, and the generated face is drawn at that photo's yaw. The data settings
stored in the checkpoint rebuild the data source, so the photos are cropped and resized as in training.
Keep sheets with real photos out of the repository when the photos' licence or consent forbids copying
them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.utils import make_grid

from facegen.callbacks import sample_identities, save_png
from facegen.checkpoint import CheckpointError, LoadedGenerator, load_generator, run_data_config
from facegen.faceset import FaceSet, encode_orientation
from facegen.training import build_datamodule


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with checkpoints/last.ckpt")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--rows", type=int, default=8, help="number of identities (rows), at least 1")
    parser.add_argument("--zoom", type=int, default=2, help="integer enlargement of the sheet, at least 1")
    parser.add_argument("--yaw", type=float, default=0.0, help="head yaw of the generated faces in degrees (default 0, frontal)")
    parser.add_argument("--with-real", action="store_true", help="put the real photo of the nearest yaw before each generated face (reads the training data)")
    parser.add_argument("--heldout", action="store_true", help="one row per identity with a held-out record, instead of --rows spread identities")
    parser.add_argument("--transpose", action="store_true", help="one column per identity and one row per emotion (and real photo)")
    args = parser.parse_args()
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, got {args.rows}")
    if args.zoom < 1:
        parser.error(f"--zoom must be at least 1, got {args.zoom}")
    return args


def chosen_identities(loaded: LoadedGenerator, args: argparse.Namespace) -> list[int]:
    if not args.heldout:
        return sample_identities(len(loaded.identity_names), args.rows)
    if not loaded.holdout:
        raise SystemExit(f"{loaded.path}: this run held nothing out of training; drop --heldout")
    names = {str(record[0]) for record in loaded.holdout}
    return [i for i, name in enumerate(loaded.identity_names) if str(name) in names]


def nearest_photo(faces: FaceSet, identity: int, emotion: int, yaw: float) -> int | None:
    """Return the index of the record with this identity and emotion whose yaw is nearest to ``yaw``."""
    match = torch.nonzero((faces.identities == identity) & (faces.emotions[:, emotion] == 1)).flatten()
    if not len(match):
        return None
    return int(match[(faces.yaws[match] - yaw).abs().argmin()])


@torch.no_grad()
def generate(loaded: LoadedGenerator, identity: int, emotion: int, yaw: float) -> torch.Tensor:
    return loaded.generator(
        torch.nn.functional.one_hot(torch.tensor([identity]), len(loaded.identity_names)).float(),
        torch.eye(len(loaded.emotion_names))[emotion : emotion + 1],
        encode_orientation(torch.tensor([yaw])),
    )[0]


def main() -> None:
    args = parse_args()
    try:
        loaded = load_generator(args.run)
        faces = build_datamodule(run_data_config(loaded, args.run)).load() if args.with_real else None
    except CheckpointError as error:
        raise SystemExit(f"error: {error}") from None
    if faces is not None and faces.identity_names != loaded.identity_names:
        raise SystemExit(f"{args.run}: the data's identities differ from the checkpoint's; was the data changed after training?")
    identities = chosen_identities(loaded, args)
    emotion_count = len(loaded.emotion_names)

    tiles, yaw_gaps = [], []
    for identity in identities:
        for emotion in range(emotion_count):
            yaw = args.yaw
            if faces is not None:
                photo = nearest_photo(faces, identity, emotion, args.yaw)
                if photo is None:
                    tiles.append(torch.ones(faces.images.shape[1:]))
                else:
                    tiles.append(faces.images[photo].float() / 255)
                    yaw = float(faces.yaws[photo])
                    yaw_gaps.append(abs(yaw - args.yaw))
            tiles.append(generate(loaded, identity, emotion, yaw))

    columns = emotion_count * (2 if faces is not None else 1)
    stacked = torch.stack(tiles)
    if args.transpose:
        # (identities * columns, C, H, W) -> (columns * identities, C, H, W)
        stacked = stacked.unflatten(0, (len(identities), columns)).transpose(0, 1).flatten(0, 1)
        columns = len(identities)
    grid = make_grid(stacked, nrow=columns, padding=2, pad_value=1.0)
    grid = torch.nn.functional.interpolate(grid[None], scale_factor=args.zoom, mode="nearest")[0]
    save_png(grid, args.out)

    layout = "real, generated" if faces is not None else "generated"
    direction = "rows" if args.transpose else "columns"
    people = ", ".join(str(loaded.identity_names[i]) for i in identities)
    print(f"wrote {args.out}: {direction} per emotion ({layout}) for {', '.join(loaded.emotion_names)}; identities {people}")
    if faces is not None:
        missing = len(identities) * emotion_count - len(yaw_gaps)
        if missing:
            print(f"{missing} identity and emotion pairs have no photo; their real tiles are blank")
        if yaw_gaps and max(yaw_gaps) > 0:
            print(f"photos are up to {max(yaw_gaps):.1f} degrees from --yaw {args.yaw:g}; each generated face uses its photo's yaw")


if __name__ == "__main__":
    main()

"""Draw a sheet of the frontal faces a trained run generates, optionally beside the real photos.

    python scripts/sample_sheet.py RUN_FOLDER OUT.png [--rows 8] [--zoom 2] [--with-real] [--heldout] [--transpose]

Rows are identities spread evenly over the run's identities, columns each emotion. With ``--heldout``
the rows are instead the identities of the records that the run held out of training (stored in its
checkpoint), so one sheet shows each of those people with the emotions it saw and the one it did not. With ``--with-real``
each generated face follows the real photo of the same labels; the run's own Hydra config
(RUN_FOLDER/.hydra/config.yaml) rebuilds the data source, so the photos are cropped and resized as in
training. Keep sheets with real photos out of the repository when the photos' licence or consent
forbids copying them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torchvision.utils import make_grid

from facegen.callbacks import sample_identities, save_png
from facegen.checkpoint import load_generator
from facegen.faceset import encode_orientation
from facegen.training import build_datamodule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with .hydra/config.yaml and checkpoints/last.ckpt")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--rows", type=int, default=8, help="number of identities (rows)")
    parser.add_argument("--zoom", type=int, default=2, help="integer enlargement of the sheet")
    parser.add_argument("--with-real", action="store_true", help="put the real photo before each generated face (reads the training data)")
    parser.add_argument("--heldout", action="store_true", help="one row per identity with a held-out record, instead of --rows spread identities")
    parser.add_argument("--transpose", action="store_true", help="one column per identity and one row per emotion (and real photo)")
    args = parser.parse_args()

    loaded = load_generator(args.run)
    identity_count, emotion_count = len(loaded.identity_names), len(loaded.emotion_names)
    if args.heldout:
        if not loaded.holdout:
            raise SystemExit(f"{loaded.path}: this run held nothing out of training; drop --heldout")
        names = {str(record[0]) for record in loaded.holdout}
        identities = [i for i, name in enumerate(loaded.identity_names) if str(name) in names]
    else:
        identities = sample_identities(identity_count, args.rows)
    faces = None
    if args.with_real:
        faces = build_datamodule(OmegaConf.load(args.run / ".hydra" / "config.yaml")).load()
        if faces.identity_names != loaded.identity_names:
            raise SystemExit(f"{args.run}: the data's identities differ from the checkpoint's; was the data changed after training?")

    tiles = []
    for identity in identities:
        for emotion in range(emotion_count):
            if faces is not None:
                match = (faces.identities == identity) & (faces.emotions[:, emotion] == 1) & (faces.yaws == 0)
                blank = torch.ones_like(faces.images[0], dtype=torch.float)
                tiles.append(faces.images[match][0].float() / 255 if match.any() else blank)
            with torch.no_grad():
                generated = loaded.generator(
                    torch.nn.functional.one_hot(torch.tensor([identity]), identity_count).float(),
                    torch.eye(emotion_count)[emotion : emotion + 1],
                    encode_orientation(torch.zeros(1)),
                )[0]
            tiles.append(generated)

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


if __name__ == "__main__":
    main()

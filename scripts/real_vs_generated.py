"""Draw a sheet of real photos beside the faces a trained run generates for the same labels.

    python scripts/real_vs_generated.py RUN_FOLDER OUT.png [--rows 8] [--zoom 2]

Rows are identities spread evenly over the run's identities. For each emotion the sheet shows the real
photo, then the generated face, both frontal. The run's own Hydra config (RUN_FOLDER/.hydra/config.yaml)
rebuilds the data source, so the photos are cropped and resized as in training.
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
    args = parser.parse_args()

    loaded = load_generator(args.run)
    cfg = OmegaConf.load(args.run / ".hydra" / "config.yaml")
    faces = build_datamodule(cfg).load()
    if faces.identity_names != loaded.identity_names:
        raise SystemExit(f"{args.run}: the data's identities differ from the checkpoint's; was the data changed after training?")

    tiles = []
    for identity in sample_identities(len(faces.identity_names), args.rows):
        for emotion in range(len(faces.emotion_names)):
            match = (faces.identities == identity) & (faces.emotions[:, emotion] == 1) & (faces.yaws == 0)
            real = faces.images[match][0].float() / 255 if match.any() else torch.ones_like(faces.images[0], dtype=torch.float)
            with torch.no_grad():
                generated = loaded.generator(
                    torch.nn.functional.one_hot(torch.tensor([identity]), len(faces.identity_names)).float(),
                    torch.eye(len(faces.emotion_names))[emotion : emotion + 1],
                    encode_orientation(torch.zeros(1)),
                )[0]
            tiles += [real, generated]

    grid = make_grid(torch.stack(tiles), nrow=2 * len(faces.emotion_names), padding=2, pad_value=1.0)
    grid = torch.nn.functional.interpolate(grid[None], scale_factor=args.zoom, mode="nearest")[0]
    save_png(grid, args.out)
    print(f"wrote {args.out}: columns per emotion (real, generated) for {', '.join(faces.emotion_names)}")


if __name__ == "__main__":
    main()

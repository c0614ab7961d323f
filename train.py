"""Train the FaceGen generator: `python train.py data=london resolution=64x64 optimizer=adagrad`."""

import hydra
from omegaconf import DictConfig

from facegen.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    # Returned for Hydra sweepers that optimize a value.
    return metrics.get("train/loss_epoch")


if __name__ == "__main__":
    main()

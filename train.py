"""Train the FaceGen generator: `python train.py data=london resolution=64x64 optimizer=adagrad`."""

import os
import signal
import sys
from pathlib import Path

import hydra
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from facegen.training import describe_stop, find_user_error, report_error, train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except SIGTERMException:
        # SIGTERMException is a SystemExit with status 0. Exit as a process ended by SIGTERM does (128 + 15),
        # so that a scheduler or script finds a stopped run, not a finished one. Every DDP rank receives the
        # signal, so rank zero alone reports it.
        if rank_zero_only.rank == 0:
            report_error(describe_stop(Path(cfg.paths.run_dir)))
        sys.exit(128 + signal.SIGTERM)
    except Exception as error:
        # Invalid settings, files or numbers end with their message alone; HYDRA_FULL_ERROR=1 shows the traceback.
        user_error = find_user_error(error)
        if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        report_error(str(user_error))
        sys.exit(1)
    # Returned for Hydra sweepers that optimize a value.
    return metrics.get("train/loss_epoch")


if __name__ == "__main__":
    main()

"""Build the run from a composed Hydra config and train it: ``train.py`` calls ``train``."""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import string
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from facegen.callbacks import AtomicCheckpointIO, save_png, to_uint8_array
from facegen.checkpoint import read_checkpoint
from facegen.data.datamodule import FaceDataModule
from facegen.evaluation import Holdout, comparison_sheet, format_results, sheet_caption
from facegen.faceset import DataError
from facegen.generator import ConfigError, check_config
from facegen.io import atomic_save_with, remove_partial_writes
from facegen.module import CheckpointError, FaceGenModule, NonFiniteLossError, config_differences
from facegen.precision import register_resolver

log = logging.getLogger(__name__)

# train.py, the benchmarks and the tests resolve configs after importing this module.
register_resolver()

# Errors in the user's settings, files or numbers; train.py reports their message alone, without a traceback.
USER_ERRORS = (ConfigError, DataError, CheckpointError, NonFiniteLossError, MisconfigurationException)

# Keys of the ``data`` group that configure loading; every other key belongs to the data source.
LOADER_KEYS = ("channels", "batch_size", "num_workers", "hflip", "cache_dir")


def find_user_error(error: BaseException | None) -> BaseException | None:
    """Return the user error behind ``error``, looking through Hydra's wrapper for errors raised while
    building a ``_target_``, or None when ``error`` is something else (a bug, a crash)."""
    while error is not None:
        if isinstance(error, USER_ERRORS):
            return error
        if not isinstance(error, InstantiationException):
            return None
        error = error.__cause__
    return None


def report_error(message: str) -> None:
    """Print ``message`` alone on stderr as ``error: <message>``, and record it in the run's log file.

    DDP ranks other than zero label the line with their rank, because each rank reports its own error.
    """
    rank = rank_zero_only.rank
    message = f"error: {message}" if rank == 0 else f"error (rank {rank}): {message}"
    print(message, file=sys.stderr)
    # The console handler would repeat the message on stdout, so only Hydra's file handler gets the record.
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def describe_stop(run_dir: Path) -> str:
    """Describe a run stopped by SIGTERM, and how to continue it from its last.ckpt."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return "training stopped on SIGTERM before any checkpoint was written; start it again"
    step = torch.load(last, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    return f"training stopped on SIGTERM; continue it from {last} (global step {step}) with ckpt_path=last"


def wandb_has_api_key() -> bool:
    """Whether W&B can sync: an API key in the environment or in ~/.netrc for the configured host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def use_wandb_offline_without_key() -> None:
    """Run W&B offline, writing into the run folder, when the user set no mode and has no API key."""
    if "WANDB_MODE" not in os.environ and not wandb_has_api_key():
        os.environ["WANDB_MODE"] = "offline"
        log.info("no W&B API key found, so W&B runs offline; sync later with `wandb sync`")


def generator_settings(cfg: DictConfig) -> dict[str, Any]:
    """Collect the generator's keyword arguments that come from config, without the data-dependent sizes."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    model.pop("_target_", None)
    return {
        **model,
        "channels": cfg.data.get("channels", 3),
        "width": cfg.resolution.width,
        "height": cfg.resolution.height,
        "grid_width": cfg.resolution.grid_width,
        "grid_height": cfg.resolution.grid_height,
    }


def validate(cfg: DictConfig) -> None:
    """Check the settings that shape the network before any data is read."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"missing required setting(s) {', '.join(missing)}; set them on the command line, "
            f"for example {missing[0]}=/path/to/your/folder for data.root"
        )
    settings = generator_settings(cfg)
    check_config(
        settings["width"],
        settings["height"],
        settings["grid_width"],
        settings["grid_height"],
        settings.get("widths", []),
        settings.get("kernels", [5, 3]),
        settings["channels"],
    )
    if cfg.data.get("batch_size", 16) < 1:
        raise ConfigError(f"data.batch_size must be at least 1, got {cfg.data.batch_size}")
    check_optimizer(cfg)
    if cfg.get("test") and build_holdout(cfg) is None:
        raise ConfigError("test=true evaluates held-out records, but no holdout is set; add holdout=emotion or holdout=yaw")
    if not cfg.get("train", True) and not (cfg.get("test") and cfg.get("ckpt_path")):
        missing = " and ".join(name for name, value in (("test=true", cfg.get("test")), ("ckpt_path", cfg.get("ckpt_path"))) if not value)
        raise ConfigError(f"train=false only evaluates a trained run: also set {missing} (ckpt_path: a checkpoint, or last)")


def check_optimizer(cfg: DictConfig) -> None:
    """Build the optimizer and schedule on a stand-in parameter, so that invalid settings fail before data is read."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    try:
        optimizer = instantiate(cfg.optimizer)(params=[parameter])
        if cfg.get("scheduler"):
            instantiate(cfg.scheduler)(optimizer, total_steps=100)
    except (InstantiationException, TypeError, ValueError) as error:
        raise ConfigError(
            f"invalid optimizer or scheduler settings ({type(error).__name__}: {error}); "
            f"check the optimizer.* and scheduler.* values, now optimizer={OmegaConf.to_container(cfg.optimizer, resolve=True)}"
        ) from error


def build_holdout(cfg: DictConfig) -> Holdout | None:
    holdout = cfg.get("holdout")
    return Holdout.from_config(OmegaConf.to_container(holdout, resolve=True) if holdout is not None else None)


def build_datamodule(cfg: DictConfig) -> FaceDataModule:
    source_cfg = {k: v for k, v in cfg.data.items() if k not in LOADER_KEYS}
    source = instantiate(source_cfg, _convert_="all")
    return FaceDataModule.from_config(cfg.data, source, cfg.resolution.width, cfg.resolution.height, holdout=build_holdout(cfg))


def build_module(cfg: DictConfig, datamodule: FaceDataModule) -> FaceGenModule:
    """Build the generator for the data set's identities and emotions, wrapped in the LightningModule."""
    faceset = datamodule.load()
    generator_config = {
        **generator_settings(cfg),
        "num_identities": len(faceset.identity_names),
        "num_emotions": len(faceset.emotion_names),
    }
    generator = instantiate(cfg.model, **{k: v for k, v in generator_config.items() if k not in cfg.model})
    if cfg.get("channels_last"):
        # Convolution weights, and so activations, in NHWC order, which oneDNN and cuDNN run faster.
        generator.to(memory_format=torch.channels_last)
    if cfg.get("compile"):
        # nn.Module.compile compiles lazily, at the first forward pass, and keeps the parameter names,
        # so checkpoints still load into a plain Generator.
        generator.compile()
        log.info("the generator is compiled with torch.compile at its first forward pass")
    return FaceGenModule(
        generator=generator,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        generator_config=generator_config,
        identity_names=faceset.identity_names,
        emotion_names=faceset.emotion_names,
        holdout=datamodule.heldout_records(),
        data_config={key: OmegaConf.to_container(cfg[key], resolve=True) if cfg.get(key) is not None else None for key in ("data", "resolution", "holdout")},
    )


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    loggers = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        if logger_cfg is None or "_target_" not in logger_cfg:
            continue
        if logger_cfg._target_.endswith("WandbLogger"):
            loggers.append(instantiate(logger_cfg, id=wandb_run_id(run_dir), resume="allow"))
        else:
            loggers.append(instantiate(logger_cfg))
        log.debug("logger %s: %s", name, type(loggers[-1]).__name__)
    return loggers


def test_heldout(trainer: L.Trainer, module: FaceGenModule, datamodule: FaceDataModule, ckpt_path: str | None, run_dir: Path) -> dict[str, float]:
    """Score the held-out records and both baselines, save the comparison sheet and log it; return the metrics."""
    results = trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    metrics = {k: float(v) for k, v in results[0].items()}
    if trainer.is_global_zero:
        dataset = datamodule.heldout_dataset()
        sheet = comparison_sheet(module.generator, dataset)
        path = run_dir / "holdout_sheet.png"
        save_png(sheet, path)
        log.info("held-out records:\n%s\ncomparison sheet: %s", format_results(metrics), path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="holdout_sheet", images=[to_uint8_array(sheet)], caption=[sheet_caption(dataset)])
    return metrics


def wandb_run_id(run_dir: Path) -> str | None:
    """Return the run folder's W&B run id, creating it once, so a resumed run continues the same W&B run.

    Only rank zero creates the file, because only rank zero logs to W&B; other ranks get None until it exists.
    """
    path = run_dir / "wandb_run_id.txt"
    if path.is_file():
        return path.read_text().strip()
    if rank_zero_only.rank != 0:
        return None
    # W&B run ids are short lowercase alphanumeric strings.
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    atomic_save_with(path, lambda stream: stream.write(f"{run_id}\n".encode()))
    return run_id


def resolve_resume(cfg: DictConfig, run_dir: Path) -> str | None:
    """Turn ``ckpt_path`` and ``auto_resume`` into the checkpoint that ``Trainer.fit`` resumes from.

    The checkpoint is read and its model settings compared with this run's before any data is read, so a
    truncated file or another model's checkpoint fails at once. A run that would start afresh in a folder
    that already has a ``last.ckpt`` is rejected, because it would overwrite that run's checkpoints.
    """
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        if not last.is_file():
            raise CheckpointError(f"ckpt_path=last but {last} does not exist; set hydra.run.dir to the folder of the run to resume")
        path = last
    elif ckpt_path:
        path = Path(ckpt_path).expanduser()
        if not path.is_file():
            raise CheckpointError(f"ckpt_path={ckpt_path}: checkpoint not found")
    elif last.is_file() and cfg.get("auto_resume"):
        log.info("auto_resume: continuing from %s", last)
        path = last
    elif last.is_file() and cfg.get("train", True):
        raise ConfigError(
            f"{run_dir} already contains the run that wrote {last}; continue it with ckpt_path=last or auto_resume=true, "
            "or start a new run in another folder (hydra.run.dir)"
        )
    else:
        return None

    checkpoint = read_checkpoint(path)
    stored = checkpoint["facegen"]["generator"]
    # The data-dependent sizes (identities, emotions) are compared when Lightning loads the checkpoint.
    settings = generator_settings(cfg)
    differences = config_differences(stored, settings, keys=settings)
    if differences:
        raise CheckpointError(
            f"{path} was written for another model config: {'; '.join(differences)}. "
            "Resume with the model, resolution and data settings of the run that wrote it"
        )
    log.info("resuming from %s after %d epochs, %d optimizer steps", path, checkpoint.get("epoch", -1) + 1, checkpoint.get("global_step", 0))
    return str(path)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the generator described by ``cfg``; return the final logged metrics."""
    validate(cfg)
    run_dir = Path(cfg.paths.run_dir)
    ckpt_path = resolve_resume(cfg, run_dir)
    if rank_zero_only.rank == 0:
        remove_partial_writes(run_dir / "checkpoints", ".ckpt")
    if any(str(c.get("_target_", "")).endswith("WandbLogger") for c in (cfg.get("logger") or {}).values() if c):
        use_wandb_offline_without_key()
    L.seed_everything(cfg.seed, workers=True)

    # The trainer is built before the data is read, so that invalid trainer or callback settings fail fast.
    datamodule = build_datamodule(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c]
    # Validation scores the held-out records; without a holdout there is nothing to validate on.
    no_validation = {} if datamodule.holdout else {"limit_val_batches": 0}
    try:
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=build_loggers(cfg, run_dir) or False, plugins=[AtomicCheckpointIO()], **no_validation)
    except InstantiationException as error:
        raise ConfigError(f"invalid trainer settings: {error.__cause__ or error}") from error
    module = build_module(cfg, datamodule)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        # Test the weights that fit just left in the module.
        ckpt_path = None

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("test"):
        metrics.update(test_heldout(trainer, module, datamodule, ckpt_path, run_dir))
    if trainer.is_global_zero and cfg.get("train", True):
        log.info("finished after %d epochs, %d steps; metrics %s; run folder %s", trainer.current_epoch, trainer.global_step, metrics, run_dir)
    elif trainer.is_global_zero:
        log.info("scored the checkpoint %s without training; metrics %s; run folder %s", ckpt_path, metrics, run_dir)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
    return metrics

"""Training and rendering speed of one train.py configuration, measured side by side in one process.

    python benchmarks/speed.py [options] [train.py overrides ...]
    python benchmarks/speed.py --steps 60 experiment=london_64
    python benchmarks/speed.py experiment=london_64 trainer.precision=bf16-mixed

Both training paths start from the same initial weights and draw the same batches from the same
DataLoader: a bare PyTorch loop (forward, MSE loss, backward, optimizer and scheduler step) and
Lightning's ``Trainer.fit`` on the FaceGen module built by ``facegen.training``. Throughput counts the
images of the steps after ``--warmup``, from the end of the last warm-up step to the end of the last
step, so it includes loading each batch and the work at epoch ends.

The script also measures the DataLoader alone, peak memory, FLOPs per image (``torch.utils.flop_counter``)
and the dense matmul FLOP/s of the device. Rendering speed is the frames per second of batched generator
forward passes from a checkpoint loaded by ``facegen.checkpoint.load_generator``, the path that render.py
uses.

No logger, checkpoint or sample-grid callback runs during the measured fit; the progress bar follows
the config (``trainer.enable_progress_bar``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from facegen.checkpoint import load_generator
from facegen.faceset import encode_orientation
from facegen.generator import Generator
from facegen.training import build_datamodule, build_module, find_user_error, validate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmark")

# Mixed precisions map to an autocast dtype; "32-true" runs without autocast.
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
FULL_PRECISIONS = ("32-true", "32")


@dataclass
class Throughput:
    """Throughput of a timed training run, its peak memory in MiB and the loss of every step.

    ``images_per_second`` covers the whole timed window, epoch ends included. ``median_images_per_second`` is
    the median over steps of batch size / step time, which a short burst of load from another process on a
    shared machine barely moves.
    """

    images_per_second: float
    median_images_per_second: float
    seconds: float
    images: int
    peak_memory_mib: float
    memory_kind: str
    losses: list[float] = field(default_factory=list)




def compose_config(overrides: list[str], run_dir: Path) -> DictConfig:
    """Compose conf/train.yaml as train.py does, with no logger and the run folder in ``run_dir``."""
    try:
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=["logger=none", *overrides, f"paths.run_dir={run_dir}"])
    except HydraException as error:
        # Hydra's own message names the override and, for a group, the options it has.
        raise SystemExit(f"error: {error}") from None
    validate(cfg)
    precision = str(cfg.trainer.precision)
    if precision not in AUTOCAST_DTYPES and precision not in FULL_PRECISIONS:
        raise SystemExit(f"trainer.precision={precision} is not measured here; use 32-true, bf16-mixed or 16-mixed")
    return cfg


def device_of(cfg: DictConfig) -> torch.device:
    accelerator = str(cfg.trainer.accelerator)
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("trainer.accelerator=gpu but CUDA is not available; use trainer=cpu")
        return torch.device("cuda")
    if accelerator == "cpu":
        return torch.device("cpu")
    raise SystemExit(f"trainer.accelerator={accelerator} is not measured here; use trainer=cpu or trainer=gpu")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def describe_machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"




def resident_mib() -> float:
    """Return this process's resident set size in MiB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[dict]:
    """Measure peak memory inside the block: the CUDA allocator's peak on a GPU, otherwise the process's peak
    resident set size, sampled every 5 ms (it includes Python, torch and the decoded data set)."""
    result = {"mib": 0.0, "kind": ""}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        result["mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["kind"] = "CUDA allocated"
        return
    peak = [resident_mib()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], resident_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        peak[0] = max(peak[0], resident_mib())
        result["mib"] = peak[0]
        result["kind"] = "process resident set"




def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def count_flops(generator: Generator, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Return FLOPs per image of the forward pass, and of forward plus backward, counted on a copy with the
    first two images of ``batch`` (the count per image does not depend on the batch size)."""
    model = copy.deepcopy(generator).cpu().train()
    batch = {k: v[:2] for k, v in to_device(batch, torch.device("cpu")).items()}
    images = batch["image"].shape[0]
    with FlopCounterMode(display=False) as forward_counter:
        model(batch["identity"], batch["emotion"], batch["orientation"])
    with FlopCounterMode(display=False) as training_counter:
        loss = F.mse_loss(model(batch["identity"], batch["emotion"], batch["orientation"]), batch["image"])
        loss.backward()
    return forward_counter.get_total_flops() / images, training_counter.get_total_flops() / images


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """Time dense ``size`` x ``size`` matmuls for about ``seconds``; return the best FLOP/s of a batch of them."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    flops = 2.0 * size**3
    for _ in range(2):
        a @ b
    synchronize(device)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        synchronize(device)
        best = max(best, 4 * flops / (time.perf_counter() - start))
    return best




def throughput_from(stamps: list[tuple[float, int]], warmup: int) -> tuple[float, float, float, int]:
    """Turn (time, images) stamps taken at the end of each step into the window rate, the median step rate,
    the window's seconds and its images, all after ``warmup`` steps."""
    if len(stamps) <= warmup + 1:
        raise SystemExit(f"only {len(stamps)} steps ran; raise --steps above --warmup + 1 ({warmup + 1})")
    seconds = stamps[-1][0] - stamps[warmup][0]
    images = sum(count for _, count in stamps[warmup + 1 :])
    step_rates = [count / (end - start) for (start, _), (end, count) in zip(stamps[warmup:], stamps[warmup + 1 :])]
    return images / seconds, statistics.median(step_rates), seconds, images


def make_scheduler(cfg: DictConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    return instantiate(cfg.scheduler)(optimizer, total_steps=total_steps) if cfg.get("scheduler") else None


def bare_loop(cfg: DictConfig, initial: dict, datamodule, device: torch.device, steps: int, warmup: int) -> Throughput:
    """Train a copy of the generator with a plain PyTorch loop on the data module's training DataLoader."""
    L.seed_everything(cfg.seed, verbose=False)
    generator = initial_generator(cfg, initial, datamodule, device)
    optimizer = instantiate(cfg.optimizer)(params=generator.parameters())
    scheduler = make_scheduler(cfg, optimizer, steps)
    precision = str(cfg.trainer.precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None
    generator.train()

    stamps, losses = [], []
    with peak_memory(device) as memory:
        while len(stamps) < steps:
            for batch in datamodule.train_dataloader():
                batch = to_device(batch, device)
                with autocast(device, precision):
                    images = generator(batch["identity"], batch["emotion"], batch["orientation"])
                    loss = F.mse_loss(images.float(), batch["image"])
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                losses.append(loss.detach())
                synchronize(device)
                stamps.append((time.perf_counter(), batch["image"].shape[0]))
                if len(stamps) == steps:
                    break
    rate, median_rate, seconds, images = throughput_from(stamps, warmup)
    return Throughput(rate, median_rate, seconds, images, memory["mib"], memory["kind"], [float(x) for x in losses])


def profile_steps(cfg: DictConfig, initial: dict, datamodule, device: torch.device, steps: int, rows: int) -> str:
    """Profile ``steps`` bare-loop training steps (after two untimed ones) with torch.profiler; return the table
    of the ``rows`` operators with the most self time."""
    generator = initial_generator(cfg, initial, datamodule, device)
    optimizer = instantiate(cfg.optimizer)(params=generator.parameters())
    precision = str(cfg.trainer.precision)
    batches = [to_device(batch, device) for _, batch in zip(range(steps + 2), itertools.cycle(datamodule.train_dataloader()))]

    def step(batch: dict[str, torch.Tensor]) -> None:
        with autocast(device, precision):
            loss = F.mse_loss(generator(batch["identity"], batch["emotion"], batch["orientation"]).float(), batch["image"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for batch in batches[:2]:
        step(batch)
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.profiler.profile(activities=activities) as profiler:
        for batch in batches[2:]:
            step(batch)
        synchronize(device)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages().table(sort_by=sort_by, row_limit=rows)


def initial_generator(cfg: DictConfig, initial: dict, datamodule, device: torch.device) -> Generator:
    """Build the generator as train.py does (memory format and compile flag included) with the initial weights."""
    module = build_module(cfg, datamodule)
    module.generator.load_state_dict(initial)
    return module.generator.to(device)


class StepClock(L.Callback):
    """Stamps the time and batch size at the end of every training step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stamps: list[tuple[float, int]] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(self.device)
        self.stamps.append((time.perf_counter(), batch["image"].shape[0]))
        self.losses.append(float(outputs["loss"]))


def lightning_fit(cfg: DictConfig, initial: dict, datamodule, device: torch.device, steps: int, warmup: int, run_dir: Path) -> tuple[Throughput, L.Trainer]:
    """Train the FaceGen module with the config's Trainer for ``steps`` steps and time it."""
    L.seed_everything(cfg.seed, verbose=False)
    module = build_module(cfg, datamodule)
    module.generator.load_state_dict(initial)
    clock = StepClock(device)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        max_steps=steps,
        max_epochs=-1,
        logger=False,
        callbacks=[clock],
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    with peak_memory(device) as memory:
        trainer.fit(module, datamodule=datamodule)
    rate, median_rate, seconds, images = throughput_from(clock.stamps, warmup)
    return Throughput(rate, median_rate, seconds, images, memory["mib"], memory["kind"], clock.losses), trainer


def loader_throughput(datamodule, device: torch.device, min_images: int) -> float:
    """Iterate the training DataLoader (and copy batches to the device) until ``min_images`` have passed."""
    images, start = 0, time.perf_counter()
    while images < min_images:
        for batch in datamodule.train_dataloader():
            batch = to_device(batch, device)
            images += batch["image"].shape[0]
    synchronize(device)
    return images / (time.perf_counter() - start)




@torch.inference_mode()
def render_frames_per_second(checkpoint: Path, device: torch.device, batch_size: int, frames: int) -> float:
    """Time batched forward passes of the generator loaded as render.py loads it, including the uint8 conversion."""
    loaded = load_generator(checkpoint, device)
    generator = loaded.generator
    generator_inputs = random_inputs(len(loaded.identity_names), len(loaded.emotion_names), batch_size, device)
    generator(*generator_inputs)
    synchronize(device)
    done, start = 0, time.perf_counter()
    while done < frames:
        images = generator(*generator_inputs)
        images.clamp(0, 1).mul(255).round().byte().cpu()
        done += batch_size
    synchronize(device)
    return done / (time.perf_counter() - start)


def random_inputs(num_identities: int, num_emotions: int, count: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    identity = F.one_hot(torch.randint(num_identities, (count,), generator=generator), num_identities).float()
    emotion = F.one_hot(torch.randint(num_emotions, (count,), generator=generator), num_emotions).float()
    orientation = encode_orientation(torch.empty(count).uniform_(-60, 60, generator=generator))
    return identity.to(device), emotion.to(device), orientation.to(device)


def time_render_py(checkpoint: Path, frames: int, device: torch.device, out_dir: Path) -> tuple[float, float]:
    """Run render.py in random mode for ``frames`` PNG frames; return (wall seconds, frames per second).
    The wall time includes starting Python and importing torch."""
    command = [
        sys.executable, str(PROJECT_ROOT / "render.py"), f"ckpt={checkpoint}", "mode=random", f"frames={frames}",
        f"out={out_dir}", "gif=false", "mp4=false", f"device={device.type}", "seed=0",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"render.py exited with {result.returncode}: {result.stderr[-2000:]}")
    return seconds, frames / seconds




def best(runs: list[Throughput]) -> Throughput:
    return max(runs, key=lambda run: run.images_per_second)


def format_report(results: dict) -> str:
    """Format the measurements as a Markdown table."""
    if "bare_images_per_second" not in results:
        return format_loader_report(results)
    rows = [
        ("bare PyTorch loop", f"{results['bare_images_per_second']:.1f} images/s", f"median step {results['bare_median_images_per_second']:.1f} images/s"),
        ("Lightning (train.py config)", f"{results['lightning_images_per_second']:.1f} images/s", f"median step {results['lightning_median_images_per_second']:.1f} images/s"),
        ("Lightning / bare", f"{results['lightning_over_bare']:.3f}", f"median steps: {results['lightning_over_bare_median']:.3f}"),
        ("peak memory", f"{results['bare_peak_memory_mib']:.0f} MiB bare", f"{results['lightning_peak_memory_mib']:.0f} MiB Lightning ({results['memory_kind']})"),
        ("DataLoader alone", f"{results['loader_images_per_second']:.0f} images/s", f"{results['loader_over_training']:.0f}x training"),
        ("FLOPs per image", f"{results['gflop_per_image_training']:.2f} GFLOP training", f"{results['gflop_per_image_forward']:.2f} GFLOP forward"),
        ("achieved (bare loop)", f"{results['achieved_gflops']:.1f} GFLOP/s", f"{100 * results['fraction_of_matmul']:.0f}% of matmul"),
        (f"dense matmul ({results['matmul_dtype']})", f"{results['matmul_gflops']:.1f} GFLOP/s", "2048x2048"),
        (f"render, batch {results['render_batch']}", f"{results['render_frames_per_second']:.1f} frames/s", "load_generator + forward"),
    ]
    if "render_py_frames_per_second" in results:
        rows.append((f"render.py, {results['render_py_frames']} frames", f"{results['render_py_frames_per_second']:.1f} frames/s", f"{results['render_py_seconds']:.1f} s wall, with start-up"))
    if "job_hours" in results:
        rows.append((f"{results['job_epochs']} epochs of {results['job_images']} images", f"{results['job_hours']:.1f} h", "estimate at the Lightning rate"))
    lines = ["| measurement | value | note |", "| --- | --- | --- |"]
    lines += [f"| {name} | {value} | {note} |" for name, value, note in rows]
    return "\n".join(lines)


def format_loader_report(results: dict) -> str:
    """Format the measurements of a ``--loader-only`` run as a Markdown table."""
    rows = [
        ("DataLoader alone", f"{results['loader_images_per_second']:.0f} images/s", "copies to the device included"),
        ("FLOPs per image", f"{results['gflop_per_image_training']:.2f} GFLOP training", f"{results['gflop_per_image_forward']:.2f} GFLOP forward"),
        (f"dense matmul ({results['matmul_dtype']})", f"{results['matmul_gflops']:.1f} GFLOP/s", "2048x2048"),
    ]
    lines = ["| measurement | value | note |", "| --- | --- | --- |"]
    lines += [f"| {name} | {value} | {note} |" for name, value, note in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="train.py overrides, for example experiment=london_64 trainer.precision=bf16-mixed")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timing at the start of each run (default 5)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each training path, alternating; the fastest is reported (default 2)")
    parser.add_argument("--render-batch", type=int, default=64, help="frames per generator forward pass when timing rendering (default 64, as render.py)")
    parser.add_argument("--render-frames", type=int, default=512, help="frames drawn when timing rendering (default 512)")
    parser.add_argument("--render-py", action="store_true", help="also time a real render.py run drawing --render-frames PNG frames")
    parser.add_argument("--job-epochs", type=int, default=None, help="estimate the time of this many epochs at the Lightning rate")
    parser.add_argument("--job-images", type=int, default=None, help="images per epoch for --job-epochs (default: this data set's training records)")
    parser.add_argument("--loader-only", action="store_true", help="measure only FLOPs per image, matmul FLOP/s and the DataLoader, without training")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS", help="first print the ROWS operators with the most self time in 10 bare-loop steps")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    for option in ("steps", "repeats", "render_batch", "render_frames"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    for option in ("warmup", "profile"):
        if getattr(args, option) < 0:
            parser.error(f"--{option} must be 0 or more, got {getattr(args, option)}")
    for option in ("job_epochs", "job_images"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="facegen-benchmark-") as folder:
        try:
            return run(args, Path(folder))
        except Exception as error:
            # Invalid settings or data end with their message alone, as in train.py; anything else is a bug.
            user_error = find_user_error(error)
            if user_error is None:
                raise
            raise SystemExit(f"error: {user_error}") from None


def run(args: argparse.Namespace, folder: Path) -> dict:
    cfg = compose_config(args.overrides, folder)
    device = device_of(cfg)
    if device.type == "cuda" and cfg.trainer.get("benchmark"):
        torch.backends.cudnn.benchmark = True
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    initial = copy.deepcopy(build_module(cfg, datamodule).generator.state_dict())

    results = {
        "machine": describe_machine(device),
        "overrides": args.overrides,
        "precision": str(cfg.trainer.precision),
        "resolution": f"{cfg.resolution.width}x{cfg.resolution.height}",
        "batch_size": datamodule.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "channels_last": bool(cfg.get("channels_last")),
        "compile": bool(cfg.get("compile")),
    }
    log.info("machine: %s", results["machine"])
    results.update(measure_flops(cfg, initial, datamodule, device))
    if args.profile:
        print(profile_steps(cfg, initial, datamodule, device, steps=10, rows=args.profile))
    if args.loader_only:
        results["loader_images_per_second"] = loader_throughput(datamodule, device, min_images=max(2000, 2 * len(datamodule.train_faceset)))
    else:
        trainer = measure_training(args, cfg, initial, datamodule, device, folder, results)
        checkpoint = folder / "benchmark.ckpt"
        trainer.save_checkpoint(checkpoint)
        measure_rendering(args, checkpoint, device, folder, results)
    if args.job_epochs and not args.loader_only:
        job_images = args.job_images or len(datamodule.train_faceset)
        job_hours = args.job_epochs * job_images / results["lightning_images_per_second"] / 3600
        results.update(job_epochs=args.job_epochs, job_images=job_images, job_hours=job_hours)

    print(f"\nmachine: {results['machine']}")
    print(
        f"config: {' '.join(args.overrides) or '(defaults)'}; precision {results['precision']}, {results['resolution']}, "
        f"batch {results['batch_size']}, channels_last {results['channels_last']}, compile {results['compile']}"
        + ("" if args.loader_only else f", best of {args.repeats}")
    )
    print(format_report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


def measure_flops(cfg: DictConfig, initial: dict, datamodule, device: torch.device) -> dict:
    """Count the model's FLOPs per image and time the device's dense matmul at the training precision."""
    plain = Generator(**build_module(cfg, datamodule).generator_config)
    plain.load_state_dict(initial)
    forward_flops, training_flops = count_flops(plain, next(iter(datamodule.train_dataloader())))
    matmul_dtype = AUTOCAST_DTYPES.get(str(cfg.trainer.precision), torch.float32)
    matmul = matmul_flops_per_second(device, matmul_dtype)
    log.info(
        "FLOPs per image: %.3f G forward, %.3f G forward and backward; dense %s matmul: %.1f GFLOP/s",
        forward_flops / 1e9, training_flops / 1e9, matmul_dtype, matmul / 1e9,
    )  # fmt: skip
    return {
        "training_flops": training_flops,
        "gflop_per_image_forward": forward_flops / 1e9,
        "gflop_per_image_training": training_flops / 1e9,
        "matmul_gflops": matmul / 1e9,
        "matmul_dtype": str(matmul_dtype).removeprefix("torch."),
    }


def measure_training(args: argparse.Namespace, cfg: DictConfig, initial: dict, datamodule, device: torch.device, folder: Path, results: dict) -> L.Trainer:
    """Time both training paths ``args.repeats`` times, alternating, then the DataLoader alone. Add the fastest
    window rate and the fastest median step rate of each path to ``results``; return the last Lightning trainer."""
    bare_runs, lightning_runs = [], []
    for repeat in range(args.repeats):
        bare_runs.append(bare_loop(cfg, initial, datamodule, device, args.steps, args.warmup))
        log.info("run %d, bare loop: %.2f images/s, median step %.2f", repeat + 1, bare_runs[-1].images_per_second, bare_runs[-1].median_images_per_second)
        result, trainer = lightning_fit(cfg, initial, datamodule, device, args.steps, args.warmup, folder / f"fit{repeat}")
        lightning_runs.append(result)
        log.info("run %d, Lightning: %.2f images/s, median step %.2f", repeat + 1, lightning_runs[-1].images_per_second, lightning_runs[-1].median_images_per_second)
    bare, lightning = best(bare_runs), best(lightning_runs)
    # Time the matmul again after training and keep the faster figure, so that load from another process
    # during the first timing cannot make the training look faster than the hardware.
    matmul_dtype = AUTOCAST_DTYPES.get(str(cfg.trainer.precision), torch.float32)
    results["matmul_gflops"] = max(results["matmul_gflops"], matmul_flops_per_second(device, matmul_dtype) / 1e9)
    bare_median = max(run.median_images_per_second for run in bare_runs)
    lightning_median = max(run.median_images_per_second for run in lightning_runs)
    loader_rate = loader_throughput(datamodule, device, min_images=max(2000, 2 * len(datamodule.train_faceset)))
    achieved = results["training_flops"] * bare.images_per_second
    results.update(
        bare_images_per_second=bare.images_per_second,
        bare_peak_memory_mib=bare.peak_memory_mib,
        lightning_images_per_second=lightning.images_per_second,
        lightning_peak_memory_mib=lightning.peak_memory_mib,
        memory_kind=bare.memory_kind,
        lightning_over_bare=lightning.images_per_second / bare.images_per_second,
        bare_median_images_per_second=bare_median,
        lightning_median_images_per_second=lightning_median,
        lightning_over_bare_median=lightning_median / bare_median,
        all_bare_images_per_second=[run.images_per_second for run in bare_runs],
        all_lightning_images_per_second=[run.images_per_second for run in lightning_runs],
        all_bare_median_images_per_second=[run.median_images_per_second for run in bare_runs],
        all_lightning_median_images_per_second=[run.median_images_per_second for run in lightning_runs],
        bare_losses=bare_runs[0].losses,
        lightning_losses=lightning_runs[0].losses,
        loader_images_per_second=loader_rate,
        loader_over_training=loader_rate / max(bare.images_per_second, lightning.images_per_second),
        achieved_gflops=achieved / 1e9,
        achieved_gflops_lightning=results["training_flops"] * lightning.images_per_second / 1e9,
        fraction_of_matmul=achieved / (results["matmul_gflops"] * 1e9),
    )
    return trainer


def measure_rendering(args: argparse.Namespace, checkpoint: Path, device: torch.device, folder: Path, results: dict) -> None:
    """Time batched generation from ``checkpoint`` and, with ``--render-py``, a real render.py run."""
    results["render_batch"] = args.render_batch
    results["render_frames_per_second"] = render_frames_per_second(checkpoint, device, args.render_batch, args.render_frames)
    if args.render_py:
        if not (PROJECT_ROOT / "render.py").is_file():
            raise SystemExit("--render-py needs render.py in the project root")
        seconds, rate = time_render_py(checkpoint, args.render_frames, device, folder / "render")
        results.update(render_py_frames=args.render_frames, render_py_seconds=seconds, render_py_frames_per_second=rate)


if __name__ == "__main__":
    main()

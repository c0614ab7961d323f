"""Write docs/configuration.md, the reference of every config group and option, from the YAML files in conf/.

    .venv/bin/python scripts/config_reference.py          # rewrite docs/configuration.md
    .venv/bin/python scripts/config_reference.py --check  # exit 1 when the page is out of date

Each option's description is the comment block at the top of its file, and each setting's description is
the comment block right above its key (or a comment after it on the same line). A key without a comment
takes the comment of the same key in another file, else a note from TRAIN_NOTES or RENDER_NOTES below.
tests/test_docs.py fails when the page and conf/ differ, so regenerate the page after changing conf/.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF = PROJECT_ROOT / "conf"
OUTPUT = PROJECT_ROOT / "docs" / "configuration.md"
REGENERATE = ".venv/bin/python scripts/config_reference.py"

# A mapping key at the start of a line, with an optional comment after its value.
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.-]*):(?P<value>.*?)(?:\s+#\s?(?P<comment>.*))?$")
PACKAGE_LINE = re.compile(r"^#\s*@package\s+(?P<package>\S+)")

INTRO = f"""\
# Configuration reference

<!-- Generated from conf/ by scripts/config_reference.py. Do not edit this page by hand: change the YAML
files and run `{REGENERATE}`. tests/test_docs.py fails when the two differ. -->

`train.py` composes its config from `conf/train.yaml` and one option of each group below; `render.py` composes
its own from `conf/render/render.yaml`. On the command line, `GROUP=OPTION` picks an option, `KEY=VALUE` sets a
value, and `+KEY=VALUE` adds a key that the config does not have:

```bash
.venv/bin/python train.py data=rafd data.root=/path/to/RaFD resolution=128x160 optimizer.lr=0.0005
```

`.venv/bin/python train.py --cfg job` prints the composed config of a command without running it, and
`--help` lists the groups. In the tables, `???` is a value that must be set, `${{...}}` an interpolation of
another value or of an environment variable, and a key shown as `data.root` is written the same way on the
command line. The descriptions are the comments in the YAML files; keys without one are described by notes
in the generator script.
"""


# Descriptions of train.py keys that have no comment in any YAML file, keyed as on the command line. A YAML
# comment wins over a note; build_reference raises when a note names a key that no file has, so none goes stale.
TRAIN_NOTES = {
    "seed": "Seed of Python, NumPy and PyTorch, set with Lightning's seed_everything (workers too).",
    "data.root": "The folder that holds the images (and, for a manifest, the CSV file).",
    "data.manifest": "File name of the CSV manifest, relative to data.root.",
    "data.emotions": "Emotion names, in the order of the emotion vector; an image labelled with another emotion is an error.",
    "data.gazes": "RaFD gaze directions to read: any of frontal, left, right.",
    "data.include_kids": "Also read the photos of the child models.",
    "data.channels": "Image channels: 3 for RGB, 1 for grayscale.",
    "data.batch_size": "Images per optimizer step in each process (under DDP, in each GPU's process).",
    "data.num_workers": "DataLoader worker processes; 0 loads batches in the training process.",
    "data.hflip": "Mirror each training image with probability 0.5, negating its yaw.",
    "data.cache_dir": "Folder of the decoded-image cache; null decodes the images at every run.",
    "data.num_identities": "Number of synthetic people.",
    "data.yaws_per_face": "Yaws drawn at random for each (identity, emotion) pair.",
    "data.yaw_range": "Range of the drawn yaws in degrees, [low, high] within -90..90.",
    "data.seed": "Seed of the synthetic people and their yaws.",
    "resolution.width": "Image width in pixels.",
    "resolution.height": "Image height in pixels.",
    "resolution.grid_width": "Width of the initial grid; width must be grid_width times a power of two, one 2x upsampling block per doubling.",
    "resolution.grid_height": "Height of the initial grid; height / grid_height must equal width / grid_width.",
    "paths.run_dir": "The run folder: hydra.run.dir for a single run, each job's folder in a sweep.",
    "model.negative_slope": "Negative slope of the LeakyReLU activations.",
    "optimizer.lr": "Learning rate; with a scheduler, the peak rate.",
    "scheduler.warmup_fraction": "Fraction of the run's optimizer steps spent on the linear warm-up.",
    "scheduler.min_lr_ratio": "Final rate as a fraction of optimizer.lr.",
    "scheduler.pct_start": "Fraction of the run spent raising the rate to its peak.",
    "scheduler.milestones": "Points of the run, as fractions of its optimizer steps, where the rate is multiplied by gamma.",
    "scheduler.gamma": "Factor applied to the rate at each milestone.",
    "trainer.accelerator": "cpu or gpu (Lightning's accelerator name).",
    "trainer.devices": "Devices per node: a number, or auto for every visible GPU.",
    "trainer.num_nodes": "Machines in a multi-node run.",
    "trainer.strategy": "How work is spread over devices; ddp runs one process per GPU.",
    "trainer.sync_batchnorm": "Compute batch-normalization statistics over all processes instead of each one's batch.",
    "trainer.precision": "Numeric precision: 32-true, or bf16-mixed on GPUs and CPUs with bfloat16 instructions.",
    "trainer.max_epochs": "Epochs to train.",
    "trainer.log_every_n_steps": "Optimizer steps between logged step metrics.",
    "trainer.benchmark": "Let cuDNN pick the fastest convolution algorithms.",
    "trainer.deterministic": "Use deterministic algorithms where PyTorch has them, at some cost in speed.",
    "trainer.enable_progress_bar": "Show the progress bar.",
    "trainer.enable_model_summary": "Print the table of layers and parameter counts at the start.",
    "trainer.gradient_clip_val": "Clip gradients to this norm; null does not clip.",
    "trainer.default_root_dir": "Lightning's folder for files no other setting places: the run folder.",
    "logger.wandb.project": "W&B project of the runs.",
    "logger.wandb.name": "Display name of the run in W&B; null lets W&B choose one.",
    "logger.wandb.save_dir": "Folder that W&B writes its wandb/ folder into.",
    "logger.wandb.log_model": "true: upload the checkpoints that callbacks.checkpoint keeps as W&B model artifacts.",
    "logger.csv.save_dir": "Folder of the CSV logs; metrics go to <save_dir>/<name>/version_N/metrics.csv.",
    "logger.csv.name": "Subfolder of save_dir for the CSV logs.",
    "callbacks.sample_grid.every_n_epochs": "Draw a sample grid every N epochs, and after the last epoch.",
    "callbacks.sample_grid.rows": "Identity rows of the grid, spread evenly over all identities; columns are the emotions.",
    "callbacks.sample_grid.yaw": "Yaw of the drawn faces in degrees.",
    "callbacks.checkpoint.dirpath": "Folder of the kept checkpoints.",
    "callbacks.checkpoint.filename": "File name pattern of the kept checkpoints (Lightning's format).",
    "callbacks.checkpoint.save_top_k": "-1 keeps every checkpoint written.",
    "callbacks.checkpoint.save_last": "false: last.ckpt is written by callbacks.last_checkpoint instead.",
    "callbacks.last_checkpoint.dirpath": "Folder of last.ckpt.",
    "callbacks.last_checkpoint.every_n_train_steps": "Rewrite last.ckpt every N optimizer steps; 0 turns this off.",
    "callbacks.last_checkpoint.every_n_epochs": "Rewrite last.ckpt every N epochs; 0 turns this off.",
    "callbacks.checkpoint.auto_insert_metric_name": "false: file names follow filename exactly.",
    "holdout.combinations": "[identity, emotion] or [identity, emotion, yaw] records to hold out.",
    "holdout.emotion": "Hold out this emotion of count identities (or of a fraction of them).",
    "holdout.count": "How many identities (with emotion), or how many random (identity, emotion) pairs, to hold out.",
    "holdout.fraction": "The same as a fraction strictly between 0 and 1; set count or fraction, not both.",
    "holdout.seed": "Seed of the random choice of held-out records.",
    "holdout.yaw_ranges": "[low, high] yaw ranges in degrees; every record inside one is held out.",
    "hydra.run.dir": "The run folder of a single run.",
    "hydra.sweep.dir": "The folder of a multirun (-m) sweep.",
    "hydra.sweep.subdir": "Each sweep run's folder inside hydra.sweep.dir: job number and overrides.",
    "hydra.job.chdir": "false: the run keeps the directory it was started in, so relative paths work.",
    "hydra.job.config.override_dirname.exclude_keys": "Overrides left out of sweep folder names.",
}

# The same for render.py keys.
RENDER_NOTES = {
    "inputs.identity.scale": "Factor on the identity vector; must be 1 while constrained.",
    "inputs.identity.step": "Length of each random-walk step of the identity vector (drunk mode).",
    "inputs.identity.min": "Lower clamp of each identity component, or null.",
    "inputs.identity.max": "Upper clamp of each identity component, or null.",
    "inputs.emotion.scale": "Factor on the emotion vector; must be 1 while constrained.",
    "inputs.emotion.step": "Length of each random-walk step of the emotion vector (drunk mode).",
    "inputs.emotion.min": "Lower clamp of each emotion component, or null.",
    "inputs.emotion.max": "Upper clamp of each emotion component, or null.",
    "inputs.emotion.concentration": "Random draws: smaller values mix fewer emotions.",
    "inputs.orientation.scale": "Factor on the orientation pair; must be 1 while constrained.",
    "inputs.orientation.min": "Lower clamp of the yaw in degrees, or null.",
    "inputs.orientation.max": "Upper clamp of the yaw in degrees, or null.",
    "mode": "single, random, drunk or interpolate; conf/render/mode holds each mode's defaults.",
    "overwrite": "true: replace an existing, non-empty output folder once the new render is complete.",
    "emotion": "An emotion name or a mixture joined with + (happy+sad); null draws a random value in random and drunk modes.",
    "orientation": "A yaw in degrees, or [sin, cos] with constrained=false; null draws a random yaw in random and drunk modes.",
    "keyframes": "Interpolate mode: the list of keyframes, each with any of identity, emotion, orientation and a length.",
    "gif": "Write animation.gif (only with more than one frame).",
    "mp4": "Write animation.mp4 (only with more than one frame).",
    "sheet.columns": "Columns of the contact sheet; null makes a near-square grid.",
    "batch_size": "Frames generated per forward pass.",
    "progress": "Show a progress bar over the batches.",
    "spec": "A render description: a YAML file, or the name of a preset in conf/render/presets.",
}

# Comments that head a section of a file rather than describe the key below them: (file name, key).
SECTION_COMMENTS = {("render.yaml", "mode")}

# The value of a table row that only carries the comment of a mapping whose keys follow.
MAPPING = object()

TARGET_NOTES = {
    "_target_": "The class or function that Hydra builds from these settings.",
    "_partial_": "Hydra builds a partial function, and the training code adds the model parameters or optimizer.",
}


def format_value(value: Any) -> str:
    """Format a config value as YAML flow text for a table cell: null, true, 0.001, [5, 3], {a: 1}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()


def table_cell(text: str) -> str:
    return text.replace("|", "\\|")


def read_option(path: Path) -> tuple[str, str | None, dict[str, str], dict]:
    """Read one YAML file; return its description, its @package, the comment of each dotted key, and its content."""
    description: list[str] = []
    package = None
    comments: dict[str, str] = {}
    pending: list[str] = []
    # (indent, key) of the mappings that enclose the current line.
    parents: list[tuple[int, str]] = []
    seen_key = False

    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped:
            pending = []
            continue
        if stripped.startswith("#"):
            match = PACKAGE_LINE.match(stripped)
            if match:
                package = match["package"]
            elif not seen_key:
                description.append(stripped.lstrip("#").strip())
            else:
                pending.append(stripped.lstrip("#").strip())
            continue
        match = KEY_LINE.match(line)
        if match is None:
            # A list item or a continuation line, which the reference shows as part of its key's value.
            pending = []
            continue
        seen_key = True
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        dotted = ".".join([key for _, key in parents] + [match["key"]])
        parents.append((indent, match["key"]))
        comment = " ".join(pending + ([match["comment"]] if match["comment"] else []))
        if comment and (path.name, dotted) not in SECTION_COMMENTS:
            comments[dotted] = comment
        pending = []

    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return " ".join(description), package, comments, content


@dataclass
class ConfigFile:
    """One YAML file of a config tree, with its keys as they are written on the command line."""

    path: Path
    description: str
    # Prepended to the file's keys to give command-line keys: "data." for conf/data/*.yaml, "" for @package _global_.
    prefix: str
    # Comments by command-line key.
    comments: dict[str, str]
    content: dict

    @property
    def name(self) -> str:
        return self.path.stem


def load_file(path: Path, group: str | None) -> ConfigFile:
    """Read a root config (group None), a group option or a preset."""
    description, package, comments, content = read_option(path)
    prefix = "" if group is None or package == "_global_" else f"{package or group}."
    return ConfigFile(path, description, prefix, {prefix + key: text for key, text in comments.items()}, content)


class ConfigTree:
    """The files of one entry point's config (train.py or render.py), and the descriptions of their keys."""

    def __init__(self, root: ConfigFile, groups: dict[str, list[ConfigFile]], presets: list[ConfigFile], notes: dict[str, str]) -> None:
        self.root = root
        self.groups = groups
        self.presets = presets
        self.notes = notes
        files = [root, *(f for options in groups.values() for f in options), *presets]
        # The first comment found for each command-line key describes that key in every file that has no own comment.
        self.comments: dict[str, str] = {}
        for config in files:
            for key, text in config.comments.items():
                self.comments.setdefault(key, text)
        keys = {key for config in files for key, _, _ in self.flatten(config.content, config.prefix)}
        stale = sorted(set(notes) - keys)
        if stale:
            raise ValueError(f"scripts/config_reference.py has notes for keys that no file in conf/ has: {stale}; remove or rename them")

    def documented(self, key: str) -> bool:
        return bool(self.comments.get(key) or key in self.notes)

    def flatten(self, content: dict, prefix: str) -> list[tuple[str, Any, str | None]]:
        """List (command-line key, value, _target_ of the enclosing mapping) for every setting.

        A nested mapping is listed key by key, after a row of its own when it has a comment. When it has a comment
        and none of its keys is documented, it is one row, so that its comment stays beside its values (data.crop).
        """
        rows: list[tuple[str, Any, str | None]] = []
        target = content.get("_target_")
        for key, value in content.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                nested = self.flatten(value, f"{name}.")
                if not self.comments.get(name):
                    rows += nested
                    continue
                if any(self.documented(k) for k, _, _ in nested):
                    # A row without a value keeps the mapping's comment above its keys.
                    rows += [(name, MAPPING, target), *nested]
                    continue
            rows.append((name, value, target))
        return rows

    def describe(self, key: str, own: dict[str, str], target: str | None) -> str:
        """Return a key's description: its own comment, a comment on the same key elsewhere, a note, or its target."""
        text = own.get(key) or self.comments.get(key) or self.notes.get(key)
        if text:
            return text
        leaf = key.rsplit(".", 1)[-1]
        if leaf in TARGET_NOTES:
            return TARGET_NOTES[leaf]
        return f"Argument of `{target}`." if target else ""

    def table(self, config: ConfigFile, skip: tuple[str, ...] = ()) -> list[str]:
        """Return the Markdown table of a file's settings, or an empty list when it has none."""
        rows = [row for row in self.flatten(config.content, config.prefix) if row[0].removeprefix(config.prefix).split(".")[0] not in ("defaults", *skip)]
        if not rows:
            return []
        lines = ["| Key | Default | Description |", "| --- | --- | --- |"]
        for key, value, target in rows:
            description = self.describe(key, config.comments, target)
            default = "" if value is MAPPING else f"`{table_cell(format_value(value))}`"
            lines.append(f"| `{table_cell(key)}` | {default} | {table_cell(description)} |")
        return lines + [""]

    def option_section(self, group: str, config: ConfigFile, heading: str, default: str | None) -> list[str]:
        marker = " (default)" if config.name == default else ""
        lines = [f"{heading} `{group}={config.name}`{marker}", ""]
        if config.description:
            lines += [config.description, ""]
        defaults = describe_defaults(config.content.get("defaults", []))
        if defaults:
            lines += [defaults, ""]
        table = self.table(config)
        if table:
            lines += table
        elif not defaults:
            lines += ["No settings.", ""]
        return lines

    def groups_section(self, command: str, heading: str) -> list[str]:
        """Return a section per group, in the order of the root config's defaults list, then by name."""
        chosen = group_defaults(self.root.content)
        order = [g for g in chosen if g in self.groups] + sorted(set(self.groups) - set(chosen))
        lines = []
        for group in order:
            default = chosen.get(group)
            names = ", ".join(f"`{c.name}`" + (" (default)" if c.name == default else "") for c in self.groups[group])
            lines += [f"{heading} {group}", "", f"`{command} {group}=OPTION`, where OPTION is one of {names}.", ""]
            for config in self.groups[group]:
                lines += self.option_section(group, config, heading + "#", default)
        return lines


def describe_defaults(defaults: list) -> str:
    """Describe an option's own defaults list: the options it extends and the group options it selects."""
    extends = [f"`{entry}`" for entry in defaults if isinstance(entry, str) and entry != "_self_"]
    selects = [
        f"`{key.removeprefix('override').strip().lstrip('/')}={format_value(value)}`"
        for entry in defaults
        if isinstance(entry, dict)
        for key, value in entry.items()
    ]
    parts = []
    if extends:
        parts.append("Extends " + ", ".join(extends))
    if selects:
        parts.append(("selects " if parts else "Selects ") + ", ".join(selects))
    return " and ".join(parts) + "." if parts else ""


def group_defaults(root_config: dict) -> dict[str, str | None]:
    """Map each group named in a root config's defaults list to its default option (None when unset)."""
    chosen: dict[str, str | None] = {}
    for entry in root_config.get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                if not key.startswith("override"):
                    chosen[key] = value
    return chosen


def natural_order(path: Path) -> list:
    """Sort key that puts numbers in numeric order: 32x32 before 64x64 before 128x128."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def load_tree(root: Path, group_folders: list[Path], presets: Path | None, notes: dict[str, str]) -> ConfigTree:
    groups = {folder.name: [load_file(p, folder.name) for p in sorted(folder.glob("*.yaml"), key=natural_order)] for folder in sorted(group_folders)}
    preset_files = [load_file(p, None) for p in sorted(presets.glob("*.yaml"), key=natural_order)] if presets else []
    return ConfigTree(load_file(root, None), {g: options for g, options in groups.items() if options}, preset_files, notes)


def build_reference(conf: Path = CONF, train_notes: dict[str, str] = TRAIN_NOTES, render_notes: dict[str, str] = RENDER_NOTES) -> str:
    """Return the text of docs/configuration.md for the config tree ``conf``; raise ValueError for a note on a missing key."""
    render_conf = conf / "render"
    # conf/render is render.py's config tree, not a group of train.py.
    train = load_tree(conf / "train.yaml", [p for p in conf.iterdir() if p.is_dir() and p != render_conf], None, train_notes)

    lines = [INTRO, "## train.py", "", "### Top-level settings (`conf/train.yaml`)", ""]
    lines += train.table(train.root)
    picks = ", ".join(f"`{g}={o}`" for g, o in group_defaults(train.root.content).items() if o is not None)
    lines += [f"Without `GROUP=OPTION` on the command line, a run uses {picks}.", ""]
    lines += train.groups_section("train.py", "###")

    if (render_conf / "render.yaml").is_file():
        presets = render_conf / "presets"
        folders = [p for p in render_conf.iterdir() if p.is_dir() and p != presets]
        render = load_tree(render_conf / "render.yaml", folders, presets if presets.is_dir() else None, render_notes)
        lines += [
            "## render.py",
            "",
            "[render.md](render.md) explains these settings, the modes and the render description format in full.",
            "",
            "### Settings (`conf/render/render.yaml`, without its `hydra` block)",
            "",
        ]
        lines += render.table(render.root, skip=("hydra",))
        lines += render.groups_section("render.py", "###")
        if render.presets:
            lines += [
                "### Presets",
                "",
                "`render.py spec=NAME` loads `conf/render/presets/NAME.yaml`, a whole render description; keys on the "
                "command line override it.",
                "",
            ]
            for config in render.presets:
                lines += [f"#### `spec={config.name}`", ""]
                if config.description:
                    lines += [config.description, ""]
                lines += render.table(config)

    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Write docs/configuration.md from the YAML files in conf/.")
    parser.add_argument("--check", action="store_true", help="only compare, and exit with status 1 when the page is out of date")
    args = parser.parse_args()

    text = build_reference()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(PROJECT_ROOT)} is out of date with conf/; run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compose the render config from the mode's defaults, a spec file (``spec=FILE.yaml``) and the command line.

Later sources win: mode defaults, then the spec file, then each key set on the command line. The spec's
``mode`` picks the defaults unless the command line sets ``mode`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from facegen.render.errors import RenderError
from facegen.render.spec import MODES

CONFIG_NAME = "render"
# conf/render of this source checkout; render.py reads the same folder.
CONFIG_DIR = Path(__file__).resolve().parents[3] / "conf" / "render"
# Command-line keys that select things rather than set a value of the description.
NOT_DESCRIPTION = ("spec", "mode")


def find_spec_file(spec: str, preset_dir: Path) -> Path:
    """Return ``spec`` as a file path, or the preset of that name in ``preset_dir`` (with or without .yaml)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    for candidate in (preset_dir / spec, preset_dir / f"{spec}.yaml"):
        if candidate.is_file():
            return candidate
    presets = sorted(p.stem for p in preset_dir.glob("*.yaml"))
    raise RenderError(f"spec file not found: {spec}; pass a YAML file or one of the presets in {preset_dir}: {', '.join(presets)}")


def read_spec_file(path: Path, allowed: Sequence[str]) -> dict[str, Any]:
    """Read a spec file into a dict, rejecting keys that a render config does not have."""
    try:
        data = OmegaConf.to_container(OmegaConf.load(path))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
        raise RenderError(f"spec file {path} is not readable YAML: {error}") from error
    if not isinstance(data, dict):
        raise RenderError(f"spec file {path} must contain a mapping of render settings (mode, keyframes, ...), got {type(data).__name__}")
    if "spec" in data:
        raise RenderError(f"spec file {path} sets spec itself; a spec file cannot load another one")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise RenderError(f"spec file {path} has unknown keys {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(allowed))}")
    return data


def apply_spec(cfg: DictConfig, overrides: Sequence[str], preset_dir: Path) -> DictConfig:
    """Return ``cfg`` with its ``spec`` file applied; ``overrides`` are the command-line overrides that made ``cfg``.

    Needs an initialized Hydra (inside ``@hydra.main`` or ``initialize_config_dir``), which composes the
    defaults of the spec's mode.
    """
    if not cfg.get("spec"):
        return cfg
    path = find_spec_file(str(cfg.spec), preset_dir)
    data = read_spec_file(path, [key for key in cfg if key != "spec"])

    parsed = [override for override in OverridesParser.create().parse_overrides(list(overrides)) if not override.key_or_group.startswith("hydra")]
    mode_on_command_line = any(override.key_or_group == "mode" for override in parsed)
    mode = cfg.mode if mode_on_command_line else data.get("mode", cfg.mode)
    try:
        base = compose(config_name=CONFIG_NAME, overrides=[f"mode={mode}"])
    except (ConfigCompositionException, OverrideParseException) as error:
        raise RenderError(f"spec file {path} sets mode={mode!r}, which is not a render mode; allowed: {', '.join(MODES)}") from error

    try:
        merged = OmegaConf.merge(base, data)
    except (ConfigKeyError, ValidationError) as error:
        raise RenderError(f"spec file {path} sets {error.full_key}, which a render config does not have") from error
    merged.spec = str(path)

    for override in parsed:
        key = override.key_or_group
        if key in NOT_DESCRIPTION:
            continue
        if override.is_delete():
            raise RenderError(f"~{key} cannot be combined with spec=; set {key}=null instead")
        OmegaConf.update(merged, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    return merged


def compose_render_config(overrides: Sequence[str] = (), config_dir: Path = CONFIG_DIR) -> DictConfig:
    """Compose a render config from command-line style overrides as render.py does, for use from Python."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name=CONFIG_NAME, overrides=list(overrides))
        return apply_spec(cfg, overrides, config_dir / "presets")

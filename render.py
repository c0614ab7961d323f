"""Draw faces from a checkpoint: `python render.py ckpt=RUN_FOLDER mode=interpolate out=renders/walk`.

Modes are in conf/render/mode, presets for spec= in conf/render/presets; docs/render.md describes both.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

PRESETS = Path(__file__).resolve().parent / "conf" / "render" / "presets"


@hydra.main(version_base="1.3", config_path="conf/render", config_name="render")
def main(cfg: DictConfig) -> None:
    # Imported here so that --help and Hydra's config errors come without the seconds torch and Lightning take to load.
    from facegen.checkpoint import CheckpointError
    from facegen.render import RenderError, render
    from facegen.render.config import apply_spec

    try:
        cfg = apply_spec(cfg, HydraConfig.get().overrides.task, PRESETS)
        render(cfg)
    except (RenderError, CheckpointError) as error:
        # Bad input gets one line and exit status 2; nothing has been written at that point.
        message = str(error).replace("\n", " ")
        print(f"render.py: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

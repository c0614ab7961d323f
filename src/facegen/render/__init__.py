"""Draw faces, interpolations and random walks from trained checkpoints; ``render.py`` is the command line."""

from facegen.render.errors import RenderError
from facegen.render.pipeline import RenderResult, render

__all__ = ["RenderError", "RenderResult", "render"]

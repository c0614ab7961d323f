"""The one exception type for bad render input."""


class RenderError(ValueError):
    """A render setting or value that cannot be drawn; the message names the value and what is allowed."""

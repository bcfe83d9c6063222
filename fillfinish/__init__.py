"""fillfinish: controller, batch execution and electronic batch record of an enclosed aseptic fill-finish machine."""

__version__ = "0.1.0"

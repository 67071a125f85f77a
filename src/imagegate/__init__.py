"""imagegate: an OpenAI-compatible image-edit gateway."""

__version__ = "0.1.0"

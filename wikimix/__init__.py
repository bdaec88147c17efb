"""wikimix: extreme code-switched Wikipedia corpora and diffusion language models trained on them."""

__version__ = "0.1.0"

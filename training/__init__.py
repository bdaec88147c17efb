"""Tokenizers, models, trainer, samplers, metrics."""

"""Frontier: an open, self-hosted LLM router between a light and a reasoning pool."""

__version__ = "0.1.0"

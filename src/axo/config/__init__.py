"""Typed config, validated once at load. See `loader.load`."""

from axo.config.loader import load, validate
from axo.config.root import Config

__all__ = ["Config", "load", "validate"]

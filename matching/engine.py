"""Choosing an engine implementation: the compiled one, unless the reference is asked for by name.

There is no silent fallback. If the Cython extension is missing, creating an engine fails with
an explanation; ``HUB_ENGINE=reference`` (or ``implementation="reference"``) is the explicit
switch to the pure-Python engine.
"""

from __future__ import annotations

import os

from matching.instruments import Instrument
from matching.interface import MatchingEngine
from matching.reference import ReferenceEngine
from matching.types import AssetClass

ENGINE_ENV = "HUB_ENGINE"
IMPLEMENTATIONS = ("cython", "reference")


class EngineUnavailableError(RuntimeError):
    """The requested engine implementation cannot be loaded."""


def _load_cython():
    try:
        from matching import _cengine
    except ImportError as exc:
        raise EngineUnavailableError(
            "the compiled matching engine (matching._cengine) is not built: "
            f"{exc}. Reinstall with `pip install -e .` (needs a C++ compiler and Cython), "
            f"or run on the slow pure-Python engine explicitly with {ENGINE_ENV}=reference."
        ) from exc
    return _cengine.CythonEngine


def cython_available() -> bool:
    try:
        _load_cython()
    except EngineUnavailableError:
        return False
    return True


def selected_implementation(implementation: str | None = None) -> str:
    name = implementation or os.environ.get(ENGINE_ENV) or "cython"
    if name not in IMPLEMENTATIONS:
        raise EngineUnavailableError(
            f"unknown engine implementation {name!r}; choose one of {IMPLEMENTATIONS}"
        )
    return name


def create_engine(
    asset_class: AssetClass,
    instruments: tuple[Instrument, ...],
    implementation: str | None = None,
) -> MatchingEngine:
    """Create one asset class's engine; ``implementation`` overrides ``$HUB_ENGINE``."""
    name = selected_implementation(implementation)
    if name == "reference":
        return ReferenceEngine(asset_class, instruments)
    return _load_cython()(asset_class, instruments)

"""Names a Prevision.io script imports from ``previsionio.utils``.

``from previsio_sdk.utils import PrevisionException`` catches every error of this SDK: it is
:class:`~previsio_sdk.errors.PrevisioError`, the base of the hierarchy in :mod:`previsio_sdk.errors`.
"""

from __future__ import annotations

from .errors import PrevisionException

__all__ = ["PrevisionException"]

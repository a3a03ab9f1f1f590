"""Plain-text rendering of values shown to users, in one place.

:func:`plain` turns numpy scalars into Python ones (clean reprs, JSON, validation);
:func:`short` writes a value for a table cell or a message (floats to 4 significant
digits, strings quoted); :func:`params_text` writes a parameter setting on one line.
Error messages quote user input with :func:`factorkit._validation.show` instead, which
also truncates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["params_text", "plain", "short"]


def plain(value: Any) -> Any:
    """A numpy scalar as the matching Python scalar; anything else unchanged.

    >>> plain(np.int64(3)), plain(np.float32(0.5)), plain("a")
    (3, 0.5, 'a')
    """
    return value.item() if isinstance(value, np.generic) else value


def short(value: Any) -> str:
    """A value on a few characters: floats to 4 significant digits, strings quoted.

    >>> short(0.0123456), short(100), short("als"), short(np.float64(2.5))
    ('0.01235', '100', "'als'", '2.5')
    """
    value = plain(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def params_text(params: Mapping[str, Any]) -> str:
    """``name=value, ...`` for a parameter setting.

    >>> params_text({"factors": 50, "learning_rate": 0.00712345})
    'factors=50, learning_rate=0.007123'
    """
    return ", ".join(f"{k}={short(v)}" for k, v in params.items())

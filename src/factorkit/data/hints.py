"""Fixes suggested in error messages, written for whoever reads them.

A reader's message says how to fix the input in terms of its own arguments:
``pass sep=';'``. The command line has flags instead (``pass --sep ';'``), so messages
never spell a fix out themselves: they call :func:`hint` with the argument's name and
value, and a caller that exposes the arguments differently (the CLI) installs its own
rendering with :func:`hint_style` around the call. This keeps the hint data, not text
that the CLI would have to rewrite.

Examples
--------
>>> hint("sep", ";")
"sep=';'"
>>> hint("duplicates", "last", "mean", "sum")
"duplicates='last', 'mean' or 'sum'"
>>> def flags(name, values):
...     return f"--{name} " + " or ".join(str(v) for v in values)
>>> with hint_style(flags):
...     hint("duplicates", "last", "mean")
'--duplicates last or mean'
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["Placeholder", "column_clash", "hint", "hint_style"]

#: (argument name, its suggested values) -> text, or None to fall back to the Python form
HintStyle = Callable[[str, Sequence[Any]], "str | None"]

_STYLE: contextvars.ContextVar[HintStyle | None] = contextvars.ContextVar(
    "factorkit_hint_style", default=None
)


class Placeholder(str):
    """A value shown as is, not quoted: ``Placeholder("<position>")``."""


def hint(name: str, *values: Any) -> str:
    """How to pass ``name`` with one of ``values``, in the style of the current caller."""
    style = _STYLE.get()
    if style is not None:
        text = style(name, values)
        if text is not None:
            return text
    shown = [v if isinstance(v, Placeholder) else repr(v) for v in values]
    choices = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return f"{name}={choices}"


@contextlib.contextmanager
def hint_style(style: HintStyle) -> Iterator[None]:
    """Render the hints of messages raised inside the block with ``style``."""
    token = _STYLE.set(style)
    try:
        yield
    finally:
        _STYLE.reset(token)


def column_clash(column: str, roles: dict[str, Any]) -> str:
    """The message for two roles given the same column, as the caller spelled them.

    ``roles`` maps each of the two roles to the value the caller passed for it (a name or
    a position); the fix names the second role, the one being resolved when they met.

    Examples
    --------
    >>> message = column_clash("userId", {"user": "userId", "item": 0})
    >>> message.split("; ")[0]
    "user='userId' and item=0 both name column 'userId'"
    >>> message.split("; ")[1]
    'each role needs its own column. Pass item=<another column>.'

    """
    (first, first_spec), (second, second_spec) = roles.items()
    return (
        f"{hint(first, first_spec)} and {hint(second, second_spec)} both name column "
        f"{column!r}; each role needs its own column. Pass "
        f"{hint(second, Placeholder('<another column>'))}."
    )

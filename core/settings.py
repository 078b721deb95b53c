"""Settings the page and the cluster replicas read from their environment."""

from __future__ import annotations

import math
import os
from typing import Callable, Mapping, TypeVar

Number = TypeVar("Number", int, float)


def positive_setting(environ: Mapping[str, str] | os._Environ, name: str, parse: Callable[[str], Number], what: str) -> Number | None:
    """$name parsed as a positive finite ``parse`` (int or float); None when unset or blank.

    Anything else is a ValueError that names the variable and says what it should be (``what``,
    e.g. "a positive integer"): a typo must not silently fall back to a default."""
    value = environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = parse(value)
    except ValueError:
        number = parse("0")
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be {what}, not {value!r}")
    return number

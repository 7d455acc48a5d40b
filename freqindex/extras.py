"""Optional heavy dependencies, imported lazily through one helper that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from freqindex.errors import MissingExtraError


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module``; when it (or one of its own imports) is missing, raise a one-line
    MissingExtraError (a UsageError: exit 2) naming the pip extra that installs it, instead of an ImportError
    that surfaces as an internal error.

    ``purpose`` names what needs it in the message (default: the module)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what, missing = purpose or module, exc.name or module
        need = (
            f"{what} is not installed"
            if missing == what
            else f"{what} needs {missing}, which is not installed"
        )
        raise MissingExtraError(f"{need}: pip install 'freqindex[{extra}]'", extra=extra) from None

"""Optional heavy dependencies, imported lazily through one helper that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from freqindex.errors import UsageError


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module``; when it (or one of its own imports) is missing, raise a one-line UsageError naming
    the pip extra that installs it, instead of an ImportError that surfaces as an internal error.

    ``purpose`` names what needs it in the message (default: the module)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = purpose or module
        raise UsageError(
            f"{what} needs {exc.name or module}, which is not installed: pip install 'freqindex[{extra}]'"
        ) from None

"""Matplotlib on the Agg backend, shared by every report: one way to get ``pyplot``, save a figure to a file,
or embed it in HTML as a base64 PNG."""

from __future__ import annotations

import base64
import io
from pathlib import Path

DPI = 110


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as PNG and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)


def png_base64(fig) -> str:
    """``fig`` as a base64 PNG for ``<img src="data:image/png;base64,...">``; the figure is closed."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()

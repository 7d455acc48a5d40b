"""Whether library code may ask the Hugging Face hub for a model or tokenizer.

Off by default: a name that is not a local path fails at once with a message listing the local forms that
are accepted, instead of retrying an unreachable network. Turn it on per call (``allow_hub=True``) or for a
process with the environment variable ``FREQINDEX_ALLOW_HUB=1``. Library code never changes ``os.environ``:
the decision is passed to the loaders as their own offline / local-files flags.
"""

from __future__ import annotations

import os

ALLOW_HUB_ENV = "FREQINDEX_ALLOW_HUB"


def hub_allowed(allow_hub: bool | None = None) -> bool:
    """``allow_hub`` when given, else the ``FREQINDEX_ALLOW_HUB`` environment variable (1/true/yes)."""
    if allow_hub is not None:
        return bool(allow_hub)
    return os.environ.get(ALLOW_HUB_ENV, "").strip().lower() in ("1", "true", "yes", "on")

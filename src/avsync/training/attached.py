"""The Trainer a LightningModule is attached to, or None, through Lightning's public property only."""
from __future__ import annotations

__all__ = ["attached_trainer"]


def attached_trainer(module):
    """``module.trainer``, or None when the module is not attached to a Trainer (the public
    property raises then), e.g. a module built and stepped by hand in a script or a test."""
    try:
        return module.trainer
    except RuntimeError:
        return None

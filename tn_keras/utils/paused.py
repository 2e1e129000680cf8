"""A run that stopped on purpose: its time budget ran out, its progress is saved, and
``--resume`` continues it (the CLI's exit code 6, not an error)."""


class RunPaused(Exception):
    """Raised when a run reaches its wall-clock budget after saving where it stands; the
    message says where that is and how to continue."""

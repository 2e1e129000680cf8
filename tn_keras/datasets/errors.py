"""Exceptions raised by `tn_keras.datasets`."""


class DatasetNotFoundError(FileNotFoundError):
    """No source held the requested dataset.

    The message lists every path and source that was tried, in search order, and how to
    place the files (``data_dir`` / ``TN_KERAS_DATA``) or allow a download (offline mode off).
    """


class DatasetFormatError(ValueError):
    """A dataset file exists but is corrupt or malformed.

    The message names the file and the fault. It is raised instead of falling through to the
    next source, so a broken file is never silently shadowed by a download.
    """

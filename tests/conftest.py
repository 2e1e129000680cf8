"""Shared pytest fixtures.

Real-data tests carry the ``real_data`` marker and take the ``real_data_dir`` fixture, which
skips them, with the reason, when ``TN_KERAS_DATA`` does not point at a folder of datasets.
"""
import atexit
import os
import shutil
import tempfile

import pytest

# Never let a test reach a network download: tensorflow-datasets hangs for minutes offline.
os.environ.setdefault("TN_KERAS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Checkpoints trained with no --out go to $TN_KERAS_HOME: one private folder per test process,
# so the suite never writes into the user's ~/.keras/tn_keras and two pytest-xdist workers
# never share (and lock each other out of) a run folder. Child processes inherit it.
os.environ["TN_KERAS_HOME"] = tempfile.mkdtemp(prefix="tn_keras_home_")
atexit.register(shutil.rmtree, os.environ["TN_KERAS_HOME"], ignore_errors=True)


@pytest.fixture(scope="session")
def real_data_dir():
    path = os.environ.get("TN_KERAS_DATA")
    if not path:
        pytest.skip("real data not configured: set TN_KERAS_DATA to the folder with mnist.npz, "
                    "fashion_mnist.npz and cifar10.npz (CI uses ../shared/data)")
    if not os.path.isdir(path):
        pytest.skip(f"TN_KERAS_DATA={path!r} is not a folder")
    return path

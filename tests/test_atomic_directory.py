"""`tn_keras.utils.files.atomic_directory`: a folder appears whole, with an ordinary folder's
mode (not the 0700 of the temporary folder it was written in), or not at all."""
import os
import stat

import pytest

from tn_keras.utils.files import atomic_directory


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_folder_gets_the_mode_mkdir_gives(tmp_path):
    reference = tmp_path / "made_by_mkdir"
    os.mkdir(reference)
    target = tmp_path / "level_0"
    with atomic_directory(str(target)) as tmp:
        with open(os.path.join(tmp, "images.npz"), "wb") as f:
            f.write(b"x")
    assert _mode(target) == _mode(reference)
    assert os.listdir(target) == ["images.npz"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]


def test_a_failure_leaves_nothing_and_an_existing_folder_is_kept(tmp_path):
    target = tmp_path / "level_0"
    with pytest.raises(RuntimeError):
        with atomic_directory(str(target)) as tmp:
            open(os.path.join(tmp, "half"), "wb").close()
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
    os.mkdir(target)
    with pytest.raises(FileExistsError):
        with atomic_directory(str(target)):
            pass

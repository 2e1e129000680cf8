"""`tn_keras.utils.native_stderr`: a native library's notice is dropped from descriptor 2,
everything else written there comes back, in order."""
import os
import subprocess
import sys

SCRIPT = r"""
import os
from tn_keras.utils.native_stderr import without_lines  # the package's imports print first
os.write(2, b"before\n")
with without_lines():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"a real warning\n")
os.write(2, b"after\n")
"""


def test_only_the_notice_is_dropped():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[lines.index("before"):] == ["before", "a real warning", "after"]


def test_a_failing_block_still_restores_the_descriptor_and_its_lines(capfd):
    from tn_keras.utils.native_stderr import without_lines

    capfd.readouterr()  # what importing printed
    try:
        with without_lines():
            os.write(2, b"the error's context\n")
            raise KeyError("x")
    except KeyError:
        pass
    os.write(2, b"restored\n")
    assert capfd.readouterr().err.splitlines() == ["the error's context", "restored"]

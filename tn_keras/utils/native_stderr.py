"""Lines that native libraries write straight to file descriptor 2, filtered.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from C++ the first
time an interpreter allocates its tensors; no environment variable or Python logger reaches
it (``TF_CPP_MIN_LOG_LEVEL`` does not). `without_lines` sends descriptor 2 to a temporary
file around such a call and copies back every line that does not match, so a real warning
or error still reaches the user, after the call, in its order.

Standard library only.
"""
import contextlib
import os
import re
import sys
import tempfile

#: LiteRT's notice that it uses its default CPU delegate: information, not a warning.
XNNPACK_NOTICE = re.compile(rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.\s*$")


@contextlib.contextmanager
def without_lines(pattern=XNNPACK_NOTICE):
    """Inside the block, what is written to descriptor 2 is held back; on the way out, the
    lines that do not match ``pattern`` (bytes regex) are written to it. Where descriptor 2
    cannot be redirected (no such descriptor), the block runs unfiltered."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True)
                    if not pattern.match(line)]
            if kept:
                os.write(2, b"".join(kept))

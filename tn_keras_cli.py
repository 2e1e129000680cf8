"""The ``tn-keras`` console script: silence TensorFlow's start-up lines, then run `tn_keras.cli`.

This module sits outside the ``tn_keras`` package on purpose. Importing anything from
``tn_keras`` imports Keras and TensorFlow (the layers register with Keras on import), which
takes seconds: the quick commands (`is_quick`: ``--help``, ``--version``, ``list``,
``status``) run with `light_imports` and load neither. Other commands load TensorFlow, whose
C++ libraries print their start-up lines (oneDNN, CPU features, the absl "before
InitializeLog" banner) while they load, before any log level applies. So the console script
sets the log levels and imports TensorFlow with file descriptor 2 sent to /dev/null first;
``--verbose`` skips all of it. `tn_keras.cli.main` does the rest (Python warnings and
loggers) and is what tests call in-process.
"""
import contextlib
import importlib.util
import os
import sys

# Packages whose ``__init__`` imports Keras (``tn_keras`` registers its layers with it; the zoo
# builds its architectures' registry; the others import their Keras code). A quick command loads
# the plain modules it needs from them (``training.config``, ``distill.config``,
# ``datasets.codecs``, ``zoo.checkpoints``) without running those ``__init__``s.
LIGHT_PACKAGES = ("tn_keras", "tn_keras.zoo", "tn_keras.datasets", "tn_keras.distill",
                  "tn_keras.training")


def _banner():
    """`tn_keras.utils.tensorflow_banner`, loaded without running ``tn_keras/__init__`` (which
    imports Keras): its functions outlive the light import."""
    with light_imports():
        from tn_keras.utils import tensorflow_banner
    return tensorflow_banner


def silence_tensorflow(import_now=True):
    """Quiet TensorFlow's C++ / absl logs; import it with its start-up lines discarded (when
    ``import_now``: the run would import it anyway)."""
    # C++ INFO, WARNING and ERROR lines (set, not defaulted: --verbose is the way to see them).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["GRPC_VERBOSITY"] = "ERROR"
    if import_now:
        _banner().import_quietly()


def keras_backend():
    """The backend Keras will load (`tensorflow_banner.keras_backend`), without importing it."""
    return _banner().keras_backend()


def loads_tensorflow(argv) -> bool:
    """Whether this run may import TensorFlow: always under its Keras backend (Keras imports
    it), and for every command (some read data or write exports with it) but ``--help`` and
    ``--version``, which under another backend load neither it nor Keras's TensorFlow parts."""
    only_help = not argv or bool({"-h", "--help", "--version"} & set(argv))
    return not only_help or keras_backend() == "tensorflow"


def is_quick(argv) -> bool:
    """Whether the command answers from files alone, without Keras or TensorFlow: ``--help``
    (of any command), ``--version``, no command at all (the usage error), ``list`` without
    ``--table`` or ``--recipes`` (names read from the zoo's source, tags from the checkpoint
    folders), ``status`` (manifests, backup states, sha256 and lock files), ``info`` (the zoo's
    catalogue and the checkpoint's manifest) and ``card`` of a shipped checkpoint (the
    generated card beside it)."""
    if not argv or {"-h", "--help", "--version"} & set(argv):
        return True
    words = [a for a in argv if not a.startswith("-")]
    command = words[0] if words else None
    if command == "card":
        return (len(words) == 2 and not {"--check", "--weights"} & set(argv)
                and _shipped_card(words[1]) is not None)
    return ((command == "list" and not {"--table", "--recipes"} & set(argv))
            or command in ("status", "info"))


def _shipped_card(name):
    """`tn_keras.zoo.api.shipped_card`, loaded without running any package ``__init__``."""
    with light_imports():
        from tn_keras.zoo import api

        return api.shipped_card(name)


@contextlib.contextmanager
def light_imports():
    """Inside the block, `LIGHT_PACKAGES` are bare package modules (their ``__init__`` not run),
    so importing a plain module of theirs (``tn_keras.cli``, ``tn_keras.zoo.checkpoints``)
    imports no Keras. Every ``tn_keras`` module imported inside is dropped on the way out, and
    those loaded before the block are put back: a later import in the same process (a test, a
    second command) gets the real package."""
    before = {name: module for name, module in sys.modules.items() if _ours(name)}
    try:
        for name in LIGHT_PACKAGES:
            spec = importlib.util.find_spec(name)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)
        yield
    finally:
        for name in [name for name in sys.modules if _ours(name)]:
            del sys.modules[name]
        sys.modules.update(before)
        for name in LIGHT_PACKAGES:  # the real parent package's attribute, where it had one
            parent, _, child = name.rpartition(".")
            if parent in before and name in before:
                setattr(before[parent], child, before[name])


def _ours(name):
    return name == "tn_keras" or name.startswith("tn_keras.")


def main():
    argv = sys.argv[1:]
    # Light only in a process that has not loaded tn_keras yet (once loaded, it is all there).
    quick = is_quick(argv) and "tn_keras" not in sys.modules
    if "--verbose" not in argv:
        silence_tensorflow(import_now=not quick and loads_tensorflow(argv))
    with light_imports() if quick else contextlib.nullcontext():
        from tn_keras.cli import main as cli_main

        return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())

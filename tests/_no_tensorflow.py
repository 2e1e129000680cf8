"""Run Python code in a fresh process where TensorFlow cannot be imported.

A machine with JAX or PyTorch and no TensorFlow is what many GPU users have. Uninstalling
TensorFlow for a test is not an option, so the child process installs a `sys.meta_path` finder
that raises ``ModuleNotFoundError`` for ``tensorflow`` (and its sub-modules) before anything
else is imported: any code path that still needs TensorFlow fails the test loudly.
"""
import os
import subprocess
import sys
import textwrap

# Runs first in the child: the finder must be in place before keras or tn_keras is imported.
# It answers like a machine without TensorFlow would to a probe: torch._dynamo calls
# `importlib.util.find_spec("tensorflow")` while Keras loads, and skips a spec with no origin as
# it skips an absent module. An actual import raises ModuleNotFoundError from the loader.
PRELUDE = textwrap.dedent(
    """
    import importlib.abc
    import importlib.machinery
    import sys

    class _AbsentLoader(importlib.abc.Loader):
        def create_module(self, spec):
            raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked by the test)",
                                      name=spec.name)

        def exec_module(self, module):
            raise ModuleNotFoundError(module.__name__)

    class _BlockTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                return importlib.machinery.ModuleSpec(name, _AbsentLoader(), origin=None)
            return None

    sys.meta_path.insert(0, _BlockTensorFlow())
    """
)


def run_without_tensorflow(code, backend="jax", env=None, timeout=600, cwd=None):
    """Runs ``code`` under ``KERAS_BACKEND=backend`` with TensorFlow blocked.

    Returns the `subprocess.CompletedProcess` (text output). The caller asserts on
    ``returncode`` and on what the code prints.
    """
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["KERAS_BACKEND"] = backend
    child_env.setdefault("TN_KERAS_OFFLINE", "1")
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + "\n" + textwrap.dedent(code)],
        capture_output=True, text=True, env=child_env, timeout=timeout, cwd=cwd,
    )


def assert_ran(result):
    """Fails with the child's stderr when it did not exit 0."""
    assert result.returncode == 0, (
        f"child exited {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n"
        f"--- stderr ---\n{result.stderr[-8000:]}"
    )


def stdout_without_tensorflow(code, **kwargs):
    """`run_without_tensorflow`, failing unless the child exits 0; returns what it printed."""
    result = run_without_tensorflow(code, **kwargs)
    assert_ran(result)
    return result.stdout

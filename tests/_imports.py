"""Reading a module's imports without importing it (``ast``), for the tests that check who
imports what: `test_import_layers` (no import runs up the layers) and
`test_tensorflow_internals` (TensorFlow-private modules are imported in one place only)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Source folder -> the package it is installed as (setup.py: zoo/ is tn_keras.zoo).
SOURCES = {"tn_keras": "tn_keras", "zoo": "tn_keras.zoo"}


def python_files():
    """``(path relative to ROOT, dotted module name, is a package __init__)`` of every module."""
    for folder, package in SOURCES.items():
        for directory, subdirectories, files in os.walk(os.path.join(ROOT, folder)):
            subdirectories[:] = sorted(d for d in subdirectories
                                       if not d.startswith((".", "__pycache__")))
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, os.path.join(ROOT, folder))[:-3].split(os.sep)
                is_init = parts[-1] == "__init__"
                module = ".".join([package] + (parts[:-1] if is_init else parts))
                yield os.path.relpath(path, ROOT).replace(os.sep, "/"), module, is_init


def imported_modules(source, module, is_init):
    """``(line, absolute dotted name)`` of every import in ``source``, however deeply nested.

    ``from package import name`` yields ``package.name`` (a sub-module, or a name the package
    defines: `test_import_layers.unit` tells them apart); relative imports are resolved
    against ``module``.
    """
    package = module if is_init else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"

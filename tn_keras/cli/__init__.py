"""The ``tn-keras`` command line: one module per sub-command.

Each module defines ``add_parser(subparsers)`` and ``run(args)``; ``COMMANDS`` lists them in the
order ``tn-keras --help`` shows them.

Every error ends as one line on stderr, ``tn-keras <command>: error: <message>``, and an exit
code from `EXIT_CODES`; ``--debug`` adds the traceback. Output is quiet by default (the console
script silences TensorFlow's C++ start-up lines before importing it, `tn_keras.cli.quiet` the
Python loggers and third-party warnings); ``--verbose`` keeps them.
"""
import argparse
import importlib
import sys

from tn_keras.cli import quiet

COMMANDS = ("quickstart", "list", "info", "card", "train", "evaluate", "predict", "export",
            "distill", "distill_eval", "distill_data", "figures", "data", "status")

# Exit codes, one per kind of failure (0 is success; argparse uses 2 for a bad flag).
EXIT_CODES = {
    "internal": 1,     # an unexpected error (a bug, or TensorFlow / h5py failing)
    "input": 2,        # a bad argument or file: wrong value, contents or JSON, a path that
                       # is missing, exists already, or is a file / folder where the other is
    "filesystem": 3,   # the file system refused: permission, disk full, I/O error (OSError)
    "memory": 4,       # out of memory, or an image too large to decode (decompression bomb)
    "locked": 5,       # the output is being written by another run, or a stale lock
    "paused": 6,       # a time budget ran out with the progress saved: --resume continues
    "interrupted": 130,  # Ctrl-C (128 + SIGINT)
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line (the usage is one ``--help`` away), and which takes
    no abbreviated flags (``--over`` must not mean ``--overwrite``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(EXIT_CODES["input"], f"{self.prog}: error: {message} (see {self.prog} "
                                       "--help)\n")


def _add_global_flags(parser, default):
    parser.add_argument("--debug", action="store_true", default=default,
                        help="print the traceback of an error")
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="keep TensorFlow's logs and Python warnings")


def build_parser():
    parser = ArgumentParser(
        prog="tn-keras",
        description="TaylorNet model zoo: coarse-grained polynomial networks for Keras 3.",
    )
    from tn_keras.version import __version__  # not `tn_keras`: its __init__ imports Keras

    parser.add_argument("--version", action="version", version=f"tn_keras {__version__}")
    _add_global_flags(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        module = importlib.import_module(f"tn_keras.cli.{command}_command")
        module.add_parser(subparsers)
        # Also after the command (`tn-keras train X --debug`); SUPPRESS keeps the global value.
        # (Module names use "_", sub-command names "-": distill_eval is `distill-eval`.)
        _add_global_flags(subparsers.choices[command.replace("_", "-")],
                          default=argparse.SUPPRESS)
    return parser


def exit_code(error):
    """The `EXIT_CODES` entry for an exception."""
    from tn_keras.utils.locks import OutputLockedError
    from tn_keras.utils.paused import RunPaused

    if isinstance(error, KeyboardInterrupt):
        return EXIT_CODES["interrupted"]
    if isinstance(error, OutputLockedError):
        return EXIT_CODES["locked"]
    if isinstance(error, RunPaused):
        return EXIT_CODES["paused"]
    if isinstance(error, MemoryError) or type(error).__name__ == "DecompressionBombError":
        return EXIT_CODES["memory"]
    module = type(error).__module__ or ""
    if module.startswith(("tensorflow", "h5py", "jax", "torch")):
        return EXIT_CODES["internal"]
    if isinstance(error, (ValueError, TypeError, LookupError, FileNotFoundError,
                          FileExistsError, IsADirectoryError, NotADirectoryError)):
        return EXIT_CODES["input"]
    if isinstance(error, OSError):
        return EXIT_CODES["filesystem"]
    return EXIT_CODES["internal"]


def error_line(command, error):
    """``tn-keras <command>: error: <message>`` on one line, whatever the exception."""
    from tn_keras.utils.write_errors import WriteRefusedError

    if isinstance(error, KeyboardInterrupt):
        message = "interrupted"
    elif isinstance(error, WriteRefusedError):
        message = str(error)  # "no space left on device writing <path> (<what is intact>)"
    elif isinstance(error, MemoryError):
        message = f"out of memory{': ' + str(error) if str(error) else ''}"
    elif isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.filename}: {error.strerror}"  # e.g. "x.npz: Permission denied"
    else:
        message = str(error) or type(error).__name__
        if exit_code(error) == EXIT_CODES["internal"] or isinstance(error, LookupError):
            message = f"{type(error).__name__}: {message}"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    internal = exit_code(error) == EXIT_CODES["internal"]
    # A TensorFlow error's first line says what failed; the rest is a graph trace (--debug).
    message = lines[0] if internal and len(lines) > 1 else " ".join(lines)
    hint = " (run with --debug for the traceback)" if internal else ""
    prog = f"tn-keras {command}" if command else "tn-keras"
    kind = "paused" if exit_code(error) == EXIT_CODES["paused"] else "error"
    return f"{prog}: {kind}: {message}{hint}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    command = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help, --version, a bad flag (argparse printed the line)
            return e.code if isinstance(e.code, int) else EXIT_CODES["input"]
        command = args.command
        with quiet.quiet_unless(args.verbose):
            return args.run(args) or 0
    except (Exception, KeyboardInterrupt) as e:
        if debug:
            import traceback

            traceback.print_exc()
        print(error_line(command, e), file=sys.stderr)
        return exit_code(e)


if __name__ == "__main__":
    sys.exit(main())

"""A small detector of duplicated logic: runs of six or more statements found in two places.

The unit is the *logical line*, one statement as Python's tokenizer ends it (a call or a literal
spread over ten physical lines is one line). Each logical line is normalised before comparing:

* comments, blank lines, docstrings, ``import`` statements and the ``if __name__ ==
  "__main__":`` line of a script are dropped, whitespace ignored;
* every string literal becomes ``STR`` and every number ``NUM``;
* identifiers (names and attributes alike) are renamed ``$1, $2, ...`` in the order they first
  appear in the compared run, so a copy with other names is still a copy, while a different
  flow of values is not: ``a = f(a)`` matches ``b = g(b)`` but not ``b = g(c)``.

A run counts when at least ``min_lines`` consecutive normalised lines stand, in the same order,
in two places that do not overlap (in two files, or in two parts of one file).

Data tables are not logic. A table written as one literal (a dict of cases, a parametrize list)
is one logical line and cannot make a run by itself. A table written as statements -- a block
of declarations such as ``self.<w>_regularizer = regularizers.get(<w>_regularizer)`` for each
weight ``w``, the fields of a dataclass, one ``register(...)`` call per entry -- is a run in
which one line shape (each line renamed by itself) makes up two thirds or more of the lines, or
whose lines are all declarations (decorators, class headers, annotated fields, constants):
rows of one form, with perhaps an odd row (a default, a header). Such runs are left out
(``_is_table``); logic mixes shapes (a ``def``, a loop, an assignment, a ``return``).
"""
import collections
import io
import keyword
import os
import tokenize

MIN_LINES = 6

_SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                   tokenize.ENCODING, tokenize.ENDMARKER}
_STRING_TOKENS = {tokenize.STRING} | {getattr(tokenize, name) for name in (
    "FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, name)}


class Line(collections.namedtuple("Line", "tokens first last")):
    """One logical line: its normalised tokens and the physical lines it spans (1-based)."""


Place = collections.namedtuple("Place", "path first last")
Duplicate = collections.namedtuple("Duplicate", "lines a b")


def _normalise(token):
    """``(kind, text)``: kind "name" for identifiers (renamed later), else the text to compare."""
    if token.type == tokenize.NAME and not keyword.iskeyword(token.string):
        return ("name", token.string)
    if token.type in _STRING_TOKENS:
        return ("text", "STR")
    if token.type == tokenize.NUMBER:
        return ("text", "NUM")
    return ("text", token.string)


_MAIN_GUARD = (("text", "if"), ("name", "__name__"), ("text", "=="), ("text", "STR"),
               ("text", ":"))


def _is_ignored(tokens):
    """Imports, docstrings (a statement that is only a string) and a script's main guard carry
    no logic of their own."""
    if tokens[0] in (("text", "import"), ("text", "from")) or tuple(tokens) == _MAIN_GUARD:
        return True
    return all(token == ("text", "STR") for token in tokens)


def logical_lines(source):
    """The normalised logical lines of Python ``source`` text."""
    lines, tokens, first = [], [], None
    # Adjacent string tokens (implicit concatenation, the pieces of an f-string on Python >= 3.12)
    # are one STR: how a message is split over lines is not logic.
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in _SKIPPED_TOKENS:
            continue
        if token.type == tokenize.NEWLINE:
            if tokens and not _is_ignored(tokens):
                lines.append(Line(tuple(tokens), first, token.start[0]))
            tokens, first = [], None
            continue
        normalised = _normalise(token)
        if normalised == ("text", "STR") and tokens and tokens[-1] == normalised:
            continue
        if first is None:
            first = token.start[0]
        tokens.append(normalised)
    return lines


def _shape(lines):
    """The lines' tokens with identifiers renamed by first appearance across all of ``lines``."""
    names, parts = {}, []
    for line in lines:
        for kind, text in line.tokens:
            parts.append(names.setdefault(text, f"${len(names) + 1}") if kind == "name" else text)
        parts.append("\n")
    return " ".join(parts)


def _is_declaration(line):
    """A line that declares and computes nothing: a decorator, a class header, an annotated
    field (``name: type`` or ``name: type = literal``) or a constant (``NAME = literal``)."""
    tokens = line.tokens
    literal = ((("text", "STR"),), (("text", "NUM"),), (("text", "None"),),
               (("text", "True"),), (("text", "False"),), (("text", "("), ("text", ")")))
    if tokens[0] == ("text", "@") or tokens[0] == ("text", "class"):
        return True
    if len(tokens) >= 3 and tokens[0][0] == "name" and tokens[1] == ("text", ":"):
        value = tokens[tokens.index(("text", "=")) + 1:] if ("text", "=") in tokens else None
        return value is None or tuple(value) in literal
    return (len(tokens) == 3 and tokens[0][0] == "name" and tokens[1] == ("text", "=")
            and tuple(tokens[2:]) in literal)


def _is_table(lines):
    """True when one line shape makes up >= 2/3 of ``lines`` (table rows), or when every line
    is a declaration (two dataclasses with similar fields share no logic)."""
    if all(_is_declaration(line) for line in lines):
        return True
    counts = collections.Counter(_shape([line]) for line in lines)
    return 3 * max(counts.values()) >= 2 * len(lines)


def _windows(files, min_lines):
    """``{shape of min_lines consecutive lines: [(path, index of the first), ...]}``."""
    found = collections.defaultdict(list)
    for path, lines in files.items():
        for start in range(len(lines) - min_lines + 1):
            window = lines[start:start + min_lines]
            if not _is_table(window):
                found[_shape(window)].append((path, start))
    return found


def _pairs(found, min_lines):
    """Every pair of places that share a window, as ``(path_a, i, path_b, j)``, each once."""
    pairs = set()
    for places in found.values():
        for n, (path_a, i) in enumerate(places):
            for path_b, j in places[n + 1:]:
                if path_a == path_b and abs(i - j) < min_lines:
                    continue  # a run overlapping itself (a repeated line pattern), not a copy
                pairs.add((path_a, i, path_b, j))
    return pairs


def _runs(pairs, min_lines):
    """Merge pairs of windows that follow each other into maximal runs ``(pair, length)``."""
    runs = []
    for pair in sorted(pairs):
        path_a, i, path_b, j = pair
        if (path_a, i - 1, path_b, j - 1) in pairs:
            continue  # inside a run that starts earlier
        length = min_lines
        while (path_a, i + length - min_lines + 1, path_b, j + length - min_lines + 1) in pairs:
            length += 1
        runs.append((pair, length))
    return runs


def find_duplicates(files, min_lines=MIN_LINES):
    """Duplicated runs among ``files`` (``{path: source text}``), longest first."""
    lines = {path: logical_lines(source) for path, source in files.items()}
    duplicates = []
    for (path_a, i, path_b, j), length in _runs(_pairs(_windows(lines, min_lines), min_lines),
                                                min_lines):
        a, b = lines[path_a][i:i + length], lines[path_b][j:j + length]
        duplicates.append(Duplicate(length, Place(path_a, a[0].first, a[-1].last),
                                    Place(path_b, b[0].first, b[-1].last)))
    return sorted(duplicates, key=lambda d: (-d.lines, d.a, d.b))


def python_files(root, folders):
    """``{relative path: text}`` of the ``*.py`` files under ``folders`` (files or folders)."""
    files = {}
    for folder in folders:
        full = os.path.join(root, folder)
        paths = [full] if os.path.isfile(full) else [
            os.path.join(parent, name)
            for parent, dirs, names in os.walk(full)
            if "__pycache__" not in parent
            for name in names if name.endswith(".py")]
        for path in sorted(paths):
            with open(path, encoding="utf-8") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def describe(duplicate):
    a, b = duplicate.a, duplicate.b
    return (f"{duplicate.lines} statements: {a.path}:{a.first}-{a.last} ~ "
            f"{b.path}:{b.first}-{b.last}")

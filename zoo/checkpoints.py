"""Tagged checkpoints: where they live, which one a name means, and how they are verified.

A checkpoint is named ``ARCH.TAG`` (timm style); ``ARCH`` alone means the architecture's
default tag (`ModelSpec.default_tag`). Its folder holds ``ARCH.keras``, ``manifest.json``
(`tn_keras.artifacts`, kind ``checkpoint``), the training log and a generated ``README.md``:

    saved_models/ARCH/TAG/                    shipped with the package (tn_keras.saved_models)
    $TN_KERAS_HOME/models/ARCH/TAG/           trained by the user (default tag ``local``)

A shipped tag always wins over a local folder of the same tag, and `tn-keras train` refuses to
write a tag that ships, so a local retrain never silently replaces a shipped checkpoint. A
checkpoint is deserialised only after every file's sha256 matches its manifest, and always with
``safe_mode=True``.
"""
import dataclasses
import importlib.resources
import os
import re
import zipfile

from tn_keras import artifacts
from tn_keras.artifacts import ChecksumError  # noqa: F401  (re-exported as zoo.ChecksumError)

MANIFEST_NAME = artifacts.MANIFEST_NAME
LOCAL_TAG = "local"
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One tagged checkpoint: ``arch.tag``, its folder and its (checked) manifest."""

    arch: str
    tag: str
    folder: str
    manifest: artifacts.Manifest
    shipped: bool

    @property
    def full_name(self):
        return f"{self.arch}.{self.tag}"

    @property
    def path(self):
        return os.path.join(self.folder, self.manifest.file)

    def describe(self):
        """The line every CLI command prints about the checkpoint it used."""
        where = "shipped" if self.shipped else "local"
        return (f"checkpoint {self.full_name} ({where}): {self.path} "
                f"sha256 {self.manifest.sha256[:12]}")


def tn_keras_home():
    """``$TN_KERAS_HOME``, or ``~/.keras/tn_keras``."""
    return os.environ.get("TN_KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras", "tn_keras"
    )


def split_name(name):
    """``"arch.tag"`` -> ``("arch", "tag")``; ``"arch"`` -> ``("arch", None)``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"A model name must be a non-empty string; received {name!r}.")
    arch, dot, tag = name.partition(".")
    if dot:
        check_tag(tag)
    return arch, (tag if dot else None)


def check_tag(tag):
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValueError(f"Invalid tag {tag!r}: letters, digits, '_' and '-' only, starting "
                         "with a letter or digit.")
    return tag


def shipped_root(arch):
    return os.path.join(str(importlib.resources.files("tn_keras.saved_models")), arch)


def local_root(arch):
    return os.path.join(tn_keras_home(), "models", arch)


def cache_dir(arch, tag=LOCAL_TAG):
    """Where ``tn-keras train ARCH [--tag TAG]`` writes by default."""
    return os.path.join(local_root(arch), check_tag(tag))


def shipped_dir(arch, tag):
    return os.path.join(shipped_root(arch), tag)


def _tags_in(root):
    if not os.path.isdir(root):
        return []
    return sorted(t for t in os.listdir(root)
                  if _TAG.match(t) and os.path.isfile(os.path.join(root, t, MANIFEST_NAME)))


def shipped_tags(arch):
    return _tags_in(shipped_root(arch))


def local_tags(arch):
    """Tags trained by the user; a local folder named like a shipped tag is ignored."""
    shipped = set(shipped_tags(arch))
    return [t for t in _tags_in(local_root(arch)) if t not in shipped]


def known_tags(arch):
    return shipped_tags(arch) + local_tags(arch)


_REGISTERED = object()  # `resolve`: read the default tag from the registry


def resolve(name, default_tag=_REGISTERED):
    """The `Checkpoint` that ``name`` (``arch`` or ``arch.tag``) means; an unknown tag lists the
    known ones. Raises FileNotFoundError when ``arch`` has no checkpoint at all.

    ``default_tag``: the architecture's default tag when the caller knows it (the zoo's
    catalogue, without importing the registry); by default the registry's."""
    arch, tag = split_name(name)
    if default_tag is _REGISTERED:
        from tn_keras.zoo.registry import get_spec

        default_tag = get_spec(arch).default_tag
    if tag is None:
        tag = _default_tag(arch, default_tag)
    if tag in shipped_tags(arch):
        return read_checkpoint(shipped_dir(arch, tag), arch, tag, shipped=True)
    if tag in local_tags(arch):
        return read_checkpoint(cache_dir(arch, tag), arch, tag, shipped=False)
    known = ", ".join(f"{arch}.{t}" for t in known_tags(arch)) or "none"
    raise ValueError(f"Unknown tag {tag!r} for {arch!r}; known tags: {known}.")


def _default_tag(arch, default_tag):
    if default_tag is not None:
        return default_tag
    tags = local_tags(arch)
    if not tags:
        raise FileNotFoundError(
            f"No checkpoint for {arch!r}: none ships with tn_keras and none is in "
            f"{local_root(arch)}. Train one with `tn-keras train {arch}`.")
    if LOCAL_TAG in tags or len(tags) == 1:
        return LOCAL_TAG if LOCAL_TAG in tags else tags[0]
    raise ValueError(f"{arch!r} has no default tag and several local ones; name one: "
                     f"{', '.join(f'{arch}.{t}' for t in tags)}.")


def read_checkpoint(folder, arch=None, tag=None, shipped=False):
    """The `Checkpoint` in ``folder`` (its manifest read and checked, files not yet hashed)."""
    path = os.path.join(folder, MANIFEST_NAME)
    manifest = artifacts.read(path, kind="checkpoint")
    if arch is not None and manifest.name != arch:
        raise ValueError(f"The checkpoint in {folder} is for {manifest.name!r}, not {arch!r}.")
    return Checkpoint(arch=manifest.name, tag=tag or manifest.get("tag") or LOCAL_TAG,
                      folder=folder, manifest=manifest, shipped=shipped)


def load_verified(checkpoint, compile=True):
    """Verify every file's sha256, then deserialise with ``safe_mode=True``."""
    import keras

    import tn_keras.layers  # noqa: F401  (registers the custom layers for deserialisation)

    artifacts.verify(os.path.join(checkpoint.folder, MANIFEST_NAME), checkpoint.manifest)
    return keras.saving.load_model(checkpoint.path, compile=compile, safe_mode=True)


# The date Keras stamps into a .keras file (metadata.json) and the zip entries' times are pinned,
# so saving the same weights twice gives the same bytes and the same sha256.
PINNED_DATE = "1980-01-01@00:00:00"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def save_reproducible(model, path):
    """``model.save(path)`` with the save date and zip timestamps pinned (same weights, same
    bytes).

    Built in memory and written once with plain file writes (`tn_keras.utils.memory_saves`):
    a full disk is then an ``OSError`` naming ``path``, not HDF5 failing inside its C library,
    and no second temporary file is left beside ``path`` when it fails.
    """
    import io
    import json

    from tn_keras.utils import memory_saves

    saved = memory_saves.keras_file_bytes(model, path)
    pinned = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved)) as src, \
            zipfile.ZipFile(pinned, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata["date_saved"] = PINNED_DATE
                data = json.dumps(metadata).encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, data)
    memory_saves.write_file(path, pinned.getvalue())


# --- the 0.1 API, kept so that callers written against it keep working ----------------------

def find_checkpoint(name):
    """``(folder, manifest)`` of the checkpoint ``name`` (``arch`` or ``arch.tag``) means, or
    ``(None, None)`` when it has none. Prefer `resolve`."""
    try:
        checkpoint = resolve(name)
    except FileNotFoundError:
        return None, None
    return checkpoint.folder, checkpoint.manifest


def read_manifest(folder):
    """The checked checkpoint `artifacts.Manifest` of ``folder``, or None when it has none."""
    if not os.path.isfile(os.path.join(folder, MANIFEST_NAME)):
        return None
    return artifacts.read(os.path.join(folder, MANIFEST_NAME), kind="checkpoint")

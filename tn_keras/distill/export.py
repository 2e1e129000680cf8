"""Deprecated alias: `tn_keras.distill.level_files` (writing) and
`tn_keras.datasets.distilled_levels` (reading).

This module held both until its name was found to collide with the package `tn_keras.export`.
It re-exports what it held, so code that imports it keeps working, and warns once on import.
Import `tn_keras.distill.load_level` / `verify_level` (public API) or the two modules instead.
"""
import warnings

from tn_keras.datasets.distilled_levels import LEVEL_FILE
from tn_keras.datasets.distilled_levels import MANIFEST
from tn_keras.datasets.distilled_levels import as_tf_dataset
from tn_keras.datasets.distilled_levels import check_pixels
from tn_keras.datasets.distilled_levels import level_dir
from tn_keras.datasets.distilled_levels import level_formation
from tn_keras.datasets.distilled_levels import load_level
from tn_keras.datasets.distilled_levels import read_images
from tn_keras.datasets.distilled_levels import read_manifest
from tn_keras.datasets.distilled_levels import read_training_images
from tn_keras.datasets.distilled_levels import verify_level
from tn_keras.distill.level_files import EXPORT_ENTRY
from tn_keras.distill.level_files import MAX_SHEET_IMAGES
from tn_keras.distill.level_files import PREPROCESSING
from tn_keras.distill.level_files import contact_sheet
from tn_keras.distill.level_files import prepare_export_dir
from tn_keras.distill.level_files import reusable_level
from tn_keras.distill.level_files import write_images
from tn_keras.distill.level_files import write_level
from tn_keras.distill.level_files import write_manifest
from tn_keras.distill.level_files import write_summary

__all__ = [
    "EXPORT_ENTRY", "LEVEL_FILE", "MANIFEST", "MAX_SHEET_IMAGES", "PREPROCESSING",
    "as_tf_dataset", "check_pixels", "contact_sheet", "level_dir", "level_formation",
    "load_level", "prepare_export_dir", "read_images", "read_manifest", "read_training_images",
    "reusable_level", "verify_level", "write_images", "write_level", "write_manifest",
    "write_summary",
]

warnings.warn("tn_keras.distill.export is deprecated: import tn_keras.distill.level_files "
              "(writing levels) or tn_keras.datasets.distilled_levels (reading them).",
              DeprecationWarning, stacklevel=2)

"""Shipped distilled datasets: one folder per distillation cascade with its levels,
``manifest.json`` and ``DATACARD.md`` (see tn_keras.distill.catalogue)."""

"""Small utilities shared across tn_keras (files, hashing, versions)."""

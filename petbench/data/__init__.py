"""Data model, protocol splits, normalisation and slicing."""

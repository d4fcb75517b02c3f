"""Studies: one-off measurements behind figures of the docs, kept apart from the product.

One folder per study, holding its library code and its script (`run.py`, run from the repository root:
`python studies/<study>/run.py --help`). A study imports the product's public modules (`legan_tf`, never a
name that starts with an underscore) and nothing of `scripts/`, `serving/`, `tools/` or another study;
nothing of the product imports a study (tests/test_import_layers.py checks both). The wheel does not carry
this folder (setup.py packages `legan_tf` only).
"""

"""Sanity figures of the FID network on real faces: the floor (two halves of one set of faces) and FID and KID
rising with blur and JPEG damage (docs/evaluation.md, "Sanity figures"). `run.py` is the whole study."""

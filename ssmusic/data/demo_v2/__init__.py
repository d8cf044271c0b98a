"""Demo data v2: composed ensembles (see build.py)."""

"""moa's performance harness: one command, real processes on 127.0.0.1, saved results.

``python -m bench`` (or ``python bench/run.py``) runs every scenario and writes
``bench/results/latest.json`` plus PNG plots; see ``bench/README.md``.
"""

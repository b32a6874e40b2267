"""Benchmarks for qa_app: `.venv/bin/python -m bench` (see docs/performance.md)."""

"""Fixtures for the run tests: the shared ones live in tests/run/run_fixtures.py."""

from __future__ import annotations

from run_fixtures import firmware, sandbox, stock_riscv

__all__ = ["firmware", "sandbox", "stock_riscv"]

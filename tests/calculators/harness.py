"""The calculator test harness now lives in `graphs.testing` (users test their calculators with it)."""

from graphs.testing import run_calculator

__all__ = ["run_calculator"]

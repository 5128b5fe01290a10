"""Grids of runs (the paper's tables in one command), their executors, and the paper-form tables and
figures read back from the run records.

- :mod:`.spec`: what a grid is (cells = methods × datasets × DRFs × seeds), the built-in ``table1`` and
  ``table2``, TOML grid files with ``method[key=v1,v2]`` option grids.
- :mod:`.run_grid`: plan, skip finished cells, resume interrupted ones, record failures, status.
- :mod:`.executors`: here (sequential or one worker per GPU) or SLURM through submitit.
- :mod:`.tables`: Tables I and II in the paper's form (order, seed spread, Holm-corrected Wilcoxon tests,
  check marks), as table models.
- :mod:`.figures`: Figures 3 and 4 (outputs, zoomed insets, error maps) and metric-vs-DRF plots.
- :mod:`.efficiency`: metrics against a protocol axis with CI bands (``figure efficiency``, ``compare --by``).
- :mod:`.rank_figures`: the critical-difference diagram and the bootstrap rank distribution.
"""
from .spec import GridSpec, Variant, resolve_grid

__all__ = ["GridSpec", "Variant", "resolve_grid"]

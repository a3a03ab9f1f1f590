"""Model reports: matplotlib figures and a self-contained HTML page.

Needs matplotlib (``pip install 'factorkit[plot]'``); importing this package does not
import it, building a figure or a report does.

- :func:`write_report`: ``index.html`` with every figure that applies, plus tables.
- ``plot_*``: one function per figure, each returning a ``matplotlib.figure.Figure``.
- :func:`activity_errors`, :func:`recommendation_popularity`: the tables behind two of
  the figures.
"""

from factorkit.report.figures import (
    activity_errors,
    plot_error_by_activity,
    plot_factors_curve,
    plot_item_map,
    plot_learning_curves,
    plot_recommendation_popularity,
    plot_search_results,
    plot_spectrum,
    recommendation_popularity,
)
from factorkit.report.html import write_report

__all__ = [
    "activity_errors",
    "plot_error_by_activity",
    "plot_factors_curve",
    "plot_item_map",
    "plot_learning_curves",
    "plot_recommendation_popularity",
    "plot_search_results",
    "plot_spectrum",
    "recommendation_popularity",
    "write_report",
]

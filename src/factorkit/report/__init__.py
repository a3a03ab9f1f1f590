"""Model reports: matplotlib figures and a self-contained HTML page.

Needs matplotlib (``pip install 'factorkit[plot]'``); importing this package does not
import it, building a figure or a report does.

- :func:`write_report`: ``index.html`` with every figure that applies, plus tables; it
  runs :func:`compute_report` (every table, as a :class:`ReportData`, no matplotlib) and
  :func:`render_html` (figures and the page).
- ``plot_*``: one function per figure, each returning a ``matplotlib.figure.Figure``.
- :func:`activity_errors`, :func:`recommendation_popularity`: the tables behind two of
  the figures.
"""

from factorkit.report.compute import ReportData, SearchResults, compute_report
from factorkit.report.figures import (
    activity_errors,
    item_map_table,
    plot_error_by_activity,
    plot_factors_curve,
    plot_item_map,
    plot_learning_curves,
    plot_recommendation_popularity,
    plot_search_results,
    plot_spectrum,
    recommendation_popularity,
)
from factorkit.report.html import render_html, write_report

__all__ = [
    "ReportData",
    "SearchResults",
    "activity_errors",
    "compute_report",
    "item_map_table",
    "plot_error_by_activity",
    "plot_factors_curve",
    "plot_item_map",
    "plot_learning_curves",
    "plot_recommendation_popularity",
    "plot_search_results",
    "plot_spectrum",
    "recommendation_popularity",
    "render_html",
    "write_report",
]

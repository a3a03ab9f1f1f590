"""Request counts and latency histograms, rendered in the Prometheus text format.

A dependency-free registry: one counter per (endpoint, method, status) and one histogram
per endpoint. Endpoints are route templates (``/items/{item}/similar``), never raw paths,
so the number of series stays bounded whatever clients send. Counts are per process:
with ``--workers N`` each worker reports its own (scrape each, or sum).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

__all__ = ["BUCKETS", "Metrics"]

#: latency histogram bucket upper bounds, in seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Thread-safe counters and histograms of served requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self.reloads = {"ok": 0, "refused": 0}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._counts[(endpoint, method, status)] += 1
            buckets = self._hist.setdefault(endpoint, [0] * (len(BUCKETS) + 1))
            buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sum[endpoint] += seconds

    def count(self, endpoint: str, status: int | None = None) -> int:
        """Requests seen for ``endpoint`` (all methods; one status or all)."""
        with self._lock:
            return sum(
                n for (e, _, s), n in self._counts.items() if e == endpoint and status in (None, s)
            )

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines = [
            "# HELP factorkit_requests_total HTTP requests served, by endpoint and status.",
            "# TYPE factorkit_requests_total counter",
        ]
        with self._lock:
            for (endpoint, method, status), n in sorted(self._counts.items()):
                lines.append(
                    f'factorkit_requests_total{{endpoint="{_esc(endpoint)}",method="{method}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP factorkit_request_duration_seconds Time to answer a request.",
                "# TYPE factorkit_request_duration_seconds histogram",
            ]
            for endpoint, buckets in sorted(self._hist.items()):
                label = f'endpoint="{_esc(endpoint)}"'
                running = 0
                for bound, n in zip(BUCKETS, buckets, strict=False):
                    running += n
                    lines.append(
                        f'factorkit_request_duration_seconds_bucket{{{label},le="{bound:g}"}} '
                        f"{running}"
                    )
                running += buckets[-1]
                lines.append(
                    f'factorkit_request_duration_seconds_bucket{{{label},le="+Inf"}} {running}'
                )
                lines.append(
                    f"factorkit_request_duration_seconds_sum{{{label}}} {self._sum[endpoint]:.6f}"
                )
                lines.append(f"factorkit_request_duration_seconds_count{{{label}}} {running}")
            lines += [
                "# HELP factorkit_model_reloads_total Model reloads, by outcome.",
                "# TYPE factorkit_model_reloads_total counter",
            ]
            for outcome, n in self.reloads.items():
                lines.append(f'factorkit_model_reloads_total{{outcome="{outcome}"}} {n}')
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

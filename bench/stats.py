"""Percentiles for the benchmarks' JSON figures (the benches run as scripts from bench/)."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The value at fraction q (0..1) of the sorted values; NaN for none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    """p50, p95 and max rounded to 0.1, and the count."""
    return {"p50": round(percentile(values, 0.50), 1), "p95": round(percentile(values, 0.95), 1),
            "max": round(max(values), 1) if values else float("nan"), "n": len(values)}

"""Latency histograms that merge exactly across processes (``scripts/bench_room.py``).

500 receivers x 300 messages is 150 000 delivery latencies; each worker keeps
counts in 0.1 ms buckets instead of the samples, sends the sparse histogram to
the coordinator, and the merged histogram gives the same percentiles (to
0.1 ms) as the pooled samples would.
"""

from __future__ import annotations

from collections import Counter

BUCKET_MS = 0.1


class Histogram:
    """Counts of millisecond values in ``BUCKET_MS`` buckets, plus the exact min and max."""

    __slots__ = ("counts", "n", "min", "max", "negative")

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.n = 0
        self.min: float | None = None
        self.max: float | None = None
        self.negative = 0  # below zero: clocks disagree (should never happen on one machine)

    def add(self, ms: float) -> None:
        if ms < 0:
            self.negative += 1
        self.counts[int(ms / BUCKET_MS + 0.5) if ms > 0 else 0] += 1
        self.n += 1
        if self.min is None or ms < self.min:
            self.min = ms
        if self.max is None or ms > self.max:
            self.max = ms

    def as_json(self) -> dict:
        return {
            "counts": {str(k): v for k, v in self.counts.items()},
            "n": self.n,
            "min": self.min,
            "max": self.max,
            "negative": self.negative,
        }

    @classmethod
    def merged(cls, parts: list[dict]) -> Histogram:
        total = cls()
        for part in parts:
            for key, count in part["counts"].items():
                total.counts[int(key)] += count
            total.n += part["n"]
            total.negative += part.get("negative", 0)
            for name, pick in (("min", min), ("max", max)):
                value = part.get(name)
                if value is not None:
                    mine = getattr(total, name)
                    setattr(total, name, value if mine is None else pick(mine, value))
        return total

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (the smallest value with at least q % at or below it)."""
        if not self.n:
            return None
        rank = max(1, -(-self.n * q // 100))  # ceil(n * q / 100)
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return round(key * BUCKET_MS, 1)
        return self.max

    def summary(self, qs: tuple[int, ...] = (50, 95, 99)) -> dict:
        out: dict = {f"p{q}": self.percentile(q) for q in qs}
        out["max"] = None if self.max is None else round(self.max, 1)
        out["n"] = self.n
        return out


def percentiles(values: list[float], qs: tuple[int, ...] = (50, 95)) -> dict:
    """Nearest-rank percentiles and max of a list of milliseconds (rounded to 0.1 ms)."""
    hist = Histogram()
    for value in values:
        hist.add(value)
    return hist.summary(qs)

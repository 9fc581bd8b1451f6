"""Log-scale latency buckets: four per doubling, so percentiles are within about 9%."""

from __future__ import annotations

import math
from collections.abc import Mapping

_PER_DOUBLING = 4


def bucket_of(ns: int) -> int:
    """Return the latency bucket of a duration in nanoseconds."""
    if ns <= 1:
        return 0
    return int(math.log2(ns) * _PER_DOUBLING)


def bucket_bounds(bucket: int) -> tuple[int, int]:
    """Return the (low, high) nanoseconds a bucket covers."""
    return (int(2 ** (bucket / _PER_DOUBLING)), int(2 ** ((bucket + 1) / _PER_DOUBLING)))


def percentile(bucket_counts: Mapping[int, int], q: float) -> int | None:
    """Return the q-th percentile (0-100) in ns from bucket counts, or None if there are none."""
    total = sum(bucket_counts.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(total * q / 100))
    seen = 0
    for bucket in sorted(bucket_counts):
        seen += bucket_counts[bucket]
        if seen >= rank:
            low, high = bucket_bounds(bucket)
            return int(math.sqrt(max(low, 1) * high))
    low, high = bucket_bounds(max(bucket_counts))
    return high

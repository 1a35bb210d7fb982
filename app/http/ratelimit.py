"""Token buckets, per process: ``rate_limit_per_minute`` requests per key (or, for failed
authentications, per client address), refilled continuously."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> int:
        """Take a token; return 0 when allowed, else the seconds to wait before retrying."""
        return self._take(key, 1.0)

    def waiting(self, key: str) -> int:
        """The seconds until ``key`` has a token again (0: it has one now), taking none."""
        return self._take(key, 0.0)

    def _take(self, key: str, cost: float) -> int:
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.refill_per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - cost, now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.refill_per_second))

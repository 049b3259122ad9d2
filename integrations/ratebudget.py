"""A rate budget shared by every worker process: a token bucket per connection in Redis.

In-process buckets (connectors.http.InMemoryTokenBucket) cannot stop two workers from each
spending a connection's whole budget; with Redis as the broker, this one can.
"""

from __future__ import annotations

import time

import redis

# KEYS[1] bucket; ARGV: rate, burst, now, cost. Returns seconds to wait before the call may go.
RESERVE = """
local rate = tonumber(ARGV[1]); local burst = tonumber(ARGV[2]); local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'hold')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
local hold = tonumber(state[3]) or 0
tokens = math.min(burst, tokens + (now - at) * rate) - 1
local wait = 0
if tokens < 0 then wait = -tokens / rate end
if hold > now + wait then wait = hold - now end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


class RedisTokenBucket:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(RESERVE)

    def reserve(self, key: str, *, rate_per_second: float | None, burst: int) -> float:
        if not rate_per_second:
            hold = self.client.hget(f"sgp:budget:{key}", "hold")
            return max(0.0, float(hold) - time.time()) if hold else 0.0
        return float(self.script(keys=[f"sgp:budget:{key}"], args=[rate_per_second, burst, time.time(), 1]))

    def hold(self, key: str, seconds: float) -> None:
        """The vendor said wait (Retry-After): every process waits for this connection."""
        self.client.hset(f"sgp:budget:{key}", "hold", time.time() + seconds)

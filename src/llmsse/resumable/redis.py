"""A :class:`~llmsse.resumable.Store` on Redis Streams, shared by every process that uses it.

Install with ``pip install 'llmsse[redis]'`` (redis-py 5.0.1 or later, Redis server 5.0 or
later). Each resumable stream is two keys that share a hash tag, so they live in one slot:

``<prefix>:{<stream id>}:meta``
    a hash: ``state`` (``live`` / ``finished``), ``last`` (the highest event id appended),
    ``ttl`` (ms), ``cancel`` (``1`` once cancelled) and ``owner`` (the token of the ``create``
    call). A stream whose meta key does not exist is *missing*. Both keys expire ``ttl``
    after the last append while live, ``expire`` after ``finish``.
``<prefix>:{<stream id>}:events``
    a Redis Stream; event ``n`` is the entry with the explicit id ``0-n`` (field ``d``: the
    encoded bytes), so "events after ``n``" is ``XREAD ... STREAMS key 0-n``. ``finish`` adds
    one more entry, ``1-0`` (field ``end``), greater than every event id: it wakes readers
    blocked in ``XREAD BLOCK`` and is never returned as an event.

Cancelling publishes the stream id on one channel per store (``<prefix>:cancel``); each event
loop that has a producer waiting in :meth:`RedisStore.wait_cancelled` holds one pub/sub
connection and fans the message out locally. The ``cancel`` flag in the meta hash is checked
after every (re)subscription and every few seconds, so a cancel published while nobody
listened is not lost, and a producer whose stream expired is released too.

Every write is a Lua script that can be retried safely after a lost reply (``create`` is
idempotent for its own token, ``append`` skips ids already stored, ``finish`` only marks a
live stream), so the client's retry policy can ride out a Redis restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

try:
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "llmsse.resumable.redis needs redis-py: pip install 'llmsse[redis]'"
    ) from None

from ._store import Batch, Store, StreamState

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisStore"]

_T = TypeVar("_T")

#: Entries fetched per read; a reader far behind gets the rest on its next read.
_COUNT = 1000
#: A stream seen live this recently is read with XREAD BLOCK straight away.
_LIVE_HINT = 30.0
#: Seconds between two reads of the cancel flags of the streams a loop's producers wait
#: on, besides the pub/sub messages (a fallback, and how an expired stream is noticed).
_RECHECK = 5.0

# ARGV: ttl (ms), owner token.
_CREATE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then
  if owner == ARGV[2] then return 1 end
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'state', 'live', 'last', '0', 'ttl', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# ARGV: maxlen (0: no cap), approximate (1/0), then id, data, id, data, ...
# Returns the stream's last id, -1 when it is not live, or an error for an id out of sequence.
_APPEND = """
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return -1 end
local last = tonumber(redis.call('HGET', KEYS[1], 'last'))
local maxlen = tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  local id = tonumber(ARGV[i])
  if id > last then
    if id ~= last + 1 then
      return redis.error_reply('llmsse: event id ' .. ARGV[i] .. ' after ' .. last)
    end
    if maxlen > 0 and ARGV[2] == '1' then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '0-' .. ARGV[i], 'd', ARGV[i + 1])
    elseif maxlen > 0 then
      -- No "=": Redis before 6.2 knows only "MAXLEN [~] n".
      redis.call('XADD', KEYS[2], 'MAXLEN', maxlen, '0-' .. ARGV[i], 'd', ARGV[i + 1])
    else
      redis.call('XADD', KEYS[2], '0-' .. ARGV[i], 'd', ARGV[i + 1])
    end
    last = id
  end
end
redis.call('HSET', KEYS[1], 'last', last)
local ttl = redis.call('HGET', KEYS[1], 'ttl')
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return last
"""

# ARGV: expire (ms, 0: now).
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
if state == 'live' then
  redis.call('HSET', KEYS[1], 'state', 'finished')
  redis.call('XADD', KEYS[2], '1-0', 'end', '1')
end
if ARGV[1] == '0' then
  -- Gone at once for new calls; the events key lives 1 ms more so that readers blocked
  -- on it are still served the end marker (Redis serves them after this script).
  redis.call('DEL', KEYS[1])
  redis.call('PEXPIRE', KEYS[2], 1)
else
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
"""

_CANCEL = """
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1')
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"""

# ARGV: the first event id wanted, count. Returns {state or '', last, entries}.
_READ = """
local meta = redis.call('HMGET', KEYS[1], 'state', 'last')
if not meta[1] then return {'', 0, {}} end
local entries = redis.call('XRANGE', KEYS[2], '0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
return {meta[1], tonumber(meta[2]), entries}
"""


@dataclass(eq=False)
class _LoopState:
    """What the store holds for one running event loop."""

    client: Redis
    owned: bool
    create: AsyncScript
    append: AsyncScript
    finish: AsyncScript
    cancel: AsyncScript
    read: AsyncScript
    #: Producers waiting in ``wait_cancelled``, by stream id.
    waiters: dict[str, set[asyncio.Future[None]]] = field(default_factory=dict)
    listener: asyncio.Task[None] | None = None
    #: When each stream was last seen live by a read on this loop.
    live: dict[str, float] = field(default_factory=dict)
    #: Flag checks started by the listener (referenced so they are not collected).
    checks: set[asyncio.Task[None]] = field(default_factory=set)
    #: Set while the pub/sub connection is subscribed to the cancel channel.
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _raw_entries(entries: Any) -> list[tuple[str, bytes | None]]:
    """``(entry id, data, or None for the end marker)`` from stream entries: each one
    ``(id, fields)``, the fields a flat list (raw, from Lua) or a dict (parsed by redis-py)."""
    out: list[tuple[str, bytes | None]] = []
    for entry_id, fields in entries or ():
        if fields is None:
            continue
        if isinstance(fields, dict):
            pairs = {_text(k): v for k, v in fields.items()}
        else:
            pairs = {_text(fields[i]): fields[i + 1] for i in range(0, len(fields), 2)}
        data = pairs.get("d")
        out.append((_text(entry_id), None if data is None else _bytes(data)))
    return out


def _xread_entries(reply: Any) -> list[tuple[str, bytes | None]]:
    """The entries of the one stream in an XREAD reply, as redis-py parses it:
    ``[[key, entries]]`` (RESP2), ``{key: [entries]}`` or ``{key: entries}`` (RESP3)."""
    if not reply:
        return []
    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    if entries and isinstance(entries[0], list) and isinstance(entries[0][0], (list, tuple)):
        entries = entries[0]
    return _raw_entries(entries)


def _batch(entries: list[tuple[str, bytes | None]], after: int, state: StreamState) -> Batch:
    events: list[tuple[int, bytes]] = []
    for entry_id, data in entries:
        if data is None:
            state = "finished"
        else:
            events.append((int(entry_id.partition("-")[2]), data))
    # Ids are contiguous, so a first id past after + 1 means the ones between were trimmed.
    gap = bool(events) and events[0][0] != after + 1
    return Batch(events=tuple(events), state=state, gap=gap)


class RedisStore(Store):
    """A resumable-stream store on Redis Streams, shared by every process that reaches the
    same Redis: a stream started in one worker can be resumed and cancelled from another.

    Args:
        client: a ``redis.asyncio.Redis`` to use as it is (the caller closes it). A redis-py
            asyncio connection belongs to the event loop that opened it: use the store on
            that client's loop only.
        url: a Redis URL (``redis://127.0.0.1:6379/0``) instead of a client. The store then
            opens one client per running event loop (an ASGI app's loop, the background loop
            that serves WSGI apps, a test's loop) and closes them in :meth:`aclose`.
        prefix: the first part of every key and of the cancel channel.
        maxlen: keep at most about this many events per stream (``None``: all of them). A
            reader that resumes before the oldest kept event gets a :class:`Batch` with
            ``gap`` set; the check is exact even with ``approximate`` trimming.
        approximate: trim with ``MAXLEN ~`` (whole radix-tree nodes, cheaper; Redis may keep
            somewhat more than ``maxlen``) rather than exactly.
        retry_for: about how long (seconds) a call keeps retrying while Redis cannot be
            reached, before ``redis.exceptions.ConnectionError`` is raised.
        client_options: with ``url``: more keyword arguments for ``Redis.from_url``. Each
            reader waiting for events holds a connection of the pool: the store raises its
            ``max_connections`` to 10,000 (recent redis-py releases default to 100).
    """

    def __init__(
        self,
        client: Redis | None = None,
        *,
        url: str | None = None,
        prefix: str = "llmsse",
        maxlen: int | None = None,
        approximate: bool = True,
        retry_for: float = 10.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if (client is None) == (url is None):
            raise TypeError("RedisStore takes either a redis.asyncio.Redis client or url=...")
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be 1 or more (or None), not {maxlen!r}")
        self._client = client
        self._url = url
        self._prefix = prefix
        self._maxlen = maxlen or 0
        self._approximate = approximate
        self._retry_for = retry_for
        self._client_options = dict(client_options or {})
        self._channel = f"{prefix}:cancel"
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """``RedisStore(url=url, **kwargs)``."""
        return cls(url=url, **kwargs)

    def __repr__(self) -> str:
        where = self._url if self._url is not None else repr(self._client)
        return f"RedisStore({where!s}, prefix={self._prefix!r})"

    # -- keys and per-loop clients ---------------------------------------------------------

    def _keys(self, stream_id: str) -> list[str]:
        base = f"{self._prefix}:{{{stream_id}}}"
        return [f"{base}:meta", f"{base}:events"]

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is not None:
            return state
        with self._lock:
            for other in [other for other in self._states if other.is_closed()]:
                del self._states[other]
            state = self._states.get(loop)
            if state is None:
                state = self._new_state()
                self._states[loop] = state
        return state

    def _new_state(self) -> _LoopState:
        if self._client is not None:
            if self._states:
                raise RuntimeError(
                    "this RedisStore was given a client, which is bound to the event loop "
                    "that first used it; build it with url=... to use it from several loops"
                )
            client, owned = self._client, False
        else:
            # A few quick retries in redis-py (50, 100, 200 ms); the store's own loop
            # (_call) goes on for retry_for.
            options: dict[str, Any] = {
                "retry": Retry(ExponentialBackoff(cap=0.2, base=0.025), 3),
                # redis-py 5 retries only the errors listed here, whatever ``retry`` says.
                "retry_on_error": [RedisConnectionError, RedisTimeoutError],
                "socket_connect_timeout": 2.0,
                "socket_timeout": 30.0,
                "socket_keepalive": True,
                # Each reader waiting in XREAD BLOCK holds a connection; recent redis-py
                # releases cap a pool at 100 by default, and then fail instead of waiting.
                "max_connections": 10_000,
                **self._client_options,
            }
            assert self._url is not None
            client, owned = redis.asyncio.Redis.from_url(self._url, **options), True
        return _LoopState(
            client=client,
            owned=owned,
            create=client.register_script(_CREATE),
            append=client.register_script(_APPEND),
            finish=client.register_script(_FINISH),
            cancel=client.register_script(_CANCEL),
            read=client.register_script(_READ),
        )

    def _block_slice(self, client: Redis) -> float:
        """The longest ``XREAD BLOCK`` that stays inside the client's socket timeout."""
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        if not timeout:
            return 60.0
        return max(0.05, float(timeout) / 2)

    async def _call(self, command: Callable[[], Awaitable[_T]]) -> _T:
        """``await command()``, again after a connection error until ``retry_for`` seconds
        have passed since the first one (every command of the store is safe to repeat).

        redis-py retries inside a command too, but not everywhere: 5.0.x opens a pooled
        connection outside its retry, so a command sent while Redis is down fails at once.
        """
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        pause = 0.05
        while True:
            try:
                return await command()
            except (RedisConnectionError, RedisTimeoutError):
                now = loop.time()
                if deadline is None:
                    deadline = now + self._retry_for
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.5)

    # -- the Store interface -------------------------------------------------------------

    async def create(self, stream_id: str, *, ttl: float) -> bool:
        """Register a new live stream (atomic: of two racing creators, one wins)."""
        _check_id(stream_id)
        ttl_ms = _ms(_check_seconds("ttl", ttl, zero=False))
        state = self._state()
        # The token makes a retry after a lost reply find its own stream, not a taken id.
        token = secrets.token_hex(8)
        keys = self._keys(stream_id)
        created = await self._call(lambda: state.create(keys=keys, args=[ttl_ms, token]))
        return bool(int(created))

    async def append(self, stream_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        """Add events under ``0-<id>`` and push the stream's ``ttl`` back. They must continue
        the stream's ids (``ValueError`` otherwise); ids already stored are skipped, so a
        retried call is harmless. With no events it only pushes the ``ttl`` back
        (:meth:`touch`). Appending to a finished or missing stream does nothing."""
        state = self._state()
        args: list[bytes | str | int] = [self._maxlen, "1" if self._approximate else "0"]
        for event_id, data in events:
            args.append(int(event_id))
            args.append(data)
        try:
            keys = self._keys(stream_id)
            await self._call(lambda: state.append(keys=keys, args=args))
        except ResponseError as error:
            if "llmsse: event id" in str(error):
                raise ValueError(f"stream {stream_id!r}: {error}") from None
            raise

    async def finish(self, stream_id: str, *, expire: float) -> None:
        """Mark the stream finished, wake its readers, and drop all its keys ``expire``
        seconds from now."""
        expire_ms = _ms(_check_seconds("expire", expire, zero=True))
        state = self._state()
        keys = self._keys(stream_id)
        await self._call(lambda: state.finish(keys=keys, args=[expire_ms]))

    async def read(self, stream_id: str, after: int, *, block: float) -> Batch:
        """Events after ``after``: one ``XRANGE`` with the stream's state, then, when there
        are none yet and the stream is live, ``XREAD BLOCK`` for up to ``block`` seconds.

        At most ``_COUNT`` (1,000) events come back at once; a batch says ``"finished"`` only
        when it holds the stream's last event (or nothing is left).

        A stream this loop saw live in the last ``_LIVE_HINT`` seconds (a reader following
        it) goes straight to ``XREAD BLOCK``: one round trip per wake-up instead of two. The
        end marker tells it finished; a stream that expired meanwhile is noticed when the
        block times out.
        """
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError(f"after must be an int >= 0, got {after!r}")
        state = self._state()
        keys = self._keys(stream_id)
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + max(0.0, block)
        seen = state.live.get(stream_id)
        check = block <= 0 or seen is None or now - seen > _LIVE_HINT
        while True:
            if check:
                batch = await self._read_now(state, keys, after)
                self._hint(state, stream_id, batch.state)
                if batch.events or batch.state != "live" or batch.gap:
                    return batch
            check = True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return Batch(events=(), state="live")
            # From an explicit id (not "$"): whatever was added since the XRANGE comes back
            # at once, so nothing slips in between the two commands.
            wait = min(remaining, self._block_slice(state.client))
            xread = functools.partial(
                state.client.xread, {keys[1]: f"0-{after}"}, count=_COUNT, block=max(1, _ms(wait))
            )
            reply = await self._call(xread)
            entries = _xread_entries(reply)
            if entries:
                batch = _batch(entries, after, "live")
                self._hint(state, stream_id, batch.state)
                return batch
            # Timed out: round again for the state (finished or expired meanwhile).

    @staticmethod
    def _hint(state: _LoopState, stream_id: str, stream_state: StreamState) -> None:
        if stream_state == "live":
            if len(state.live) >= 10_000 and stream_id not in state.live:
                state.live.clear()
            state.live[stream_id] = asyncio.get_running_loop().time()
        else:
            state.live.pop(stream_id, None)

    async def _read_now(self, state: _LoopState, keys: list[str], after: int) -> Batch:
        stream_state, last, raw = await self._call(
            lambda: state.read(keys=keys, args=[after + 1, _COUNT])
        )
        name = _text(stream_state)
        if not name:
            return Batch(events=(), state="missing")
        checked: StreamState = "finished" if name == "finished" else "live"
        batch = _batch(_raw_entries(raw), after, checked)
        if not batch.events and int(last) > after:
            # Events after ``after`` were appended but none is kept: all trimmed.
            return Batch(events=(), state=checked, gap=True)
        if checked == "finished" and batch.events and batch.events[-1][0] < int(last):
            # Cut by COUNT: "finished" only on the batch that reaches the end, so that a
            # reader may stop on it.
            return Batch(events=batch.events, state="live", gap=batch.gap)
        return batch

    async def cancel(self, stream_id: str) -> bool:
        """Set the stream's cancel flag and publish its id on the store's channel;
        ``False`` when the stream is missing or finished."""
        state = self._state()
        keys = self._keys(stream_id)[:1]
        done = await self._call(lambda: state.cancel(keys=keys, args=[self._channel, stream_id]))
        return bool(int(done))

    async def wait_cancelled(self, stream_id: str) -> None:
        """Return once the stream is cancelled (from this process or another one), or
        missing (expired: nothing left to produce for)."""
        state = self._state()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.waiters.setdefault(stream_id, set()).add(future)
        try:
            if state.listener is None or state.listener.done():
                state.listener = asyncio.create_task(
                    self._listen(state), name=f"llmsse RedisStore {self._channel}"
                )
            # The flag is read once the subscription is in place: a cancel published
            # before is seen here, a later one arrives as a message.
            await self._check_flags(state, [stream_id])
            await future
        finally:
            waiting = state.waiters.get(stream_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del state.waiters[stream_id]

    async def _check_flags(self, state: _LoopState, stream_ids: list[str]) -> None:
        """Once subscribed, wake the waiters of the ``stream_ids`` that are cancelled or
        missing. Retries until Redis answers: a producer's wait has no deadline."""
        while True:
            await state.subscribed.wait()
            try:
                async with state.client.pipeline(transaction=False) as pipe:
                    for stream_id in stream_ids:
                        pipe.hmget(self._keys(stream_id)[0], ["state", "cancel"])
                    replies = await pipe.execute()
            except RedisError:
                await asyncio.sleep(0.1)
                continue
            for stream_id, (live, flag) in zip(stream_ids, replies, strict=True):
                if live is None or (flag is not None and _text(flag) == "1"):
                    self._wake(state, stream_id)
            return

    @staticmethod
    def _wake(state: _LoopState, stream_id: str) -> None:
        for future in state.waiters.get(stream_id, ()):
            if not future.done():
                future.set_result(None)

    def _check_all(self, state: _LoopState) -> None:
        if state.waiters:
            check = asyncio.create_task(self._check_flags(state, list(state.waiters)))
            state.checks.add(check)
            check.add_done_callback(state.checks.discard)

    async def _listen(self, state: _LoopState) -> None:
        """Hold this loop's subscription to the cancel channel and fan messages out.

        On every subscribe confirmation (the first, and each after a reconnect) and every
        ``_RECHECK`` seconds, the flags of all waiting streams are read again: messages
        sent while the connection was down are lost, the flags are not, and a stream
        that expired wakes its producer too.
        """
        loop = asyncio.get_running_loop()
        pause = 0.05
        while True:
            pubsub = state.client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                checked = loop.time()
                while True:
                    # A bounded wait: older redis-py releases apply the socket timeout
                    # to an unbounded one.
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        kind = _text(message["type"])
                        if kind == "subscribe":
                            pause = 0.05
                            state.subscribed.set()
                            checked = loop.time()
                            self._check_all(state)
                        elif kind == "message":
                            self._wake(state, _text(message["data"]))
                    if loop.time() - checked >= _RECHECK:
                        checked = loop.time()
                        self._check_all(state)
            except (RedisError, OSError):
                pass  # Redis went away for longer than the retries: start over below.
            finally:
                state.subscribed.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def aclose(self) -> None:
        """Stop the pub/sub listeners and close the clients the store opened (a client
        passed in is left open). The store can be used again afterwards."""
        with self._lock:
            states = list(self._states.items())
            self._states.clear()
        here = asyncio.get_running_loop()
        for loop, state in states:
            if loop is here:
                await self._close_state(state)
            elif not loop.is_closed() and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._close_state(state), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(future), timeout=5)

    @staticmethod
    async def _close_state(state: _LoopState) -> None:
        tasks = [*state.checks, *([state.listener] if state.listener is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if state.owned:
            await state.client.aclose()


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


def _check_id(stream_id: object) -> None:
    if not isinstance(stream_id, str):
        raise TypeError(f"stream_id must be a str, got {type(stream_id).__name__}")


def _check_seconds(name: str, value: object, *, zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (value >= 0 if zero else value > 0) or not math.isfinite(value):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)

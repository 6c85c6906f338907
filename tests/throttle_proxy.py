"""A loopback TCP proxy that models a network link: counts bytes, optionally limits rates.

Tests and benchmarks put it between rclone and a loopback server (``rclone serve
webdav``/``sftp``) to see what really crossed the wire and to give the transfer a
link shaped like the real one: a total rate shared by every connection (the
link, e.g. 40 MB/s) and a rate for each connection on its own (Dropbox gives one
stream roughly 10-20 MB/s). Both limits apply to each direction separately (a
full-duplex link), so uploads are shaped as well as downloads.

``RCLONE_BWLIMIT``/``RCLONE_BWLIMIT_FILE`` are no model of a link: each rclone
process gets its own full limit, so N processes get N links.

Usage::

    with ThrottleProxy(server_port, link_rate=40e6, conn_rate=8e6) as proxy:
        ...  # point rclone at 127.0.0.1:proxy.port
        print(proxy.down, proxy.up, proxy.connections)

Rates are bytes per second (``40e6`` is 40 MB/s); ``None`` means unlimited.
Two faults can be modelled as well: ``delay`` holds every chunk sent to the server that
many seconds (each request then costs about one round trip more), and ``drop_after``
cuts any connection once more than that many bytes went up it (a remote that drops the
connection in the middle of an upload; set it back to ``None`` and the network is back).
Threads and plain sockets: two pump threads per connection.
"""

from __future__ import annotations

import socket
import threading
import time

# A connection's bytes are moved in chunks of about this many seconds at its rate, so
# that one chunk never lets it run far ahead of that rate (8 MB/s -> 32 KiB chunks).
CHUNK_SECONDS = 0.004
MIN_CHUNK = 4096
MAX_CHUNK = 65536
# How far ahead of its schedule a sender may run: sleeps overshoot (~0.1 ms, more when
# threads wait for the GIL on a loaded machine) and without slack every overshoot would
# be rate lost for good. Also the most a sender can burst after an idle spell: 20 ms
# of its rate (160 KB at 8 MB/s).
BURST_SECONDS = 0.02


class TokenBucket:
    """A rate limit as a schedule (GCRA, the token bucket's equivalent): ``_due`` is when
    every byte paid for so far would have left at exactly ``rate``; a sender may run up
    to ``slack`` seconds ahead of it. Thread-safe; waiting is sleeping, FIFO among callers."""

    def __init__(self, rate: float, burst_seconds: float = BURST_SECONDS) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = float(rate)
        self.slack = burst_seconds
        self._due = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, nbytes: int, stop: threading.Event | None = None) -> None:
        """Block until ``nbytes`` may be sent; they are paid for at once."""
        with self._lock:
            self._due = max(self._due, time.monotonic()) + nbytes / self.rate
            until = self._due - self.slack
        delay = until - time.monotonic()
        if delay > 0:
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


def chunk_for(rate: float | None) -> int:
    """Bytes to move at once on a connection limited to ``rate`` bytes/s."""
    if rate is None:
        return MAX_CHUNK
    return int(min(MAX_CHUNK, max(MIN_CHUNK, rate * CHUNK_SECONDS)))


class ThrottleProxy:
    """Listens on 127.0.0.1:``port`` and forwards every connection to ``target_host:target_port``.

    ``link_rate``: bytes/s of all connections together, each direction; ``conn_rate``:
    bytes/s of each connection, each direction. ``down`` counts bytes server -> client,
    ``up`` client -> server. Starts listening at construction; ``close()`` (or leaving the
    ``with`` block) stops accepting, cuts every open connection and joins the threads.
    ``delay`` (s) and ``drop_after`` (bytes up one connection) model faults; ``dropped``
    counts the connections cut by ``drop_after``.
    """

    def __init__(self, target_port: int, *, link_rate: float | None = None, conn_rate: float | None = None,
                 target_host: str = "127.0.0.1", delay: float = 0.0, drop_after: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.target_port = target_port
        self.link_rate = link_rate
        self.conn_rate = conn_rate
        self._link = {d: TokenBucket(link_rate) for d in ("up", "down")} if link_rate else None
        self._chunk = min(chunk_for(conn_rate), chunk_for(link_rate))
        self.down = 0  # bytes server -> client
        self.up = 0  # bytes client -> server
        self.connections = 0  # accepted so far
        self.delay = delay
        self.drop_after = drop_after
        self.dropped = 0  # connections cut by drop_after
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(128)
        self._srv.settimeout(0.2)  # the accept loop looks at the stop flag this often
        self.port = self._srv.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> ThrottleProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        """Zero the byte counters (connections stay open)."""
        with self._lock:
            self.down = self.up = 0

    def counts(self) -> tuple[int, int]:
        """``(down, up)`` read together."""
        with self._lock:
            return self.down, self.up

    # -- connections ------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self.connections += 1
            self._spawn(self._connect, client)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stop.is_set():
                client.close()
                upstream.close()
                return
            self._socks |= {client, upstream}
        done = [0]  # pumps finished; the second one closes both sockets
        self._spawn(self._pump, client, upstream, "up", done)
        self._pump(upstream, client, "down", done)

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, done: list[int]) -> None:
        conn = TokenBucket(self.conn_rate) if self.conn_rate else None
        link = self._link[direction] if self._link else None
        chunk = self._chunk
        carried = 0
        try:
            while True:
                data = src.recv(chunk)
                if not data:
                    dst.shutdown(socket.SHUT_WR)  # pass the half-close on; the other way may still run
                    break
                carried += len(data)
                with self._lock:
                    if direction == "down":
                        self.down += len(data)
                    else:
                        self.up += len(data)
                        if self.drop_after is not None and carried > self.drop_after:
                            self.dropped += 1
                            raise ConnectionAbortedError("dropped")  # cut both sides, below
                if direction == "up" and self.delay:
                    time.sleep(self.delay)
                if conn is not None:
                    conn.wait(len(data), self._stop)
                if link is not None:
                    link.wait(len(data), self._stop)
                if self._stop.is_set():
                    break
                dst.sendall(data)
        except OSError:
            for s in (src, dst):  # a reset on one side: cut the other too
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        finally:
            with self._lock:
                done[0] += 1
                last = done[0] == 2
                if last:
                    self._socks -= {src, dst}
            if last:
                src.close()
                dst.close()

    def close(self) -> None:
        """Stop accepting, cut open connections, wait for every thread."""
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self._srv.close()
        except OSError:
            pass
        self._acceptor.join(timeout=5)
        with self._lock:
            socks = list(self._socks)
            threads = list(self._threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout=5)

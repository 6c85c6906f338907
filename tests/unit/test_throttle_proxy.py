"""The link model: real sockets on 127.0.0.1 through ThrottleProxy.

Functional checks of the limiter, not speed targets: transfers of a few MB whose
achieved rate must land within 25% of the configured one.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from throttle_proxy import ThrottleProxy, TokenBucket, chunk_for

MB = 1_000_000
OVER = 0.15  # a limiter may overshoot its rate this much (bursts, timer grain)
UNDER = 0.5  # and fall this far below it on a loaded 2-core machine (CPU starved, not the limiter)


class Server:
    """Loopback TCP server: sends ``send`` bytes to each client, then reads until EOF and records how many."""

    def __init__(self, send: int = 0) -> None:
        self.send = send
        self.received: list[int] = []
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        with c:
            try:
                block = b"x" * 65536
                left = self.send
                while left > 0:
                    c.sendall(block[:left])
                    left -= min(left, len(block))
                c.shutdown(socket.SHUT_WR)
                n = 0
                while data := c.recv(65536):
                    n += len(data)
            except OSError:  # the client (or the proxy being closed) cut the connection
                return
            with self._lock:
                self.received.append(n)

    def close(self) -> None:
        self._srv.close()


def download(port: int) -> tuple[int, float]:
    """(bytes read, seconds from connect to EOF)."""
    t0 = time.monotonic()
    n = 0
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.shutdown(socket.SHUT_WR)
        while data := s.recv(65536):
            n += len(data)
    return n, time.monotonic() - t0


def upload(port: int, size: int) -> float:
    """Seconds to send ``size`` bytes and have the far end close (so they all arrived)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        block = b"y" * 65536
        left = size
        while left > 0:
            s.sendall(block[:left])
            left -= min(left, len(block))
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    return time.monotonic() - t0


def within(rate: float, target: float) -> bool:
    """The limit holds (never well above it) and the link is used (not far below)."""
    return (1 - UNDER) * target <= rate <= (1 + OVER) * target


@pytest.fixture
def server():
    srv = Server(send=4 * MB)
    yield srv
    srv.close()


def test_one_connection_gets_its_own_rate_not_the_links(server):
    with ThrottleProxy(server.port, link_rate=40 * MB, conn_rate=8 * MB) as proxy:
        n, secs = download(proxy.port)
        assert n == 4 * MB and proxy.down == 4 * MB
        assert within(n / secs, 8 * MB), f"{n / secs / MB:.2f} MB/s"


def test_four_connections_together_are_held_to_the_link_rate(server):
    # 4 x 8 MB/s would be 32 MB/s: the link (16 MB/s) is what holds them
    results: list[tuple[int, float]] = []
    with ThrottleProxy(server.port, link_rate=16 * MB, conn_rate=8 * MB) as proxy:
        t0 = time.monotonic()
        threads = [threading.Thread(target=lambda: results.append(download(proxy.port))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        assert proxy.connections == 4 and proxy.down == 16 * MB
    assert [n for n, _ in results] == [4 * MB] * 4
    assert within(16 * MB / wall, 16 * MB), f"{16 * MB / wall / MB:.2f} MB/s"
    # shared fairly: no connection finished far ahead of the others
    secs = sorted(s for _, s in results)
    assert secs[0] > 0.6 * secs[-1], secs


def test_uploads_are_limited_and_counted(server):
    with ThrottleProxy(server.port, link_rate=40 * MB, conn_rate=8 * MB) as proxy:
        secs = upload(proxy.port, 4 * MB)
        assert within(4 * MB / secs, 8 * MB), f"{4 * MB / secs / MB:.2f} MB/s"
        assert proxy.up == 4 * MB and proxy.down == 4 * MB  # the server sends its 4 MB meanwhile
        # the client saw the server's EOF, which comes as soon as it has sent: the last of the
        # upload may still be in the proxy (closing the proxy cuts what is in flight)
        deadline = time.monotonic() + 10
        while not server.received and time.monotonic() < deadline:
            time.sleep(0.01)
    assert server.received == [4 * MB]


def test_unlimited_proxy_counts_exactly_and_reset_zeroes():
    srv = Server(send=300_000)
    try:
        with ThrottleProxy(srv.port) as proxy:
            assert download(proxy.port)[0] == 300_000
            assert proxy.counts() == (300_000, 0)
            proxy.reset()
            assert proxy.counts() == (0, 0)
    finally:
        srv.close()


def test_counting_proxy_name_still_works():
    from byte_proxy import CountingProxy

    srv = Server(send=100_000)
    try:
        proxy = CountingProxy(srv.port)
        assert download(proxy.port)[0] == 100_000 and proxy.down == 100_000
        proxy.close()
    finally:
        srv.close()


def test_close_cuts_open_connections_and_stops_accepting():
    srv = Server(send=50 * MB)  # far more than the test waits for
    try:
        before = threading.active_count()
        proxy = ThrottleProxy(srv.port, conn_rate=1 * MB)
        s = socket.create_connection(("127.0.0.1", proxy.port))
        assert s.recv(1000)
        t0 = time.monotonic()
        proxy.close()
        assert time.monotonic() - t0 < 3
        s.settimeout(5)
        left = 0
        try:
            while data := s.recv(65536):  # what was in flight, then EOF or a reset
                left += len(data)
        except ConnectionResetError:
            pass
        assert left < 2 * MB
        s.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
        assert threading.active_count() <= before + 1  # the test server's own thread may remain
    finally:
        srv.close()


def test_bucket_and_chunk_arithmetic():
    assert chunk_for(None) == 65536
    assert chunk_for(8 * MB) == 32_000  # 4 ms of 8 MB/s
    assert chunk_for(100) == 4096
    b = TokenBucket(10 * MB, burst_seconds=0.0)
    t0 = time.monotonic()
    for _ in range(20):
        b.wait(100_000)  # 2 MB at 10 MB/s
    assert within(2 * MB / (time.monotonic() - t0), 10 * MB)
    with pytest.raises(ValueError):
        TokenBucket(0)

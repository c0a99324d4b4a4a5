"""A guard for the tests whose clients could reach the internet: nothing may leave loopback."""

import contextlib
import socket
from collections.abc import Iterator

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """No socket of this process connects, nor looks a name up, beyond loopback: the attempt
    fails the test, naming the address."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise AssertionError(f"a connection to {address} would leave loopback")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOOPBACK:
            raise AssertionError(f"a DNS lookup of {host!r} would leave loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect, socket.getaddrinfo = real_connect, real_getaddrinfo

"""A small TCP fault proxy for tests: put it between a client and a server and switch, at run
time, how the network behaves.

Modes (:attr:`FaultProxy.mode`):

- ``"pass"``: bytes are relayed both ways.
- ``"dead"``: connections are accepted and never answered. A connection that carries any byte
  while the proxy is dead stays dead for good (as a stuck TCP connection does), even after the
  proxy heals: it is closed only when the client gives up or the proxy stops.
- ``"reset"``: new connections, and any connection that carries a byte, are reset (RST).
- ``"refuse"``: nothing listens: new connections are refused; open ones are reset.

Usage::

    proxy = FaultProxy(("127.0.0.1", hub.port)).start()
    client_endpoint = proxy.endpoint        # http://127.0.0.1:<proxy port>
    proxy.set_mode("dead")
    proxy.wait_swallowed(1, timeout=30)     # a request is now stuck in the dead network
    proxy.set_mode("pass")
    proxy.stop()

Every connection that meets the dead network counts in :attr:`swallowed` (once, at the first
byte it loses: of a request, or of an answer that was on its way back), so tests wait on that
instead of sleeping.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

__all__ = ["FaultProxy", "Mode"]

Mode = Literal["pass", "dead", "reset", "refuse"]
_MODES = ("pass", "dead", "reset", "refuse")
_CHUNK = 64 * 1024


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST (SO_LINGER 0) rather than a FIN.

    ``shutdown(SHUT_RD)`` first wakes a relay thread blocked in ``recv`` on it: until that call
    returns, the kernel keeps the socket open and the RST would not be sent.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


class _Pipe:
    """One accepted client connection and its upstream connection (opened lazily)."""

    def __init__(self, proxy: FaultProxy, client: socket.socket) -> None:
        self.proxy, self.client = proxy, client
        self.upstream: socket.socket | None = None
        self.dead = False
        self.closed = False
        self.lock = threading.Lock()

    def run(self) -> None:
        """Relay client -> upstream in this thread (upstream -> client in a second one)."""
        try:
            while True:
                data = self.client.recv(_CHUNK)
                if not data:
                    break
                if not self._forward_allowed():
                    continue
                if self.upstream is None and not self._connect_upstream():
                    break
                self.upstream.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def _forward_allowed(self) -> bool:
        """Whether bytes may pass now; applies the current mode to this connection."""
        mode = self.proxy.mode
        if self.dead or mode == "dead":
            self._die()
            return False
        if mode in ("reset", "refuse"):
            self.close(reset=True)
            raise OSError("reset by the fault proxy")
        return True

    def _die(self) -> None:
        """Mark this connection dead (the network swallows it from now on), counted once, whichever way
        it met the dead network first: its request's bytes, or its answer's."""
        with self.lock:
            if self.dead:
                return
            self.dead = True
        self.proxy._count_swallowed()

    def _connect_upstream(self) -> bool:
        try:
            self.upstream = socket.create_connection(self.proxy.upstream, timeout=10)
            self.upstream.settimeout(None)
        except OSError:
            self.close(reset=True)
            return False
        threading.Thread(target=self._relay_back, name="faultproxy-back", daemon=True).start()
        return True

    def _relay_back(self) -> None:
        upstream = self.upstream
        assert upstream is not None
        try:
            while True:
                data = upstream.recv(_CHUNK)
                if not data:
                    break
                if self.dead or self.proxy.mode == "dead":
                    self._die()
                    continue  # the answer is lost in the dead network
                if self.proxy.mode in ("reset", "refuse"):
                    self.close(reset=True)
                    return
                self.client.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def close(self, reset: bool = False) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.proxy._forget(self)


class FaultProxy:
    """A TCP proxy on ``127.0.0.1`` (a free port) in front of ``upstream`` (``(host, port)``).

    Args:
        upstream: where bytes go in ``"pass"`` mode.
        mode: the mode at start (see the module docstring).

    The port stays the same across modes (``"refuse"`` closes the listening socket, another mode
    opens it again on the same port).
    """

    def __init__(self, upstream: tuple[str, int], mode: Mode = "pass") -> None:
        self.upstream = upstream
        self.host = "127.0.0.1"
        self.port = 0
        self._mode: Mode = mode
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pipes: set[_Pipe] = set()
        self._listener: socket.socket | None = None
        self._swallowed = 0
        self._accepted = 0
        self._resets = 0
        self._stopped = False

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: what the client should talk to."""
        return f"http://{self.host}:{self.port}"

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    @property
    def swallowed(self) -> int:
        """How many connections lost bytes (a request's, or an answer's) in the dead network so far."""
        with self._lock:
            return self._swallowed

    @property
    def resets(self) -> int:
        """How many connections were reset as soon as they were accepted (mode ``"reset"``)."""
        with self._lock:
            return self._resets

    @property
    def accepted(self) -> int:
        """How many connections were accepted so far (in any mode but ``"refuse"``)."""
        with self._lock:
            return self._accepted

    def start(self) -> FaultProxy:
        """Start listening (unless the mode is ``"refuse"``); returns self."""
        if self._mode != "refuse":
            self._listen()
        else:  # reserve a port now, so the endpoint is known before the first listen
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        return self

    def set_mode(self, mode: Mode) -> None:
        """Switch the mode; open connections follow it at their next byte.

        Raises:
            ValueError: for an unknown mode.
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, not {mode!r}")
        with self._lock:
            previous, self._mode = self._mode, mode
            pipes = list(self._pipes) if mode in ("reset", "refuse") else []
            self._changed.notify_all()
        for pipe in pipes:
            pipe.close(reset=True)
        if mode == "refuse" and previous != "refuse":
            self._close_listener()
        elif mode != "refuse" and (previous == "refuse" or self._listener is None):
            self._listen()

    def wait_swallowed(self, count: int, timeout: float = 30.0) -> bool:
        """Block until at least ``count`` connections went dead; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._swallowed >= count, timeout)

    def stop(self) -> None:
        """Stop listening and close every connection."""
        with self._lock:
            self._stopped = True
            pipes = list(self._pipes)
        self._close_listener()
        for pipe in pipes:
            pipe.close(reset=True)

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), name="faultproxy-accept", daemon=True).start()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                if self._stopped:
                    _reset(client)
                    return
                self._accepted += 1
                if self._mode in ("reset", "refuse"):
                    self._resets += 1
                    _reset(client)
                    continue
                pipe = _Pipe(self, client)
                self._pipes.add(pipe)
            threading.Thread(target=pipe.run, name="faultproxy-pipe", daemon=True).start()

    def _count_swallowed(self) -> None:
        with self._changed:
            self._swallowed += 1
            self._changed.notify_all()

    def _forget(self, pipe: _Pipe) -> None:
        with self._lock:
            self._pipes.discard(pipe)

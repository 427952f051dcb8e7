"""A small asyncio NATS client for the JetStream peer: JetStream API requests (stream and
consumer creation), publishes with a reply inbox (JetStream answers each with a PubAck), and a
durable push consumer's deliveries, each acknowledged by an empty message to its $JS.ACK reply
subject (JetStream's plain ack, the same as nats-py's msg.ack()).

Why not nats-py: measured here, nats-py spent about 27 us of CPU per JetStream publish (a
future, an inbox subscription dispatch and a JSON decode per PubAck), so one Python client
process would cap the peer near 35,000/s on a core of this 2-core machine. Here a publish is
one formatted write and a PubAck is checked by its bytes (`{"stream":...,"seq":N}`; an
`"error"` fails the send). Everything written in one event-loop turn goes out in one write.
"""
import asyncio
import json
import os


class NatsError(Exception):
    pass


class Connection(asyncio.Protocol):
    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.transport = None
        self.buffer = bytearray()
        self.out = []
        self.flush_scheduled = False
        self.error = None
        self.subs = {}  # sid -> callback(subject, reply, payload)
        self.next_sid = 1
        self.pongs = []
        self.info = self.loop.create_future()

    # ---- transport

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self._fail(exc or NatsError("connection closed"))

    def _fail(self, error):
        if self.error is None:
            self.error = error
        for waiter in self.pongs:
            if not waiter.done():
                waiter.set_exception(self.error)
        self.pongs = []
        if not self.info.done():
            self.info.set_exception(self.error)
        for callback in list(self.subs.values()):
            fail = getattr(callback, "fail", None)
            if fail is not None:
                fail(self.error)

    def write(self, data):
        self.out.append(data)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self):
        self.flush_scheduled = False
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def data_received(self, data):
        buf = self.buffer
        buf += data
        pos = 0
        try:
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                op = bytes(buf[pos:pos + 4]).upper()
                if op == b"MSG " or op == b"HMSG":
                    parts = bytes(buf[pos:eol]).split()
                    total = int(parts[-1])
                    start = eol + 2
                    if start + total + 2 > len(buf):
                        break
                    if op == b"HMSG":
                        header_len = int(parts[-2])
                        reply = parts[3] if len(parts) == 6 else None
                        payload = bytes(buf[start + header_len:start + total])
                    else:
                        reply = parts[3] if len(parts) == 5 else None
                        payload = bytes(buf[start:start + total])
                    callback = self.subs.get(int(parts[2]))
                    if callback is not None:
                        callback(parts[1], reply, payload)
                    pos = start + total + 2
                    continue
                line = bytes(buf[pos:eol])
                pos = eol + 2
                if line == b"PING":
                    self.write(b"PONG\r\n")
                elif line == b"PONG":
                    if self.pongs:
                        waiter = self.pongs.pop(0)
                        if not waiter.done():
                            waiter.set_result(None)
                elif line.startswith(b"INFO "):
                    if not self.info.done():
                        self.info.set_result(json.loads(line[5:]))
                elif line.startswith(b"-ERR"):
                    raise NatsError(line.decode(errors="replace"))
                # +OK: nothing (verbose is off)
        except Exception as e:
            self._fail(e)
            self.transport.close()
        del buf[:pos]

    # ---- operations

    def subscribe(self, subject, callback):
        sid = self.next_sid
        self.next_sid += 1
        self.subs[sid] = callback
        self.write(b"SUB %s %d\r\n" % (subject.encode() if isinstance(subject, str) else subject, sid))
        return sid

    def publish(self, subject, payload, reply=None):
        if self.error is not None:
            raise self.error
        if reply is None:
            self.write(b"PUB %s %d\r\n%s\r\n" % (subject, len(payload), payload))
        else:
            self.write(b"PUB %s %s %d\r\n%s\r\n" % (subject, reply, len(payload), payload))

    async def ping(self, timeout=10):
        waiter = self.loop.create_future()
        self.pongs.append(waiter)
        self.write(b"PING\r\n")
        await asyncio.wait_for(waiter, timeout)

    async def close(self):
        try:
            await self.ping(5)
        except Exception:
            pass
        if self.transport is not None:
            self.transport.close()


async def request(conn, subject, body, timeout=10):
    """A JetStream API request: the decoded JSON reply; an API error raises."""
    inbox = b"_INBOX.vbreq%s" % os.urandom(6).hex().encode()
    future = conn.loop.create_future()

    def reply(subject, _reply, payload):
        if not future.done():
            future.set_result(payload)

    sid = conn.subscribe(inbox, reply)
    conn.publish(subject.encode(), json.dumps(body).encode(), inbox)
    try:
        answer = json.loads(await asyncio.wait_for(future, timeout))
    finally:
        conn.subs.pop(sid, None)
        conn.write(b"UNSUB %d\r\n" % sid)
    if "error" in answer:
        raise NatsError(f"{subject}: {answer['error']}")
    return answer


async def connect(port):
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Connection, "127.0.0.1", port)
    await asyncio.wait_for(conn.info, 10)
    conn.write(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,'
               b'"protocol":1,"name":"valise-bench"}\r\n')
    await conn.ping()
    return conn


class Publisher:
    """JetStream publishes on one connection; each send's future resolves on its PubAck."""

    def __init__(self, conn):
        self.conn = conn
        self.prefix = b"_INBOX.vb%s." % os.urandom(6).hex().encode()
        self.waiting = {}
        self.seq = 0
        conn.subscribe(self.prefix + b"*", self)

    def __call__(self, subject, reply, payload):
        future = self.waiting.pop(subject[len(self.prefix):], None)
        if future is None or future.done():
            return
        if payload.startswith(b'{"stream":') and b'"error"' not in payload:
            future.set_result(None)
        else:
            future.set_exception(NatsError(f"JetStream refused a publish: {payload[:200]!r}"))

    def fail(self, error):
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(error)
        self.waiting.clear()

    def publish(self, subject, payload):
        self.seq += 1
        token = b"%d" % self.seq
        future = self.conn.loop.create_future()
        self.waiting[token] = future
        self.conn.publish(subject, payload, self.prefix + token)
        return future

"""Client adapters, one pair per peer, all asyncio (uvloop).

A Sender has `await send(recipient, payload)` that returns when the broker has confirmed the
message durably stored (as far as that broker's setting goes); the load code runs W of these
at once per sender, which is a sliding window of W unconfirmed sends on one connection.

A Receiver consumes one recipient's queue on its own connection, calls `on_message(payload)`
for each delivery and acknowledges it (the broker then deletes it), until `expected` messages
have been acknowledged: `await start(on_message, expected)` subscribes and returns an awaitable
of the monotonic time (ns) of the last acknowledgement.

Queue layout:
  rabbitmq-quorum  one durable quorum queue per recipient (x-queue-type=quorum), default
                   exchange; persistent messages (delivery_mode 2); publisher confirms;
                   consumers use basic.qos prefetch and one basic.ack per message. The client
                   is peers/amqp.py (see there why not aiormq).
  redis-*          one stream per recipient (key mbox:R) with a consumer group; XADD; the
                   consumer does XREADGROUP (COUNT = prefetch) then XACK and XDEL of what it
                   read, pipelined ahead of its next XREADGROUP. XDEL is there because Valise
                   deletes a message once it is acknowledged; XACK alone leaves the entry in
                   the stream. Both are written to the AOF (and fsync'ed under `always`).
                   The Redis client is a small RESP client on hiredis's parser: redis-py's
                   pipeline sends a batch and waits for all of it, which is not a sliding
                   window; this one sends each command at the end of the event-loop turn
                   that issued it (with the others of that turn, in one write) and matches
                   replies in order.
  nats-jetstream   one stream (subjects mbox.*) with WorkQueue retention (a message is
                   removed once acknowledged), a subject per recipient, publishes with a reply
                   inbox (W un-answered PubAcks per sender), and one durable push consumer per
                   recipient with explicit acks and max_ack_pending = prefetch. The client is
                   peers/natsproto.py (see there why not nats-py).
"""
import asyncio
import collections
import time

GROUP = b"valise"
STREAM = "VALISE"


# ---------------------------------------------------------------- RabbitMQ (peers/amqp.py)

async def rabbit_setup(info, recipients, deadline):
    from . import amqp
    while True:
        try:
            conn = await asyncio.wait_for(amqp.connect(info["port"]), timeout=5)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    for r in range(recipients):
        await amqp.queue_declare(conn, f"q{r}", {"x-queue-type": "quorum"})
    await conn.close()


class RabbitSender:
    async def connect(self, info, window):
        from . import amqp
        self.conn = await amqp.connect(info["port"])
        await amqp.confirm_select(self.conn)

    def send(self, recipient, payload):
        return self.conn.publish(f"q{recipient}", payload)

    async def close(self):
        await self.conn.close()


class RabbitReceiver:
    async def connect(self, info, recipient, prefetch):
        from . import amqp
        self.conn = await amqp.connect(info["port"])
        self.queue = f"q{recipient}"
        self.prefetch = prefetch

    async def start(self, on_message, expected):
        from . import amqp
        done = asyncio.get_running_loop().create_future()
        count = 0
        conn = self.conn

        def delivered(tag, body):
            nonlocal count
            on_message(body)
            conn.ack(tag)
            count += 1
            if count == expected and not done.done():
                conn._flush()  # the last ack is on the wire when the clock stops
                done.set_result(time.monotonic_ns())

        await amqp.consume(conn, self.queue, self.prefetch, delivered)
        return done

    async def close(self):
        await self.conn.close()


# ---------------------------------------------------------------- Redis (RESP on hiredis)

class Resp(asyncio.Protocol):
    def __init__(self):
        import hiredis
        self.hiredis = hiredis
        self.reader = hiredis.Reader()
        self.waiting = collections.deque()
        self.transport = None
        self.lost = None
        self.loop = asyncio.get_running_loop()
        self.out = []
        self.flush_scheduled = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.reader.feed(data)
        gets, waiting, error = self.reader.gets, self.waiting, self.hiredis.ReplyError
        while True:
            reply = gets()
            if reply is False:
                return
            future = waiting.popleft()
            if isinstance(reply, error):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc):
        self.lost = exc or ConnectionError("redis connection closed")
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)

    def command(self, *args):
        """Sends at the end of this event-loop turn, with whatever else was sent in it (one
        write for many commands); the future resolves with the reply."""
        if self.lost is not None:
            raise self.lost
        future = self.loop.create_future()
        self.waiting.append(future)
        self.out.append(self.hiredis.pack_command(args))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)
        return future

    def flush(self):
        self.flush_scheduled = False
        if self.out and not self.transport.is_closing():
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def close(self):
        if self.transport is not None:
            self.transport.close()


async def resp_connect(info):
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(Resp, "127.0.0.1", info["port"])
    return proto


async def redis_setup(info, recipients, deadline):
    while True:
        try:
            r = await resp_connect(info)
            if await asyncio.wait_for(r.command(b"PING"), timeout=5) in (b"PONG", "PONG"):
                break
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)
    for i in range(recipients):
        await r.command(b"XGROUP", b"CREATE", f"mbox:{i}".encode(), GROUP, b"$", b"MKSTREAM")
    r.close()


class RedisSender:
    async def connect(self, info, window):
        self.r = await resp_connect(info)
        self.keys = {}

    def send(self, recipient, payload):
        key = self.keys.get(recipient)
        if key is None:
            key = self.keys[recipient] = f"mbox:{recipient}".encode()
        return self.r.command(b"XADD", key, b"*", b"d", payload)

    async def close(self):
        self.r.close()


class RedisReceiver:
    async def connect(self, info, recipient, prefetch):
        self.r = await resp_connect(info)
        self.key = f"mbox:{recipient}".encode()
        self.consumer = f"c{recipient}".encode()
        self.prefetch = str(prefetch).encode()

    async def start(self, on_message, expected):
        return asyncio.ensure_future(self._consume(on_message, expected))

    async def _consume(self, on_message, expected):
        r, key = self.r, self.key
        read = (b"XREADGROUP", b"GROUP", GROUP, self.consumer, b"COUNT", self.prefetch,
                b"BLOCK", b"1000", b"STREAMS", key, b">")
        count = 0
        pending = []
        while count < expected:
            reply = await r.command(*read)
            for future in pending:  # the XACK/XDEL sent before this read have been answered
                future.result()
            pending = []
            if not reply:
                continue
            ids = []
            for entry_id, fields in reply[0][1]:
                on_message(fields[1])
                ids.append(entry_id)
            count += len(ids)
            pending = [r.command(b"XACK", key, GROUP, *ids), r.command(b"XDEL", key, *ids)]
        for future in pending:
            await future  # the last XACK and XDEL are answered (and, under always, fsync'ed)
        return time.monotonic_ns()

    async def close(self):
        self.r.close()


# ---------------------------------------------------------------- NATS JetStream (peers/natsproto.py)

async def nats_setup(info, recipients, deadline):
    from . import natsproto
    while True:
        try:
            conn = await asyncio.wait_for(natsproto.connect(info["port"]), timeout=5)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    await natsproto.request(conn, f"$JS.API.STREAM.CREATE.{STREAM}", {
        "name": STREAM, "subjects": ["mbox.*"], "retention": "workqueue", "storage": "file",
        "num_replicas": 1, "discard": "old"})
    await conn.close()


class NatsSender:
    async def connect(self, info, window):
        from . import natsproto
        self.conn = await natsproto.connect(info["port"])
        self.publisher = natsproto.Publisher(self.conn)
        await self.conn.ping()  # the PubAck inbox subscription is in place
        self.subjects = {}

    def send(self, recipient, payload):
        subject = self.subjects.get(recipient)
        if subject is None:
            subject = self.subjects[recipient] = b"mbox.%d" % recipient
        return self.publisher.publish(subject, payload)

    async def close(self):
        await self.conn.close()


class NatsReceiver:
    async def connect(self, info, recipient, prefetch):
        from . import natsproto
        self.conn = await natsproto.connect(info["port"])
        self.recipient = recipient
        self.prefetch = prefetch

    async def start(self, on_message, expected):
        import os
        from . import natsproto
        conn = self.conn
        done = asyncio.get_running_loop().create_future()
        count = 0

        def delivered(_subject, reply, payload):
            nonlocal count
            on_message(payload)
            conn.publish(reply, b"")  # the ack
            count += 1
            if count == expected and not done.done():
                conn._flush()  # the last ack is on the wire when the clock stops
                done.set_result(time.monotonic_ns())

        deliver = f"deliver.{self.recipient}.{os.urandom(4).hex()}"
        conn.subscribe(deliver, delivered)
        await conn.ping()
        durable = f"r{self.recipient}"
        await natsproto.request(conn, f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{durable}", {
            "stream_name": STREAM, "config": {
                "durable_name": durable, "deliver_subject": deliver, "deliver_policy": "all",
                "ack_policy": "explicit", "ack_wait": 30_000_000_000, "max_ack_pending": self.prefetch,
                "filter_subject": f"mbox.{self.recipient}", "replay_policy": "instant"}})
        return done

    async def close(self):
        await self.conn.close()


SETUP = {"rabbitmq": rabbit_setup, "redis": redis_setup, "nats": nats_setup}
SENDERS = {"rabbitmq": RabbitSender, "redis": RedisSender, "nats": NatsSender}
RECEIVERS = {"rabbitmq": RabbitReceiver, "redis": RedisReceiver, "nats": NatsReceiver}


def family(peer):
    return peer.split("-")[0]

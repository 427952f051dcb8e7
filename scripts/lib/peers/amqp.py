"""A small asyncio AMQP 0-9-1 client for the RabbitMQ peer: just what the benchmark needs
(connection, one channel, queue.declare, confirm.select, basic.qos/consume/publish/ack).

Why not aiormq or pika: measured here, aiormq spent about 115 us of CPU per confirmed publish
(a lock, a queue hand-off, a drain and one write syscall per message), so a Python client
process saturated a core at ~7,500 publishes/s and the benchmark measured the client rather
than RabbitMQ. This client uses pamqp (aiormq's own frame codec) for the rare control frames
and hand-packed frames on the hot path: a publish is three pre-built frames around the body,
a confirm or a delivery is parsed with struct, and everything written in one event-loop turn
goes out in one write. The protocol on the wire is the same: persistent messages, publisher
confirms (basic.ack, possibly `multiple`), one basic.ack per delivered message.
"""
import asyncio
import collections
import struct

FRAME_END = b"\xce"
_HEADER = struct.Struct(">BHI")
_METHOD_IDS = struct.Struct(">HH")
_U64 = struct.Struct(">Q")
_ACK = struct.Struct(">BHIHHQB")


class AMQPError(Exception):
    pass


class Connection(asyncio.Protocol):
    CHANNEL = 1

    def __init__(self):
        self.transport = None
        self.buffer = bytearray()
        self.out = []
        self.flush_scheduled = False
        self.loop = asyncio.get_running_loop()
        self.control = collections.deque()  # control frames (pamqp objects) not yet taken
        self.control_waiter = None
        self.confirms = collections.OrderedDict()  # delivery tag -> future
        self.publish_tag = 0
        self.on_delivery = None
        self.delivery_tag = None
        self.body_size = 0
        self.body_parts = []
        self.error = None
        self.publish_prefix = {}
        self.header_frame = {}
        self.frame_max = 4096

    # ---- transport

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self._fail(exc or AMQPError("connection closed"))

    def _fail(self, error):
        if self.error is None:
            self.error = error
        for future in self.confirms.values():
            if not future.done():
                future.set_exception(self.error)
        self.confirms.clear()
        if self.control_waiter is not None and not self.control_waiter.done():
            self.control_waiter.set_exception(self.error)

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
        pos, end = 0, len(buf)
        try:
            while end - pos >= 8:
                frame_type, channel, size = _HEADER.unpack_from(buf, pos)
                stop = pos + 7 + size
                if stop + 1 > end:
                    break
                if buf[stop] != 0xCE:
                    raise AMQPError("bad frame end")
                self._frame(frame_type, buf, pos + 7, stop)
                pos = stop + 1
        except Exception as e:  # protocol error: fail everything waiting
            self._fail(e)
            self.transport.close()
        del buf[:pos]

    def _frame(self, frame_type, buf, start, stop):
        if frame_type == 1:
            class_id, method_id = _METHOD_IDS.unpack_from(buf, start)
            if class_id == 60 and method_id == 80:  # basic.ack (a publisher confirm)
                tag = _U64.unpack_from(buf, start + 4)[0]
                self._confirm(tag, buf[start + 12] & 1, None)
                return
            if class_id == 60 and method_id == 60:  # basic.deliver
                at = start + 4
                at += 1 + buf[at]  # consumer tag
                self.delivery_tag = _U64.unpack_from(buf, at)[0]
                return
            if class_id == 60 and method_id == 120:  # basic.nack
                tag = _U64.unpack_from(buf, start + 4)[0]
                self._confirm(tag, buf[start + 12] & 1, AMQPError(f"publish {tag} nacked"))
                return
            from pamqp import frame as pframe
            _, _, value = pframe.unmarshal(bytes(buf[start - 7:stop + 1]))
            name = value.name
            if name in ("Connection.Close", "Channel.Close"):
                self._fail(AMQPError(f"{name}: {value.reply_code} {value.reply_text}"))
                return
            self.control.append(value)
            if self.control_waiter is not None and not self.control_waiter.done():
                self.control_waiter.set_result(None)
        elif frame_type == 2:  # content header
            self.body_size = _U64.unpack_from(buf, start + 4)[0]
            self.body_parts = []
            if self.body_size == 0:
                self._delivered(b"")
        elif frame_type == 3:  # content body
            self.body_parts.append(bytes(buf[start:stop]))
            if sum(map(len, self.body_parts)) >= self.body_size:
                body = self.body_parts[0] if len(self.body_parts) == 1 else b"".join(self.body_parts)
                self._delivered(body)
        # 8: heartbeat (we ask for none)

    def _delivered(self, body):
        tag, self.delivery_tag = self.delivery_tag, None
        self.on_delivery(tag, body)

    def _confirm(self, tag, multiple, error):
        confirms = self.confirms
        if multiple:
            while confirms:
                first = next(iter(confirms))
                if first > tag:
                    break
                future = confirms.pop(first)
                if not future.done():
                    future.set_result(None) if error is None else future.set_exception(error)
        else:
            future = confirms.pop(tag, None)
            if future is not None and not future.done():
                future.set_result(None) if error is None else future.set_exception(error)

    # ---- control

    def send_method(self, value, channel=None):
        from pamqp import frame as pframe
        self.write(pframe.marshal(value, self.CHANNEL if channel is None else channel))

    async def expect(self, name, timeout=30):
        while not self.control:
            if self.error is not None:
                raise self.error
            self.control_waiter = self.loop.create_future()
            await asyncio.wait_for(self.control_waiter, timeout)
        value = self.control.popleft()
        if value.name != name:
            raise AMQPError(f"expected {name}, got {value.name}")
        return value

    async def rpc(self, value, reply, channel=None):
        self.send_method(value, channel)
        return await self.expect(reply)

    # ---- the benchmark's operations

    def publish(self, routing_key, body):
        """A persistent message to the default exchange; returns the confirm's future."""
        if self.error is not None:
            raise self.error
        if len(body) > self.frame_max - 8:
            raise AMQPError(f"a {len(body)}-byte body needs several body frames; this client sends one "
                            f"(frame_max {self.frame_max})")
        prefix = self.publish_prefix.get(routing_key)
        if prefix is None:
            key = routing_key.encode()
            args = struct.pack(">HHHB", 60, 40, 0, 0) + bytes([len(key)]) + key + b"\x00"
            prefix = self.publish_prefix[routing_key] = _HEADER.pack(1, self.CHANNEL, len(args)) + args + FRAME_END
        header = self.header_frame.get(len(body))
        if header is None:
            # class 60, weight 0, body size, property flags: delivery-mode only; 2 = persistent
            payload = struct.pack(">HHQHB", 60, 0, len(body), 0x1000, 2)
            header = self.header_frame[len(body)] = _HEADER.pack(2, self.CHANNEL, len(payload)) + payload + FRAME_END
        self.publish_tag += 1
        future = self.loop.create_future()
        self.confirms[self.publish_tag] = future
        self.write(prefix + header + _HEADER.pack(3, self.CHANNEL, len(body)) + body + FRAME_END)
        return future

    def ack(self, delivery_tag):
        self.write(_ACK.pack(1, self.CHANNEL, 13, 60, 80, delivery_tag, 0) + FRAME_END)

    async def close(self):
        from pamqp import commands
        try:
            await asyncio.wait_for(self.rpc(commands.Connection.Close(reply_code=200, reply_text="bye"),
                                            "Connection.CloseOk", channel=0), 5)
        except Exception:
            pass
        if self.transport is not None:
            self.transport.close()


async def connect(port, user="guest", password="guest"):
    from pamqp import commands, header
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Connection, "127.0.0.1", port)
    conn.write(header.ProtocolHeader().marshal())
    await conn.expect("Connection.Start")
    conn.send_method(commands.Connection.StartOk(
        client_properties={"product": "valise-bench", "capabilities": {"publisher_confirms": True}},
        mechanism="PLAIN", response=f"\0{user}\0{password}", locale="en_US"), channel=0)
    tune = await conn.expect("Connection.Tune")
    conn.frame_max = tune.frame_max or 131072
    conn.send_method(commands.Connection.TuneOk(channel_max=tune.channel_max or 2047,
                                                frame_max=conn.frame_max, heartbeat=0), channel=0)
    await conn.rpc(commands.Connection.Open(virtual_host="/"), "Connection.OpenOk", channel=0)
    await conn.rpc(commands.Channel.Open(), "Channel.OpenOk")
    return conn


async def queue_declare(conn, name, arguments):
    from pamqp import commands
    await conn.rpc(commands.Queue.Declare(queue=name, durable=True, arguments=arguments), "Queue.DeclareOk")


async def confirm_select(conn):
    from pamqp import commands
    await conn.rpc(commands.Confirm.Select(), "Confirm.SelectOk")


async def consume(conn, queue, prefetch, on_delivery):
    from pamqp import commands
    conn.on_delivery = on_delivery
    await conn.rpc(commands.Basic.Qos(prefetch_count=prefetch), "Basic.QosOk")
    await conn.rpc(commands.Basic.Consume(queue=queue, consumer_tag=f"c-{queue}", no_ack=False), "Basic.ConsumeOk")

"""A bad network for scripts/faults: an asyncio TCP proxy on 127.0.0.1 between clients and
the relay that delays, drops and duplicates chunks of the byte stream and cuts
connections. A dropped or doubled chunk breaks the Noise stream, so the relay or client
must end that session; the client reconnects and repeats, and the message ids make the
repeats harmless."""
import asyncio
import os
import random
import threading
import time

from faults_common import free_port, logged

SENDER, RECEIVER = "s1@lagos", "r1@jakarta"
ALICE, BOB = "alice@lagos", "bob@quito"


class Proxy:
    def __init__(self, target_port, seed):
        self.port, self.target = free_port(), target_port
        self.random = random.Random(seed)
        self.counts = {"connections": 0, "delayed": 0, "dropped": 0, "duplicated": 0, "cut": 0}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", self.port))
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()

    async def _open_relay(self, client_writer):
        """The connection to the relay for a client's, or None (the client's is closed)."""
        self.counts["connections"] += 1
        try:
            return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.target), 5)
        except (OSError, asyncio.TimeoutError):
            client_writer.close()
            return None

    async def _connection(self, client_reader, client_writer):
        relay = await self._open_relay(client_writer)
        if relay is None:
            return
        relay_reader, relay_writer = relay
        # One connection in four passes untouched, so that sessions do get through.
        faulty = self.random.random() < 0.75
        budget = self.random.randrange(100, 8000)  # bytes before a cut or a drop
        state = {"bytes": 0}

        async def pipe(reader, writer):
            try:
                while True:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    state["bytes"] += len(chunk)
                    if faulty:
                        roll = self.random.random()
                        if roll < 0.3:
                            self.counts["delayed"] += 1
                            await asyncio.sleep(self.random.uniform(0.01, 0.3))
                        if state["bytes"] > budget:
                            action = self.random.choice(["drop", "duplicate", "cut"])
                            self.counts[{"drop": "dropped", "duplicate": "duplicated", "cut": "cut"}[action]] += 1
                            if action == "cut":
                                break
                            if action == "drop":
                                budget_hit()
                                continue
                            writer.write(chunk)
                            budget_hit()
                    writer.write(chunk)
                    await writer.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                for w in (client_writer, relay_writer):
                    w.close()

        def budget_hit():
            nonlocal faulty
            faulty = self.random.random() < 0.5  # sometimes a second fault on the same stream

        await asyncio.gather(pipe(client_reader, relay_writer), pipe(relay_reader, client_writer))


class FrameCutter(Proxy):
    """Forwards the preamble, then whole frames (2-byte big-endian length, DESIGN.md), and closes both sides
    right after the client's `cut_after`-th frame, so that a sweep over `cut_after` cuts a
    session at every step: handshake, directory, prekeys, the envelope, its Accepted."""

    cut_after = 1

    async def _connection(self, client_reader, client_writer):
        relay = await self._open_relay(client_writer)
        if relay is None:
            return
        relay_reader, relay_writer = relay
        cut = asyncio.Event()

        async def upstream():
            frames = 0
            try:
                # The client's 8-byte cleartext preamble (docs/PROTOCOL.md) comes before
                # its frames and goes on as it came.
                relay_writer.write(await client_reader.readexactly(8))
                await relay_writer.drain()
                while frames < self.cut_after:
                    length = await client_reader.readexactly(2)
                    body = await client_reader.readexactly(int.from_bytes(length, "big"))
                    relay_writer.write(length + body)
                    await relay_writer.drain()
                    frames += 1
                await asyncio.sleep(0.05)  # the relay may answer; the client sees no answer after the cut
                self.counts["cut"] += 1
            except (OSError, asyncio.IncompleteReadError):
                pass
            cut.set()

        async def downstream():
            try:
                while not cut.is_set():
                    chunk = await relay_reader.read(4096)
                    if not chunk:
                        break
                    client_writer.write(chunk)
                    await client_writer.drain()
            except OSError:
                pass

        down = asyncio.ensure_future(downstream())
        await upstream()
        down.cancel()
        for writer in (client_writer, relay_writer):
            writer.close()


def cut_frames(fault):
    """valise send through a connection cut after its 1st, 2nd, … frame; then syncs
    straight to the relay. Each message once in the outbox, once on the recipient's screen."""
    fault.messaging_world(ALICE, BOB, recipient=BOB)
    cutter = FrameCutter(fault.port, 0).start()
    texts, outcomes = set(), {}
    try:
        for frames in range(1, (12 if fault.short else 20) + 1):
            cutter.cut_after = frames
            text = f"cut after {frames} frames {random.random()}"
            texts.add(text)
            fault.sent += 1
            fault.runs += 1
            status, out, err = fault.valise(ALICE, "send", "--to", BOB, "--relay", f"127.0.0.1:{cutter.port}", text,
                                            check=False, timeout=90)
            outcomes[status] = outcomes.get(status, 0) + 1
            fault.sync_until_sent(ALICE)
    finally:
        cutter.stop()
    fault.valise(BOB, "sync", timeout=90)
    fault.notes.append("valise send exit statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    fault.compare(ALICE, BOB, texts)


def network(fault):
    """valise-load senders and receivers, then the real valise CLI, through the proxy."""
    fault.messaging_world(SENDER, RECEIVER, ALICE, BOB)
    proxy = Proxy(fault.port, random.randrange(1 << 30)).start()
    address = f"127.0.0.1:{proxy.port}"
    try:
        count = 200 if fault.short else 600
        accepted_log, delivered_log = os.path.join(fault.work, "accepted"), os.path.join(fault.work, "delivered")
        load = f"{fault.bin}/valise-load"
        receiver = fault.spawn([load, "receive", "--home", fault.home(RECEIVER), "--log", delivered_log, "--relay", address,
                                "--idle", "200", "--timeout", "200"])
        # valise-load sends a wave again after a lost connection; an answer that was an
        # error (the relay ending a broken session) counts as a refusal, so run it again
        # like a client's next sync would, with the same ids (bounded).
        patience = 30 if fault.short else 60  # seconds per attempt (a request into a black hole waits 30 s)
        for attempt in range(8):
            fault.runs += 1
            fault.run([load, "send", "--home", fault.home(SENDER), "--to", RECEIVER, "--count", str(count), "--run", "net",
                       "--log", accepted_log, "--concurrency", "8", "--relay", address, "--size", "512",
                       "--timeout", str(patience)], timeout=patience + 30, check=False)
            if len(set(logged(accepted_log))) >= count:
                break
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline and not set(logged(accepted_log)) <= set(logged(delivered_log)):
            time.sleep(0.5)
        receiver.kill()
        receiver.wait(timeout=30)
        # Whatever the faulty receiver did not get, a direct one fetches.
        fault.run([load, "receive", "--home", fault.home(RECEIVER), "--log", delivered_log, "--idle", "3", "--timeout", "60"],
                  timeout=90, check=False)
        accepted, delivered = logged(accepted_log), logged(delivered_log)
        fault.sent += count
        fault.check(len(set(accepted)) == count, f"only {len(set(accepted))} of {count} were accepted through the proxy")
        fault.accepted += len(set(accepted))
        fault.delivered += len(set(delivered) & set(accepted))
        fault.lost += len(set(accepted) - set(delivered))
        fault.duplicates += len(delivered) - len(set(delivered))
        # The real client: send and sync through the proxy, each retried (bounded).
        fault.valise(BOB, "sync", timeout=90)
        texts = set()
        messages = 6 if fault.short else 15
        for number in range(messages):
            text = f"net {number} {random.random()}"
            texts.add(text)
            fault.sent += 1
            fault.runs += 1
            fault.valise(ALICE, "send", "--to", BOB, "--relay", address, text, check=False, timeout=90)
            fault.valise(BOB, "sync", "--relay", address, check=False, timeout=90)
        fault.sync_until_sent(ALICE, attempts=10, relay=address)
        for _ in range(5):
            fault.valise(BOB, "sync", "--relay", address, check=False, timeout=90)
        fault.valise(BOB, "sync", timeout=90)  # a last one direct, so that a bad proxy roll cannot decide
        fault.compare(ALICE, BOB, texts)
    finally:
        proxy.stop()
        fault.notes.append("proxy: " + ", ".join(f"{k} {v}" for k, v in proxy.counts.items()))
    fault.check(proxy.counts["dropped"] + proxy.counts["duplicated"] + proxy.counts["cut"] > 0,
                "the proxy injected no drop, duplicate or cut")

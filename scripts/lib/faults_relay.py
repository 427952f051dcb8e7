"""Relay-side faults of scripts/faults: SIGKILL (scripts/crash-test), a damaged or torn
queue.sqlite, and a full disk under the relay's directory."""
import json
import os
import random
import re
import signal
import sqlite3
import struct
import subprocess
import time

from faults_common import ROOT, logged
import faults_disk

ALICE, BOB = "alice@lagos", "bob@quito"
SENDER, RECEIVER = "s1@lagos", "r1@jakarta"


def relay_kill(fault, relays=1, downtime=0):
    """scripts/crash-test, whose last line gives the row."""
    kills = 2 if fault.short else 5
    messages = 120 if fault.short else 240
    env = dict(fault.env, CRASH_MESSAGES=str(messages), CRASH_DOWNTIME=str(downtime))
    result = subprocess.run(["bash", "scripts/crash-test", "--relays", str(relays), str(kills)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    lines = result.stdout.strip().splitlines()
    last = lines[-1] if lines else ""
    match = re.fullmatch(r"crash-test: kills=(\d+) accepted=(\d+) delivered=(\d+) lost=(\d+) duplicates=(\d+)", last)
    if not match:
        fault.problem(f"crash-test printed no summary (exit {result.returncode}): {result.stderr.strip()[-300:]}")
        return
    fault.runs, fault.accepted, fault.delivered, fault.lost, fault.duplicates = map(int, match.groups())
    fault.sent = 4 * messages  # crash-test's four senders
    fault.check(result.returncode == 0, f"crash-test exited {result.returncode}: "
                + " | ".join(l for l in result.stderr.splitlines() if l.startswith("crash-test:"))[-300:])
    fault.notes.append(last)


def federated_relay_kill(fault):
    """scripts/crash-test --relays 2: senders at hq, receivers at geneva, either relay killed
    at random moments of the transfers."""
    relay_kill(fault, relays=2)


def federated_relay_down(fault):
    """scripts/crash-test --relays 2 with each killed relay down for 3 s (2 s in the short
    run) before its restart: the link is down while the senders go on, then up."""
    relay_kill(fault, relays=2, downtime=2 if fault.short else 3)


def _queue_messages(fault, count):
    """An organisation, a relay holding COUNT messages from alice to bob, then stopped."""
    fault.messaging_world(ALICE, BOB, recipient=BOB)
    texts = set()
    for number in range(count):
        text = f"store {number} {random.random()}"
        fault.valise(ALICE, "send", "--to", BOB, text, timeout=90)
        texts.add(text)
        fault.sent += 1
    fault.check(fault.kill_relay(signal.SIGTERM) == 0, "valised did not exit 0 on SIGTERM")
    # Everything into the main file (the relay leaves its WAL for the next start), so that
    # the damage below hits the envelopes and not a copy the WAL would hide.
    store = sqlite3.connect(os.path.join(fault.relay_dir, "queue.sqlite"))
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return texts


def _damaged_start(fault, description):
    """Starts the relay on a damaged store. Returns True if it serves (then bob syncs and
    what bob shows is checked), False if it refused with a message naming the store."""
    fault.runs += 1
    refusal = fault.start_relay(expect_start=False, wait=15)
    if refusal is not None:
        fault.check("queue.sqlite" in refusal or "store is damaged" in refusal,
                    f"{description}: the relay refused to start without saying the store is at fault: {refusal[:200]}")
        fault.notes.append(f"{description}: refused to start ({refusal.split(': ', 1)[-1].replace(fault.work + '/', '')[:110]})")
        return False
    status, out, err = fault.valise(BOB, "sync", "--json", check=False, timeout=90)
    report = json.loads(out) if status == 0 and out.strip().startswith("{") else {}
    fault.notes.append(f"{description}: the relay started; bob's sync exited {status}, "
                       f"received {report.get('received')}, refused {report.get('refused')}")
    fault.kill_relay(signal.SIGKILL)
    return True


def corrupt_header(fault):
    """A queue.sqlite whose first bytes are garbage, one cut to zero bytes and one cut in the
    middle of a page: the relay refuses with a clear message or serves nothing wrong, leaves
    the file as it was, and once the good file is back, serves every message once."""
    texts = _queue_messages(fault, 3 if fault.short else 6)
    store = os.path.join(fault.relay_dir, "queue.sqlite")
    good = open(store, "rb").read()
    damages = [("garbage header", lambda b: bytes(random.randrange(256) for _ in range(100)) + b[100:]),
               ("empty file", lambda b: b""),
               ("cut mid-page", lambda b: b[:len(b) // 2 + 1000])]
    for description, damage in damages:
        damaged = damage(good)
        open(store, "wb").write(damaged)
        served = _damaged_start(fault, description)
        if not served:
            fault.check(open(store, "rb").read() == damaged, f"{description}: the refused store was changed")
        for member_text in fault.texts(BOB, fault.inbox(BOB)).values():
            fault.check(member_text in texts, f"{description}: bob shows a text never sent: {member_text!r}")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(store + suffix):
                os.unlink(store + suffix)
    open(store, "wb").write(good)
    fault.start_relay()
    fault.valise(BOB, "sync", timeout=90)
    fault.compare(ALICE, BOB, texts)


def corrupt_pages(fault):
    """Random bytes over queue.sqlite's pages (not its header): the relay refuses, or
    whatever bob is shown is exactly what alice sent (a damaged envelope fails its
    authentication and is never shown). Losses here are the damage itself, not counted."""
    runs = 2 if fault.short else 4
    texts = _queue_messages(fault, 6)
    store = os.path.join(fault.relay_dir, "queue.sqlite")
    good = open(store, "rb").read()
    page = struct.unpack(">H", good[16:18])[0] or 65536
    shown_total = 0
    for run in range(runs):
        damaged = bytearray(good)
        for _ in range(max(8, len(damaged) // 2048)):  # a byte in every 2 KiB on average
            offset = random.randrange(page, len(damaged))
            damaged[offset] = random.randrange(256)
        open(store, "wb").write(bytes(damaged))
        _damaged_start(fault, f"pages damaged {run + 1}")
        shown = fault.texts(BOB, fault.inbox(BOB))
        wrong = [t for t in shown.values() if t not in texts]
        fault.check(not wrong, f"bob shows {len(wrong)} texts never sent after page damage: {wrong[:2]}")
        values = list(shown.values())
        fault.duplicates += len(values) - len(set(values))
        shown_total = len(shown)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(store + suffix):
                os.unlink(store + suffix)
        open(store, "wb").write(good)  # the next run damages the good file again
    fault.delivered = shown_total
    fault.accepted = len(texts)
    fault.lost = "n/a"
    fault.notes.append(f"bob shows {shown_total} of {len(texts)} after {runs} damaged starts (only texts alice sent)")


def _wal_tear(path):
    """Leaves a torn frame after the last committed frame of the WAL, as a crash in the
    middle of writing an uncommitted transaction would: truncates inside the frame that
    follows the last commit, or appends half a frame. Returns a description."""
    data = open(path, "rb").read()
    if len(data) < 32:
        return "no WAL to tear"
    page = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    frame = 24 + page
    end, offset = 32, 32
    while offset + frame <= len(data) and data[offset + 8:offset + 16] == salts:
        if struct.unpack(">I", data[offset + 4:offset + 8])[0] != 0:
            end = offset + frame
        offset += frame
    if len(data) > end:
        cut = end + random.randrange(1, min(frame, len(data) - end))
        with open(path, "r+b") as file:
            file.truncate(cut)
        return f"truncated mid-frame at {cut} of {len(data)} bytes (last commit ends at {end})"
    torn = struct.pack(">II", 1, 1) + salts + os.urandom(8) + os.urandom(page // 2)
    with open(path, "ab") as file:
        file.write(torn)
    return f"half a frame appended after the last commit at {end}"


def torn_wal(fault):
    """The relay killed (SIGKILL) under load, its WAL torn after the last commit, restarted:
    every id the sender saw Accepted reaches the recipient once."""
    runs = 2 if fault.short else 4
    count = 300 if fault.short else 600
    fault.messaging_world(SENDER, RECEIVER)
    accepted_log, delivered_log = os.path.join(fault.work, "accepted"), os.path.join(fault.work, "delivered")
    load = f"{fault.bin}/valise-load"
    sender = fault.spawn([load, "send", "--home", fault.home(SENDER), "--to", RECEIVER, "--count", str(count),
                          "--run", "torn", "--log", accepted_log, "--concurrency", "8", "--rate", "100",
                          "--precedence", "mixed", "--size", "512", "--timeout", "300"])
    receiver = fault.spawn([load, "receive", "--home", fault.home(RECEIVER), "--log", delivered_log, "--idle", "300",
                            "--timeout", "300"])
    wal = os.path.join(fault.relay_dir, "queue.sqlite-wal")
    for run in range(runs):
        time.sleep(random.uniform(0.5, 1.5))
        fault.kill_relay(signal.SIGKILL)
        fault.notes.append(_wal_tear(wal))
        fault.runs += 1
        fault.start_relay()
    try:
        sender.wait(timeout=300)
    except subprocess.TimeoutExpired:
        fault.problem("the sender did not finish within 300 s")
    time.sleep(1)
    receiver.kill()
    receiver.wait(timeout=30)
    drain = fault.spawn([load, "receive", "--home", fault.home(RECEIVER), "--log", delivered_log, "--idle", "3",
                         "--timeout", "120"])
    drain.wait(timeout=150)
    fault.kill_relay(signal.SIGTERM)
    fault.tally_logs(count, accepted_log, delivered_log)
    integrity = sqlite3.connect(f"file:{fault.relay_dir}/queue.sqlite?mode=ro", uri=True).execute(
        "PRAGMA integrity_check").fetchone()[0]
    fault.check(integrity == "ok", f"the store failed SQLite's integrity check: {integrity}")


def _load_send(fault, accepted_log, count, timeout):
    status, out, err = fault.run([f"{fault.bin}/valise-load", "send", "--home", fault.home(SENDER), "--to", RECEIVER,
                                  "--count", str(count), "--run", "full", "--log", accepted_log, "--concurrency", "8",
                                  "--size", "4096", "--timeout", str(timeout)], timeout=timeout + 30, check=False)
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"refusals": {}, "error": err[-200:]}


def disk_full(fault):
    """The relay's directory on a tmpfs that fills up: STORAGE_FULL refusals, deliveries
    and acks go on, and once space returns everything is accepted and delivered once."""
    fault.organisation(SENDER, RECEIVER)
    count = 300 if fault.short else 600
    accepted_log, delivered_log = os.path.join(fault.work, "accepted"), os.path.join(fault.work, "delivered")
    load = f"{fault.bin}/valise-load"
    with faults_disk.Tmpfs(fault.relay_dir, "40m") as disk:
        if disk.skipped:
            fault.skipped = disk.skipped
            return
        fault.start_relay()
        fault.publish()
        _load_send(fault, accepted_log, count // 3, 60)
        fault.runs += 1
        filled = disk.fill()
        during = _load_send(fault, accepted_log, count, 30)
        refusals = during.get("refusals", {})
        fault.check(refusals, f"no refusal on a full disk ({filled} bytes of filler): {during}")
        fault.notes.append(f"full disk ({filled // 1024} KiB filler): refusals {json.dumps(refusals)}")
        # Deliveries and acks while full.
        fault.run([load, "receive", "--home", fault.home(RECEIVER), "--log", delivered_log, "--idle", "3",
                   "--timeout", "60"], timeout=90, check=False)
        while_full = len(set(logged(delivered_log)))
        fault.check(while_full >= len(set(logged(accepted_log))) - 0,
                    f"only {while_full} of {len(set(logged(accepted_log)))} accepted were delivered while the disk was full")
        disk.free()
        for _ in range(10):
            _load_send(fault, accepted_log, count, 60)
            if len(set(logged(accepted_log))) >= count:
                break
            time.sleep(1)
        fault.run([load, "receive", "--home", fault.home(RECEIVER), "--log", delivered_log, "--idle", "3",
                   "--timeout", "120"], timeout=150, check=False)
        fault.check(fault.kill_relay(signal.SIGTERM) == 0, "valised did not exit 0 on SIGTERM")
    fault.tally_logs(count, accepted_log, delivered_log)

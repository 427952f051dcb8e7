"""Client-side faults of scripts/faults: SIGKILL of valise send and valise sync, a full disk
under a client's home, and a client clock hours away from the relay's."""
import random
import subprocess
import time
from datetime import datetime

import faults_disk

ALICE, BOB = "alice@lagos", "bob@quito"


def _send(fault, text, *extra, check=True):
    return fault.valise(ALICE, "send", "--to", BOB, *extra, text, check=check, timeout=90)


def _timed(fault, args):
    started = time.monotonic()
    fault.run(args, timeout=90)
    return time.monotonic() - started


def kill_send(fault):
    """valise send killed at a random moment of its run, many times; then one sync."""
    fault.messaging_world(ALICE, BOB, recipient=BOB)
    runs = 6 if fault.short else 20
    texts = set()
    # How long an unkilled send takes here, so that kills land across the whole of it.
    first = f"send-kill baseline {random.random()}"
    duration = _timed(fault, [f"{fault.bin}/valise", "send", "--to", BOB, first, "--home", fault.home(ALICE)])
    texts.add(first)
    fault.sent += 1
    killed_midway = 0
    for run in range(runs):
        text = f"send-kill {run} {random.random()}"
        texts.add(text)
        killed_midway += fault.kill_at_random([f"{fault.bin}/valise", "send", "--to", BOB, text, "--home", fault.home(ALICE)],
                                              duration)
        fault.runs += 1
        fault.sent += 1
    fault.notes.append(f"{killed_midway} of {runs} sends killed before they finished (a send takes {duration:.2f} s)")
    fault.sync_until_sent(ALICE)
    fault.valise(BOB, "sync", timeout=90)
    fault.compare(ALICE, BOB, texts)
    fault.check(killed_midway > 0, "no send was killed before it finished: the fault was not exercised")


def kill_sync(fault):
    """valise sync of the recipient killed at random moments while messages arrive."""
    fault.messaging_world(ALICE, BOB, recipient=BOB)
    runs = 6 if fault.short else 20
    texts = set()
    per_run = 2 if fault.short else 3
    duration = None
    killed_midway = 0
    for run in range(runs):
        for number in range(per_run):
            text = f"sync-kill {run}/{number} {random.random()}"
            _send(fault, text)
            texts.add(text)
            fault.sent += 1
        if duration is None:  # the first sync runs to the end and gives the time to aim at
            duration = _timed(fault, [f"{fault.bin}/valise", "sync", "--home", fault.home(BOB)])
            continue
        killed_midway += fault.kill_at_random([f"{fault.bin}/valise", "sync", "--home", fault.home(BOB)], duration)
        fault.runs += 1
    fault.notes.append(f"{killed_midway} of {fault.runs} syncs killed before they finished (a sync takes {duration:.2f} s)")
    fault.valise(BOB, "sync", timeout=90)
    fault.valise(BOB, "sync", timeout=90)
    fault.compare(ALICE, BOB, texts)
    fault.check(killed_midway > 0, "no sync was killed before it finished: the fault was not exercised")


def disk_full(fault):
    """The recipient's and then the sender's home on a full tmpfs: clear errors, nothing
    acknowledged that was not stored, everything through once the space is back."""
    fault.messaging_world(ALICE, BOB, recipient=BOB)
    texts = set()
    for member in (BOB, ALICE):
        with faults_disk.Tmpfs(fault.home(member), "32m") as disk:
            if disk.skipped:
                fault.skipped = disk.skipped
                return
            fault.runs += 1
            before = [f"disk-full {member} before {n} {random.random()}" for n in range(3)]
            for text in before:
                _send(fault, text)
                texts.add(text)
                fault.sent += 1
            fault.valise(BOB, "sync", timeout=90)
            filled = disk.fill()
            during = [f"disk-full {member} during {n} {random.random()}" for n in range(3)]
            outcomes = []
            for text in during:
                status, out, err = _send(fault, text, check=False)
                outcomes.append((status, err.strip()))
                texts.add(text)
                fault.sent += 1
            status, out, err = fault.valise(BOB, "sync", check=False, timeout=90)
            outcomes.append((status, err.strip()))
            failures = [(s, e) for s, e in outcomes if s != 0]
            if member == BOB:
                fault.check(status != 0, f"bob's sync succeeded on a full disk ({filled} bytes of filler)")
            else:
                fault.check(failures, f"alice's sends all succeeded on a full disk ({filled} bytes of filler)")
            for s, e in failures:
                last = e.splitlines()[-1] if e else ""
                fault.check(s > 0 and last.startswith("valise: error:"),
                            f"on a full disk a command exited {s} without a one-line error: {e[-200:]!r}")
            if failures:
                fault.notes.append(f"{member} full: " + (failures[0][1].splitlines() or [""])[-1].replace(fault.work + "/", "")[:110])
            disk.free()
            fault.sync_until_sent(ALICE)
            fault.valise(BOB, "sync", timeout=90)
    fault.valise(BOB, "sync", timeout=90)
    fault.compare(ALICE, BOB, texts)


def _utc(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def clock_skew(fault):
    """Clients hours ahead and behind the relay: messages go through, sent_at is the
    sender's clock (docs/CLI.md), the TTL runs on the relay's clock (DESIGN.md): a 1 h
    message expires when the relay's clock passes it, whatever the client's says."""
    if subprocess.run(["which", "faketime"], capture_output=True).returncode != 0:
        fault.skipped = "faketime is not installed"
        return
    fault.messaging_world(ALICE, BOB, recipient=BOB)
    texts = set()
    # (sender's clock, recipient's clock) against the relay's; 4 minutes behind is inside
    # the 300 s that directory entries may be ahead of a verifier's clock (PROTOCOL.md).
    for alice_skew, bob_skew in (("+5h", "-4m"), ("-4m", "+5h"), ("+30m", "+30m")):
        fault.runs += 1
        text = f"skew {alice_skew}/{bob_skew} {random.random()}"
        fault.valise(ALICE, "send", "--to", BOB, text, prefix=("faketime", "-f", alice_skew), timeout=90)
        texts.add(text)
        fault.sent += 1
        fault.valise(BOB, "sync", timeout=90, prefix=("faketime", "-f", bob_skew))
        shown = [m for m in fault.inbox(BOB) if fault.texts(BOB, [m])[m["id"]] == text]
        if fault.check(len(shown) == 1, f"the message sent at {alice_skew} was shown {len(shown)} times"):
            offset = (_utc(shown[0]["sent_at"]) - time.time()) / 60
            expected = int(alice_skew[1:-1]) * (60 if alice_skew.endswith("h") else 1) * (1 if alice_skew[0] == "+" else -1)
            fault.check(abs(offset - expected) < 3, f"sent_at is {offset:+.1f} min from now, the sender's clock said {alice_skew}")
    # A sender 5 h behind sees the directory's entries dated in its future: refused as
    # [future] (exit 5), nothing sent.
    fault.runs += 1
    text = f"skew -5h {random.random()}"
    status, out, err = fault.valise(ALICE, "send", "--to", BOB, text, prefix=("faketime", "-f", "-5h"), timeout=90,
                                    check=False)
    fault.sent += 1
    fault.check(status == 5 and "[future]" in err, f"a sender 5 h behind was not refused as [future] (exit {status}): {err[-200:]!r}")
    fault.notes.append("sender 5 h behind: " + (err.strip().splitlines() or [""])[-1].split(": entry 0")[-1][:100])
    # Expiry on the relay's clock: a 1 h message, then the relay's clock 2 h on.
    fault.runs += 1
    text = f"skew expiry {random.random()}"
    fault.valise(ALICE, "send", "--to", BOB, "--expires", "1h", text, timeout=90)
    fault.sent += 1
    fault.kill_relay()
    fault.start_relay(prefix=("faketime", "-f", "+2h"))
    time.sleep(2)  # the expiry sweep runs a second after the start
    fault.valise(BOB, "sync", timeout=90, prefix=("faketime", "-f", "+2h"))
    late = [m for m in fault.inbox(BOB) if fault.texts(BOB, [m])[m["id"]] == text]
    fault.check(not late, "a 1 h message was shown after the relay's clock passed its expiry")
    state = None
    for _ in range(3):
        fault.valise(ALICE, "sync", timeout=90)
        states = [m for m in fault.sent_states(ALICE) if m["state"] not in ("accepted", "delivered", "waiting")]
        state = [m["state"] for m in fault.sent_states(ALICE)]
        if states:
            break
        time.sleep(1)
    fault.check("expired-undelivered" in (state or []),
                f"the sender does not see the expired message as expired-undelivered: {state}")
    fault.notes.append("expired 1 h message: " + ", ".join(sorted(set(state or []))))
    # The two skewed messages are the contract's part; the expired one is not "accepted"
    # any more (compare counts accepted and delivered states only) and must not be shown.
    fault.compare(ALICE, BOB, texts)

"""Attachment faults of scripts/faults: the client and the relay SIGKILLed during an upload
(valise send --attach), during a download (valise sync) and during a save (valise save).
Nothing accepted is lost, nothing is shown twice, every attachment saves with the bytes
that were sent, and no partial file is ever visible under a final name in the folder saved to."""
import hashlib
import os
import random
import time

ALICE, BOB = "alice@lagos", "bob@quito"
MIB = 1 << 20


def _file(fault, name, mib):
    path = os.path.join(fault.work, name)
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(MIB))
    return path, _hash(path)


def _hash(path):
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def _timed(fault, args):
    started = time.monotonic()
    fault.run(args, timeout=300)
    return time.monotonic() - started


def _relay_killed_during(fault, args, duration):
    """Runs ARGS, SIGKILLs the relay at a random moment of about DURATION seconds, starts it
    again at once; the command may fail (the message waits in the outbox, or the envelope
    stays unacknowledged). Returns whether ARGS was still running when the relay died."""
    process = fault.spawn(args)
    time.sleep(random.uniform(0, duration * 1.1))
    running = process.poll() is None
    fault.kill_relay()
    fault.start_relay()
    try:
        process.wait(timeout=300)
    except Exception:
        process.kill()
        process.wait(timeout=30)
    return running


def _visible_problems(folder, expected):
    """Files in FOLDER under a final (not hidden) name that are not one of the files sent."""
    problems = []
    for name in os.listdir(folder):
        if name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if _hash(path) not in expected:
            problems.append(f"{name} ({os.path.getsize(path)} bytes) is not a file that was sent")
    return problems


def kill_transfers(fault):
    fault.messaging_world(ALICE, BOB, recipient=BOB)
    runs = 4 if fault.short else 12
    mib = 6 if fault.short else 24
    texts, hashes = set(), {}
    valise = f"{fault.bin}/valise"

    # Uploads: a first one runs to the end and gives the time to aim at.
    path, digest = _file(fault, "annex-0.bin", mib)
    first = f"attach baseline {random.random()}"
    duration = _timed(fault, [valise, "send", "--to", BOB, "--attach", path, first, "--home", fault.home(ALICE)])
    texts.add(first)
    hashes[first] = digest
    fault.sent += 1
    killed = {"client upload": 0, "relay upload": 0, "client download": 0, "relay download": 0, "client save": 0}
    for run in range(runs):
        path, digest = _file(fault, f"annex-{run + 1}.bin", mib)
        text = f"attach-kill {run} {random.random()}"
        texts.add(text)
        hashes[text] = digest
        fault.sent += 1
        args = [valise, "send", "--to", BOB, "--attach", path, text, "--home", fault.home(ALICE)]
        if run % 2 == 0:
            killed["client upload"] += fault.kill_at_random(args, duration)
        else:
            killed["relay upload"] += _relay_killed_during(fault, args, duration)
        fault.runs += 1
    fault.sync_until_sent(ALICE, attempts=8)

    # Downloads: bob's sync killed, or the relay killed under it.
    sync = [valise, "sync", "--home", fault.home(BOB)]
    for run in range(runs):
        if run % 2 == 0:
            killed["client download"] += fault.kill_at_random(sync, duration)
        else:
            killed["relay download"] += _relay_killed_during(fault, sync, duration)
        fault.runs += 1
    for _ in range(3):
        fault.valise(BOB, "sync", timeout=300)

    accepted, ids, shown = fault.compare(ALICE, BOB, texts)

    # Saves: killed at random, then done again; the folder never shows a partial file.
    expected = set(hashes.values())
    folder = os.path.join(fault.work, "saved")
    os.makedirs(folder)
    for number, (id, text) in enumerate(sorted(shown.items())):
        args = [valise, "save", id, "--out", folder, "--home", fault.home(BOB)]
        if number % 2 == 0:
            killed["client save"] += fault.kill_at_random(args, max(duration / 2, 0.2))
            for problem in _visible_problems(folder, expected):
                fault.problem(f"after a killed save: {problem}")
        status, out, err = fault.valise(BOB, "save", id, "--out", folder, check=False, timeout=300)
        fault.check(status == 0 or "exists" in err, f"save of {text!r} failed (exit {status}): {err.strip()[-200:]}")
        fault.runs += 1
    saved = {_hash(os.path.join(folder, name)) for name in os.listdir(folder) if not name.startswith(".")}
    missing = [text for text, digest in hashes.items() if text in shown.values() and digest not in saved]
    fault.check(not missing, f"{len(missing)} attachments shown but not saved with the bytes sent: {missing[:2]}")
    for problem in _visible_problems(folder, expected):
        fault.problem(problem)
    fault.notes.append("killed mid-transfer: " + ", ".join(f"{what} {count}" for what, count in killed.items())
                       + f" (a send takes {duration:.2f} s, {mib} MiB files)")
    fault.check(killed["client upload"] + killed["relay upload"] > 0, "no upload was interrupted: the fault was not exercised")
    fault.check(killed["client download"] + killed["relay download"] > 0, "no download was interrupted: the fault was not exercised")

"""The attachment benchmark, run by `scripts/bench attachment`: a file of --size MiB (256 by
default) sent with `valise send --attach` (encrypted once into the spool, uploaded to the
relay in chunks) and received with `valise sync` (downloaded, verified, kept encrypted) and
`valise save` (decrypted to a file), against scp of the same file to and from localhost
(OpenSSH from Debian's packages, an sshd of the bench's own on a free loopback port), in
the same run, alternating for --rounds rounds. Then one send and save of a --memory-size MiB
file (1024 by default) with the sender's agent running, for the resident memory of client,
agent and relay over their idle size. Prints one JSON line for performance_doc.py.

    bench_attach.py WORK BIN PORT SENDER RECIPIENT [--size MiB] [--rounds N] [--memory-size MiB]

WORK holds an organisation with one relay (WORK/relay) and the two members' homes, as
scripts/lib/organisation.sh makes them; keystores open with $VALISE_PASSPHRASE. The relay
runs with the blob limits raised (below: stated in PERFORMANCE.md).
"""
import argparse, hashlib, json, os, shutil, signal, statistics, subprocess, sys, time

from bench_settings import start_valised

parser = argparse.ArgumentParser()
parser.add_argument("work")
parser.add_argument("bin")
parser.add_argument("port", type=int)
parser.add_argument("sender")
parser.add_argument("recipient")
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--memory-size", type=int, default=1024)
args = parser.parse_args()
MIB = 1 << 20

# The blob limits raised for the bench (the defaults: 100 MiB a blob, 1 GiB a device, 8 GiB
# in all): the memory run sends 1 GiB.
BLOB_ENV = {
    "VALISED_QUEUE_MAX_BLOB_BYTES": str(1100 * MIB),
    "VALISED_QUEUE_MAX_BLOB_BYTES_PER_DEVICE": str(8 << 30),
    "VALISED_QUEUE_MAX_BLOB_STORE_BYTES": str(16 << 30),
}


def log(message):
    print(f"bench attachment: {message}", file=sys.stderr, flush=True)


def home(member):
    return os.path.join(args.work, member)


def valise(member, *arguments, timeout=1800):
    """Runs valise for `member`; returns (seconds, its own peak RSS in KiB, stdout)."""
    import threading
    started = time.monotonic()
    process = subprocess.Popen([os.path.join(args.bin, "valise"), *arguments, "--home", home(member)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = {}
    readers = [threading.Thread(target=lambda name=name: output.__setitem__(name, getattr(process, name).read()))
               for name in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    # wait4, not wait: the rusage of this one process (ru_maxrss, KiB on Linux).
    _, status, usage = os.wait4(process.pid, 0)
    timer.cancel()
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        err = output.get("stderr", b"").decode(errors="replace")
        raise SystemExit(f"bench attachment: valise {' '.join(arguments[:1])} failed ({process.returncode}): {err.strip()[-400:]}")
    return seconds, usage.ru_maxrss, output.get("stdout", b"").decode()


def status_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def make_file(path, mib):
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(MIB))
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(4 * MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hash(path):
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(4 * MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def start_relay():
    return start_valised(
        [os.path.join(args.bin, "valised"), "run", "--dir", os.path.join(args.work, "relay"), "--listen", f"127.0.0.1:{args.port}"],
        os.path.join(args.work, "relay.out"), os.path.join(args.work, "relay.log"), env=dict(os.environ, **BLOB_ENV),
        what="bench attachment")


def newest_message_id(member):
    _, _, out = valise(member, "inbox", "--json")
    messages = json.loads(out)["messages"]
    return messages[-1]["id"][:8]  # oldest first: the newest is last


def send_and_receive(path, expected_hash, label):
    """One valise round: send with the file, sync, save; returns the three durations."""
    up, _, _ = valise(args.sender, "send", "--to", args.recipient, "--attach", path, f"{label}: the annex")
    down, _, _ = valise(args.recipient, "sync")
    target = os.path.join(args.work, f"saved-{label}")
    os.makedirs(target)
    save, _, _ = valise(args.recipient, "save", newest_message_id(args.recipient), "--out", target)
    saved = [os.path.join(target, name) for name in os.listdir(target)]
    if len(saved) != 1 or file_hash(saved[0]) != expected_hash:
        raise SystemExit(f"bench attachment: the saved file of {label} is not the file sent")
    shutil.rmtree(target)
    return up, down, save


# --- scp: an sshd of our own, key authentication, on 127.0.0.1 only -------------------------

def ensure_openssh():
    if shutil.which("scp") and os.path.exists("/usr/sbin/sshd"):
        return
    log("installing openssh-server and openssh-client (Debian's packages)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "openssh-server", "openssh-client"],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    # The package may start the system's sshd on port 22: the bench wants only its own.
    subprocess.run(["systemctl", "stop", "ssh"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sshd(directory):
    os.makedirs(directory, mode=0o700)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(directory, name)], check=True)
    shutil.copy(os.path.join(directory, "client.pub"), os.path.join(directory, "authorized_keys"))
    port = free_port()
    config = os.path.join(directory, "sshd_config")
    with open(config, "w") as out:
        out.write(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {directory}/host
AuthorizedKeysFile {directory}/authorized_keys
PidFile {directory}/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
""")
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=open(os.path.join(directory, "sshd.log"), "w"))
    deadline = time.monotonic() + 20
    import socket
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    raise SystemExit("bench attachment: sshd did not start: " + open(os.path.join(directory, "sshd.log")).read()[-400:])


def scp(directory, port, source, destination):
    started = time.monotonic()
    subprocess.run(["scp", "-q", "-P", str(port), "-i", os.path.join(directory, "client"), "-o", "BatchMode=yes",
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                    source, destination], check=True, timeout=1800)
    return time.monotonic() - started


def main():
    ensure_openssh()
    relay = start_relay()
    sshd = None
    try:
        valise(args.sender, "sync")
        valise(args.recipient, "sync")
        path = os.path.join(args.work, "annex.bin")
        expected = make_file(path, args.size)
        ssh_dir = os.path.join(args.work, "ssh")
        sshd, ssh_port = start_sshd(ssh_dir)
        remote = f"root@127.0.0.1:{ssh_dir}/uploaded.bin"
        rounds = []
        for number in range(args.rounds):
            log(f"round {number + 1} of {args.rounds}: valise, then scp ({args.size} MiB)")
            up, down, save = send_and_receive(path, expected, f"round{number}")
            scp_up = scp(ssh_dir, ssh_port, path, remote)
            scp_down = scp(ssh_dir, ssh_port, remote, os.path.join(args.work, "downloaded.bin"))
            if file_hash(os.path.join(args.work, "downloaded.bin")) != expected:
                raise SystemExit("bench attachment: scp's copy differs")
            os.unlink(os.path.join(args.work, "downloaded.bin"))
            rounds.append({"upload": up, "download": down, "save": save, "scpUpload": scp_up, "scpDownload": scp_down})
        os.unlink(path)

        log(f"memory: one send and save of {args.memory_size} MiB, the sender's agent running")
        agent_out = subprocess.run([os.path.join(args.bin, "valise"), "agent", "--home", home(args.sender), "--idle-timeout", "30m"],
                                   capture_output=True, text=True, check=True).stdout + ""
        agent_pid = int(agent_out.split("(pid ")[1].split(")")[0])
        try:
            big = os.path.join(args.work, "big.bin")
            big_hash = make_file(big, args.memory_size)
            relay_idle = status_kib(relay.pid, "VmRSS")
            agent_idle = status_kib(agent_pid, "VmRSS")
            # A client's idle size: a command that opens the keystore and nothing more.
            _, client_idle, _ = valise(args.sender, "whoami")
            send_seconds, send_peak, _ = valise(args.sender, "send", "--to", args.recipient, "--attach", big, "memory: the annex")
            _, sync_peak, _ = valise(args.recipient, "sync")
            target = os.path.join(args.work, "saved-memory")
            os.makedirs(target)
            _, save_peak, _ = valise(args.recipient, "save", newest_message_id(args.recipient), "--out", target)
            saved = [os.path.join(target, name) for name in os.listdir(target)]
            if len(saved) != 1 or file_hash(saved[0]) != big_hash:
                raise SystemExit("bench attachment: the saved 1 GiB file is not the file sent")
            client_peak = max(send_peak, sync_peak, save_peak)
            agent_peak = status_kib(agent_pid, "VmHWM")
            relay_peak = status_kib(relay.pid, "VmHWM")
        finally:
            os.kill(agent_pid, signal.SIGTERM)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=60)
        if sshd is not None:
            sshd.terminate()
            sshd.wait(timeout=30)

    median = lambda key: statistics.median(r[key] for r in rounds)
    size = args.size * MIB
    result = {
        "case": "attachment", "sizeMiB": args.size, "rounds": rounds, "memorySizeMiB": args.memory_size,
        "uploadMiBps": size / MIB / median("upload"), "downloadMiBps": size / MIB / median("download"),
        "saveMiBps": size / MIB / median("save"),
        "scpUploadMiBps": size / MIB / median("scpUpload"), "scpDownloadMiBps": size / MIB / median("scpDownload"),
        "uploadRatio": statistics.median(r["scpUpload"] / r["upload"] for r in rounds),
        "downloadRatio": statistics.median(r["scpDownload"] / r["download"] for r in rounds),
        "clientIdleMiB": client_idle / 1024, "clientPeakMiB": client_peak / 1024,
        "clientPeaksMiB": {"send": send_peak / 1024, "sync": sync_peak / 1024, "save": save_peak / 1024},
        "agentIdleMiB": agent_idle / 1024, "agentPeakMiB": agent_peak / 1024,
        "relayIdleMiB": relay_idle / 1024, "relayPeakMiB": relay_peak / 1024,
        "memorySendSeconds": send_seconds,
        "blobLimits": BLOB_ENV,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

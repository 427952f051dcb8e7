"""Writes benchmark results (one JSON object per line) into docs/PERFORMANCE.md: each case
owns a section between markers, so running one case leaves the others as they were."""
import datetime, json, os, platform, re, subprocess, sys

doc_path, results_path = sys.argv[1], sys.argv[2]


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()
    sodium = subprocess.run(["pkg-config", "--modversion", "libsodium"], capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
            f"{swift[0] if swift else 'swift ?'}; libsodium {sodium or '?'}")


def section_directory(r):
    ms = lambda s: f"{s * 1000:.0f} ms"
    per_entry = r["medianSeconds"] / r["entries"] * 1e6
    return f"""## Directory verification

Decoding a directory log file and verifying every entry from the pinned genesis, as a
device does when it pins or reloads its organisation bundle: a 1-of-1 organisation, a
genesis and {r['entries'] - 1:,} enrollments. Each enrollment carries two Ed25519
signatures (the admin's, and the member's own request signature, which the verifier also
checks), so the log holds {r['signaturesPerEntry'] * r['entries']:,.0f} signatures;
{r['fileBytes'] / 1e6:.1f} MB. Median of {len(r['runs'])} runs.

| measurement | time | per entry |
|---|---|---|
| decode + verify, whole log (signatures checked on every core) | **{ms(r['medianSeconds'])}** | {per_entry:.0f} µs |
| of which decoding | {ms(r['decodeMedianSeconds'])} | {r['decodeMedianSeconds'] / r['entries'] * 1e6:.1f} µs |
| decode + verify entry by entry (one core, as when entries arrive one at a time) | {ms(r['sequentialMedianSeconds'])} | {r['sequentialMedianSeconds'] / r['entries'] * 1e6:.0f} µs |
| bare libsodium, one core: the same number of `crypto_sign_verify_detached` and `crypto_generichash` calls | {ms(r['rawLibsodiumMedianSeconds'])} | {r['rawLibsodiumMedianSeconds'] / r['entries'] * 1e6:.0f} µs |

Ratios to bare libsodium in the same run: whole log **{r['medianSeconds'] / r['rawLibsodiumMedianSeconds']:.2f}×**
(below 1 because the signature checks run on every core), entry by entry
**{r['sequentialMedianSeconds'] / r['rawLibsodiumMedianSeconds']:.2f}×** (what Valise adds on one core:
decoding, hashing, the rules and the state). Target: under one second for 10,000 entries.

Runs (s): {', '.join(f'{x:.3f}' for x in r['runs'])}; bare libsodium: {', '.join(f'{x:.3f}' for x in r['rawRuns'])}.
"""


def section_queue(r):
    one, many, raw = r["valiseOne"], r["valiseMany"], r["rawSQLite"]
    redis_one, redis_many, start = r.get("redisOne"), r.get("redisMany"), r["startup"]
    rate = lambda x: f"{x:,.0f}/s"
    fsyncs = lambda x: "–" if x is None else f"{x:.3f}"

    def row(name, result, bold=False):
        if not result:
            return f"| {name} | not measured (not installed) | | | |\n"
        b = "**" if bold else ""
        return (f"| {name} | {b}{rate(result['perSecond'])}{b} | {result['p50ms']:.2f} ms | {result['p99ms']:.2f} ms "
                f"| {fsyncs(result.get('fsyncsPerMessage'))} |\n")

    def ratio(a, b):
        return "–" if not a or not b else f"{a['perSecond'] / b['perSecond']:.2f}×"

    return f"""## Durable send → Accepted

A sender's `Send` of a {r['size']}-byte envelope until its `Accepted`, which the relay
sends only after the envelope is committed (SQLite WAL, `synchronous=FULL`), through a
real `valised` (release build) over loopback: Noise transport, protobuf, the group-commit
writer. "1 sender" is one connection with one request at a time; "64 senders" are 64
connections, each with one request at a time (`valise-load send --connections 64`).
fsyncs per message: the relay's `fsync`/`fdatasync` calls counted by `strace -c`, divided
by the envelopes accepted; the writer's own count of commits agrees
({one['commitsPerMessage']:.3f} and {many['commitsPerMessage']:.3f} commits per message).

| | throughput | p50 | p99 | fsyncs per message |
|---|---|---|---|---|
{row(f"Valise, 1 sender ({one['accepted']:,} envelopes)", one, True)}{row(f"Valise, 64 senders ({many['accepted']:,} envelopes)", many, True)}{row("raw SQLite, one insert per transaction (1 writer, in process)", raw)}{row("Redis, LPUSH, appendfsync always, 1 client", redis_one)}{row("Redis, LPUSH, appendfsync always, 64 clients", redis_many)}
Ratios in the same run: Valise with 1 sender to raw SQLite **{ratio(one, raw)}**; with 64
senders to 1 sender **{ratio(many, one)}** (group commit: one fsync serves a batch); to
Redis with the same number of clients **{ratio(one, redis_one)}** (1) and
**{ratio(many, redis_many)}** (64). The disk's floor, one 512-byte write and `fdatasync`
at a time: {rate(r['fsyncFloorPerSecond'])}.

Read these with the machine in mind. On this virtual machine an `fdatasync` costs about
{1e6 / r['fsyncFloorPerSecond']:,.0f} µs (the host absorbs the flush); a disk that honours
flushes takes milliseconds, and then one sender is bounded by the disk while 64 share each
fsync, so group commit counts for far more than here. The relay, the load generator and
its 64 Noise sessions share two cores, so with 64 senders the figures measure CPU, not
the disk. Making the relay faster is the performance issue's work; this one's is that
`Accepted` never comes before the fsync (the fsyncs per message show it).

## Startup with a full queue

`valised run` from exec until it listens, with {start['envelopes']:,} envelopes of 256
bytes queued ({start['fileBytes'] / 1e6:,.0f} MB of store; the relay reported
{start['held'] if start['held'] is not None else '?'} held): **{start['medianSeconds']:.2f} s**
(median of {len(start['runs'])}: {', '.join(f'{x:.2f}' for x in start['runs'])} s). Target: under 2 s.
Filling the store through `SQLiteEnvelopeStore` in transactions of 10,000 took
{start['fillSeconds']:.0f} s.
"""


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_report import section_attachment, section_connections, section_crypto, section_federated, section_handshake, section_metrics, section_postgres, section_relay, section_session_start, target_lines  # noqa: E402

renderers = {"directory-verify": section_directory, "queue": section_queue, "relay": section_relay,
             "crypto": section_crypto, "session-start": section_session_start, "handshake": section_handshake,
             "connections": section_connections, "federated": section_federated,
             "metrics": section_metrics, "postgres": section_postgres, "attachment": section_attachment}
results = [json.loads(line) for line in open(results_path) if line.strip().startswith("{")]
doc = open(doc_path).read() if os.path.exists(doc_path) else ""
if not doc.startswith("# Performance"):
    doc = """# Performance

Figures written by `scripts/bench` (release build, on this project's reference machine).
The disk and the CPU of a shared machine vary from minute to minute, so only ratios
measured in the same run mean much; each section says what it compares against.

"""
today = datetime.date.today().isoformat()
for result in results:
    case = result["case"]
    body = renderers[case](result) + f"\nMeasured {today} on: {machine()}.\n"
    begin, end = f"<!-- bench:{case}:begin -->", f"<!-- bench:{case}:end -->"
    block = f"{begin}\n{body}{end}"
    if begin in doc:
        doc = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
# With the peers in the run, the target lines too (what `scripts/bench --peers` ends with).
if any(result["case"] == "relay" and result.get("peers") for result in results):
    begin, end = "<!-- bench:targets:begin -->", "<!-- bench:targets:end -->"
    body = ("## Targets\n\nThe targets of this run, as `scripts/bench --peers` prints them "
            "(ratios in the same run):\n\n```\n" + "\n".join(target_lines(results)) + "\n```\n")
    block = f"{begin}\n{body}\nMeasured {today} on: {machine()}.\n{end}"
    if begin in doc:
        doc = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        # Near the top, after the introduction: the first thing a reader checks.
        first = doc.find("<!-- bench:")
        doc = doc[:first] + block + "\n\n" + doc[first:] if first >= 0 else doc.rstrip("\n") + "\n\n" + block + "\n"
open(doc_path, "w").write(doc)

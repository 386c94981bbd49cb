#!/usr/bin/env bash
# Generates examples/var-log-pods, the sample pod log tree that the README runs
# podlogd on (`--log-root examples/var-log-pods --cri-endpoint none`) and that
# the integration tests read.
#
# The output is deterministic: fixed timestamps, a fixed pseudo-random
# sequence, and `gzip -n` (no name, no mtime) for the compressed rotated file.
# Only bash, coreutils, diffutils, gzip and python3 are used.
#
# Usage:
#   examples/gen-var-log-pods.sh            rewrite examples/var-log-pods
#   examples/gen-var-log-pods.sh --out DIR  write the tree to DIR (must not exist or be empty)
#   examples/gen-var-log-pods.sh --check    regenerate into a temporary directory and
#                                           compare with examples/var-log-pods; exits 1
#                                           and prints the differences when they differ
#
# `--check` compares every plain file byte for byte. A `.gz` file is compared
# by its name and its decompressed bytes, because another gzip build may
# compress the same input to different (equally valid) bytes.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tree="$script_dir/var-log-pods"

mode=write
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --check) mode=check; shift ;;
        --out)
            [[ $# -ge 2 ]] || { echo "gen-var-log-pods: --out needs a directory" >&2; exit 64; }
            mode=out; out="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gen-var-log-pods: unknown argument: $1" >&2; exit 64 ;;
    esac
done

for tool in python3 gzip diff cmp; do
    command -v "$tool" >/dev/null || { echo "gen-var-log-pods: $tool is required" >&2; exit 69; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/podlog-gen.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# generate DIR: writes the whole tree into DIR (which must exist and be empty).
generate() {
    local dir="$1"
    python3 - "$dir" <<'PY'
import os
import sys

ROOT = sys.argv[1]
DAY = "2026-11-21"
NS_PER_SEC = 1_000_000_000


class Rng:
    """A 64-bit LCG: the same sequence on every Python version and machine."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.state >> 33

    def below(self, n):
        return self.next() % n

    def pick(self, items):
        return items[self.below(len(items))]


def t(hms, frac_ns=0):
    """Nanoseconds since midnight UTC of DAY for 'HH:MM:SS' plus a fraction."""
    h, m, s = (int(x) for x in hms.split(":"))
    return ((h * 60 + m) * 60 + s) * NS_PER_SEC + frac_ns


def stamp(ns, digits=9, offset_hours=0):
    """RFC 3339 timestamp with `digits` fraction digits.

    offset_hours != 0 writes local time with a numeric zone offset, the way
    CRI-O does; the instant is the same.
    """
    local = ns + offset_hours * 3600 * NS_PER_SEC
    assert 0 <= local < 86400 * NS_PER_SEC, "sample timestamps stay within one day"
    secs, frac = divmod(local, NS_PER_SEC)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    frac_s = f"{frac:09d}"
    if digits != 9:
        assert frac_s[digits:] == "0" * (9 - digits), "fraction must fit the digits asked for"
        frac_s = frac_s[:digits]
    if offset_hours == 0:
        zone = "Z"
    else:
        sign = "+" if offset_hours > 0 else "-"
        zone = f"{sign}{abs(offset_hours):02d}:00"
    return f"{DAY}T{h:02d}:{m:02d}:{s:02d}.{frac_s}{zone}"


class LogFile:
    """Accumulates CRI lines and checks that time never goes backwards."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.last = -1

    def add(self, ns, stream, tag, content, digits=9, offset_hours=0):
        assert ns > self.last, f"{self.path}: timestamps must increase ({content[:40]!r})"
        if digits == 9:
            # containerd trims trailing zeros from the fraction (RFC3339Nano);
            # keep full 9-digit stamps unless a shorter one is asked for.
            assert ns % 10 != 0, "a 9-digit stamp must not end in 0"
        self.last = ns
        if isinstance(content, str):
            content = content.encode("utf-8")
        line = stamp(ns, digits, offset_hours).encode() + b" " + stream.encode() + b" " + tag.encode() + b" " + content + b"\n"
        self.lines.append(line)

    def write(self):
        full = os.path.join(ROOT, self.path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(b"".join(self.lines))


def nonzero_last_digit(ns):
    return ns + 1 if ns % 10 == 0 else ns


class Clock:
    """Moves forward by pseudo-random steps; every stamp has 9 significant digits."""

    def __init__(self, rng, start_ns):
        self.rng = rng
        self.ns = start_ns

    def step(self, min_ms, max_ms):
        ms = min_ms + (self.rng.below(max_ms - min_ms) if max_ms > min_ms else 0)
        self.ns += ms * 1_000_000 + 1 + self.rng.below(999_983)
        self.ns = nonzero_last_digit(self.ns)
        return self.ns

    def tiny(self):
        """A few microseconds later: lines written by one write(2) burst."""
        self.ns = nonzero_last_digit(self.ns + 3_000 + self.rng.below(40_000))
        return self.ns


def hms_of(ns):
    secs = ns // NS_PER_SEC
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return h, m, s


# ---------------------------------------------------------------------------
# default/web-7d4b9c: nginx (one attempt, one plain rotated file) and sidecar
# (attempt 0 crashed, attempt 1 is current).
# ---------------------------------------------------------------------------
WEB = "default_web-7d4b9c_0b1f3a2e-5c6d-4e7f-8a9b-0c1d2e3f4a5b"

CLIENTS = ["10.244.1.17", "10.244.1.23", "10.244.2.8", "10.244.0.1", "10.244.3.41"]
REQUESTS = [
    ("GET", "/", 200, 615),
    ("GET", "/healthz", 200, 2),
    ("GET", "/api/v1/items?page=1", 200, 4821),
    ("GET", "/api/v1/items?page=2", 200, 4377),
    ("GET", "/api/v1/items/8812", 200, 733),
    ("POST", "/api/v1/orders", 201, 188),
    ("GET", "/api/v1/orders/55120", 200, 942),
    ("GET", "/static/app.3f9c1e.js", 200, 148213),
    ("GET", "/static/app.91ab0d.css", 200, 23877),
    ("GET", "/favicon.ico", 404, 153),
    ("PUT", "/api/v1/cart/3391", 204, 0),
    ("GET", "/api/v1/search?q=lamp", 200, 12044),
]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "curl/8.11.0",
    "Go-http-client/1.1",
]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def access_line(rng, ns):
    h, m, s = hms_of(ns)
    client = rng.pick(CLIENTS)
    method, path, status, size = rng.pick(REQUESTS)
    agent = "kube-probe/1.31" if path == "/healthz" else rng.pick(AGENTS)
    return (
        f'{client} - - [21/{MONTHS[10]}/2026:{h:02d}:{m:02d}:{s:02d} +0000] '
        f'"{method} {path} HTTP/1.1" {status} {size} "-" "{agent}" "-"'
    )


def nginx_error(rng, ns, conn):
    h, m, s = hms_of(ns)
    client = rng.pick(CLIENTS)
    kind = rng.below(3)
    if kind == 0:
        return (
            f"2026/11/21 {h:02d}:{m:02d}:{s:02d} [error] 29#29: *{conn} connect() failed "
            f"(111: Connection refused) while connecting to upstream, client: {client}, server: _, "
            f'request: "GET /api/v1/orders/55120 HTTP/1.1", upstream: "http://10.96.12.4:8080/api/v1/orders/55120", '
            f'host: "web.default.svc"'
        )
    if kind == 1:
        return (
            f"2026/11/21 {h:02d}:{m:02d}:{s:02d} [warn] 30#30: *{conn} an upstream response is buffered "
            f"to a temporary file /var/cache/nginx/proxy_temp/3/07/0000000073 while reading upstream, "
            f'client: {client}, server: _, request: "GET /api/v1/search?q=lamp HTTP/1.1", host: "web.default.svc"'
        )
    return (
        f'2026/11/21 {h:02d}:{m:02d}:{s:02d} [error] 29#29: *{conn} open() "/usr/share/nginx/html/favicon.ico" '
        f"failed (2: No such file or directory), client: {client}, server: _, "
        f'request: "GET /favicon.ico HTTP/1.1", host: "web.default.svc"'
    )


def gen_nginx():
    rng = Rng(0x6E67696E78)  # "nginx"
    rotated = LogFile(f"{WEB}/nginx/0.log.20261121-050000")
    active = LogFile(f"{WEB}/nginx/0.log")
    clock = Clock(rng, t("04:40:00", 118_240_517))

    startup = [
        ("stdout", "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"),
        ("stdout", "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/"),
        ("stdout", "/docker-entrypoint.sh: Launching /docker-entrypoint.d/10-listen-on-ipv6-by-default.sh"),
        ("stdout", "10-listen-on-ipv6-by-default.sh: info: Getting the checksum of /etc/nginx/conf.d/default.conf"),
        ("stdout", "10-listen-on-ipv6-by-default.sh: info: Enabled listen on IPv6 in /etc/nginx/conf.d/default.conf"),
        ("stdout", "/docker-entrypoint.sh: Configuration complete; ready for start up"),
    ]
    for stream, text in startup:
        rotated.add(clock.tiny(), stream, "F", text)
    h, m, s = hms_of(clock.ns)
    for text in [
        "using the \"epoll\" event method",
        "nginx/1.27.3",
        "built by gcc 12.2.0 (Debian 12.2.0-14)",
        "OS: Linux 6.1.0-27-amd64",
        "getrlimit(RLIMIT_NOFILE): 1048576:1048576",
        "start worker processes",
        "start worker process 29",
        "start worker process 30",
    ]:
        rotated.add(clock.tiny(), "stderr", "F", f"2026/11/21 {h:02d}:{m:02d}:{s:02d} [notice] 1#1: {text}")

    conn = 41
    # Until the rotation at 05:00:00 the lines go to the file that is now
    # 0.log.20261121-050000; after it, to the new 0.log.
    rotation = t("05:00:00")
    end = t("05:26:49")
    while True:
        ns = clock.step(2_000, 58_000)
        if ns >= end:
            break
        target = rotated if ns < rotation else active
        conn += 1 + rng.below(4)
        if rng.below(9) == 0:
            target.add(ns, "stderr", "F", nginx_error(rng, ns, conn))
        else:
            target.add(ns, "stdout", "F", access_line(rng, ns))
    rotated.write()
    active.write()


def gen_sidecar():
    rng = Rng(0x73696465636172)  # "sidecar"
    prev = LogFile(f"{WEB}/sidecar/0.log")
    cur = LogFile(f"{WEB}/sidecar/1.log")

    def logfmt(ns, level, msg, extra=""):
        h, m, s = hms_of(ns)
        ms = (ns // 1_000_000) % 1000
        tail = f" {extra}" if extra else ""
        return f'time="{DAY}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z" level={level} msg="{msg}"{tail}'

    def run(log, clock, start_banner):
        for level, msg, extra in start_banner:
            ns = clock.tiny()
            log.add(ns, "stderr", "F", logfmt(ns, level, msg, extra))

    clock = Clock(rng, t("04:40:01", 402_118_733))
    banner = [
        ("info", "starting config-reloader", "version=v0.9.4 commit=4e1b7a2"),
        ("info", "watching directory", "dir=/etc/nginx/conf.d"),
        ("info", "nginx admin socket reachable", "socket=/run/nginx/admin.sock"),
    ]
    run(prev, clock, banner)
    reloads = 0
    while True:
        ns = clock.step(60_000, 240_000)
        if ns >= t("05:11:30"):
            break
        if rng.below(4) == 0:
            reloads += 1
            prev.add(ns, "stderr", "F", logfmt(ns, "info", "config changed, reloading nginx", f"file=default.conf reload={reloads}"))
            ns = clock.tiny()
            prev.add(ns, "stderr", "F", logfmt(ns, "info", "reload signal sent", "pid=1 signal=SIGHUP"))
        else:
            prev.add(ns, "stdout", "F", f'{{"ts":"{stamp(ns)[:23]}Z","component":"config-reloader","event":"heartbeat","watched":1,"reloads":{reloads}}}')
    ns = clock.step(1_000, 3_000)
    prev.add(ns, "stderr", "F", logfmt(ns, "warning", "nginx admin socket not responding, retrying", "attempt=1 socket=/run/nginx/admin.sock"))
    ns = clock.step(1_000, 2_000)
    prev.add(ns, "stderr", "F", logfmt(ns, "warning", "nginx admin socket not responding, retrying", "attempt=2 socket=/run/nginx/admin.sock"))
    ns = clock.step(2_000, 4_000)
    prev.add(ns, "stderr", "F", logfmt(ns, "fatal", "config-reloader crashed: lost connection to nginx admin socket", "exit_code=1"))
    prev.write()

    # The kubelet restarts the container after its 10 s back-off.
    clock = Clock(rng, prev.last + 10 * NS_PER_SEC + 612_004_117)
    run(cur, clock, banner)
    while True:
        ns = clock.step(60_000, 240_000)
        if ns >= t("05:26:40"):
            break
        if rng.below(5) == 0:
            reloads += 1
            cur.add(ns, "stderr", "F", logfmt(ns, "info", "config changed, reloading nginx", f"file=default.conf reload={reloads}"))
        else:
            cur.add(ns, "stdout", "F", f'{{"ts":"{stamp(ns)[:23]}Z","component":"config-reloader","event":"heartbeat","watched":1,"reloads":{reloads}}}')
    cur.write()


# ---------------------------------------------------------------------------
# kube-system/coredns: a gzip-compressed rotated file, a plain rotated file and
# the active file with a ~40 KiB event in P chunks, a CRI-O style stamp with a
# zone offset and an 8-digit fraction.
# ---------------------------------------------------------------------------
DNS = "kube-system_coredns-5d78c9869d-xk2lp_7e8f9a0b-1c2d-3e4f-5a6b-7c8d9e0f1a2b"
NAMES = [
    ("A", "web.default.svc.cluster.local."),
    ("AAAA", "web.default.svc.cluster.local."),
    ("A", "orders.shop.svc.cluster.local."),
    ("A", "postgres.batch.svc.cluster.local."),
    ("A", "kubernetes.default.svc.cluster.local."),
    ("SRV", "_grpc._tcp.orders.shop.svc.cluster.local."),
    ("A", "registry.example.internal."),
    ("PTR", "17.1.244.10.in-addr.arpa."),
]
RCODES = ["NOERROR"] * 6 + ["NXDOMAIN"]


def dns_query(rng):
    qtype, name = rng.pick(NAMES)
    client = rng.pick(CLIENTS)
    port = 30000 + rng.below(30000)
    qid = rng.below(65536)
    rcode = rng.pick(RCODES)
    size = 90 + rng.below(120)
    dur = f"0.{rng.below(900) + 40:06d}s"
    return (
        f'[INFO] {client}:{port} - {qid} "{qtype} IN {name} udp {len(name) + 19} false 512" '
        f"{rcode} qr,aa,rd {size} {dur}"
    )


def dns_stderr(rng):
    return rng.pick([
        "[WARNING] plugin/kubernetes: Kubernetes API connection failure: Get \"https://10.96.0.1:443/version\": dial tcp 10.96.0.1:443: i/o timeout",
        "[ERROR] plugin/errors: 2 registry.example.internal. A: read udp 10.244.0.5:48211->10.0.0.2:53: i/o timeout",
        "[WARNING] plugin/health: Local health request to \"http://:8080/health\" took more than 1s: 1.204518907s",
    ])


def long_event_content():
    """A 40 KiB single-line record (an endpoint snapshot)."""
    parts = []
    i = 0
    while sum(len(p) for p in parts) < 40960:
        parts.append(f"shop/svc-{i:04d}=10.96.{(i // 250) % 256}.{i % 250 + 1}:{8000 + i % 100},")
        i += 1
    head = "[DEBUG] plugin/kubernetes: endpoints snapshot: "
    body = head + "".join(parts)
    return body[:40960 - 1] + "."


def gen_coredns():
    rng = Rng(0x636F7265646E73)  # "coredns"
    gz = LogFile(f"{DNS}/coredns/0.log.20261121-040000")  # compressed after writing
    rotated = LogFile(f"{DNS}/coredns/0.log.20261121-050000")
    active = LogFile(f"{DNS}/coredns/0.log")

    clock = Clock(rng, t("03:31:07", 77_614_203))
    for text in [
        ".:53",
        "[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61db9961c2fa5f046dd37f1cf888b953814040d180f52594972691cd6ff41be96639138a43908",
        "CoreDNS-1.11.3",
        "linux/amd64, go1.21.11, a6338e9",
    ]:
        gz.add(clock.tiny(), "stdout", "F", text)

    boundaries = [(t("04:00:00"), gz), (t("05:00:00"), rotated), (t("05:26:30"), active)]
    for limit, target in boundaries:
        while True:
            ns = clock.step(5_000, 115_000)
            if ns >= limit:
                clock.ns = limit + 1_234_567  # next file starts just after the rotation
                clock.ns = nonzero_last_digit(clock.ns)
                break
            if rng.below(11) == 0:
                target.add(ns, "stderr", "F", dns_stderr(rng))
            else:
                target.add(ns, "stdout", "F", dns_query(rng))

    # The long event: containerd splits it into chunks; stderr lines written
    # meanwhile sit between the chunks. Partials are merged per stream, so the
    # stdout event is P1+P2+P3+F and each stderr line is its own event.
    content = long_event_content()
    chunk = 12288
    pieces = [content[0:chunk], content[chunk:2 * chunk], content[2 * chunk:3 * chunk], content[3 * chunk:]]
    assert len(pieces[3]) > 0
    clock.ns = t("05:26:41", 311_826_405)
    active.add(clock.ns, "stdout", "P", pieces[0])
    active.add(clock.tiny(), "stderr", "F", "[WARNING] plugin/kubernetes: watch of *v1.EndpointSlice ended with: an error on the server (\"unable to decode an event from the watch stream: context canceled\") has prevented the request from succeeding")
    active.add(clock.tiny(), "stdout", "P", pieces[1])
    active.add(clock.tiny(), "stderr", "F", "[INFO] plugin/kubernetes: resuming watch of *v1.EndpointSlice")
    active.add(clock.tiny(), "stdout", "P", pieces[2])
    active.add(clock.tiny(), "stderr", "F", "[INFO] plugin/kubernetes: synced 1 resource(s) in 0.004118s")
    active.add(clock.tiny(), "stdout", "F", pieces[3])

    clock.ns = t("05:26:44", 820_554_313)
    active.add(clock.ns, "stdout", "F", dns_query(rng))
    active.add(t("05:26:50", 936_241_998), "stdout", "F", dns_query(rng))
    # CRI-O writes local time with a numeric offset: 00:26:51-05:00 is 05:26:51Z,
    # later than the line above although its text sorts lower.
    active.add(t("05:26:51", 140_456_062), "stdout", "F", dns_query(rng), offset_hours=-5)
    active.add(t("05:26:57", 402_993_871), "stderr", "F", dns_stderr(rng))
    active.add(t("05:26:59", 15_840_229), "stdout", "F", dns_query(rng))
    # RFC3339Nano drops trailing zeros: .656668270 is written with 8 digits.
    active.add(t("05:27:03", 656_668_270), "stdout", "F", dns_query(rng), digits=8)
    active.add(t("05:27:08", 219_043_557), "stdout", "F", dns_query(rng))

    gz.write()
    rotated.write()
    active.write()


# ---------------------------------------------------------------------------
# batch/report-28374650-abcde: a Java job with a stack trace, a tag with an
# extra field, and a last line that is a P chunk with no F (the container
# exited in the middle of a line).
# ---------------------------------------------------------------------------
REPORT = "batch_report-28374650-abcde_1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def gen_report():
    rng = Rng(0x7265706F7274)  # "report"
    log = LogFile(f"{REPORT}/report/0.log")
    clock = Clock(rng, t("05:20:00", 512_007_391))

    def spring(ns, level, thread, logger, msg):
        h, m, s = hms_of(ns)
        ms = (ns // 1_000_000) % 1000
        return f"{DAY} {h:02d}:{m:02d}:{s:02d}.{ms:03d} {level:>5} 1 --- [{thread:>15}] {logger:<40} : {msg}"

    def info(msg, logger="c.e.report.ReportJob", thread="main", step=(5, 900)):
        ns = clock.step(*step)
        log.add(ns, "stdout", "F", spring(ns, "INFO", thread, logger, msg))

    info("Starting ReportApplication v2.4.1 using Java 21.0.5 with PID 1 (/app/report.jar started by app in /app)", "c.e.report.ReportApplication")
    info("No active profile set, falling back to 1 default profile: \"default\"", "c.e.report.ReportApplication")
    info("HikariPool-1 - Starting...", "com.zaxxer.hikari.HikariDataSource", step=(200, 900))
    info("HikariPool-1 - Added connection org.postgresql.jdbc.PgConnection@5b0e9b2c", "com.zaxxer.hikari.pool.HikariPool")
    info("HikariPool-1 - Start completed.", "com.zaxxer.hikari.HikariDataSource")
    info("Started ReportApplication in 3.187 seconds (process running for 3.912)", "c.e.report.ReportApplication", step=(1500, 2500))
    info("Building daily report window=2026-11-20 tenants=12")
    for tenant in range(1, 6):
        info(f"tenant={tenant:03d} rows={1000 + rng.below(9000)} elapsed={50 + rng.below(900)}ms", step=(400, 6000))

    # A failed query: the exception is logged with its stack trace, one
    # stderr line per frame, each a full (F) line.
    ns = clock.step(8_000, 12_000)
    log.add(ns, "stderr", "F", spring(ns, "WARN", "main", "c.e.report.ReportJob", "tenant=006 query failed, retrying in 5s (attempt 1/3)"))
    trace = [
        "org.springframework.dao.QueryTimeoutException: PreparedStatementCallback; SQL [select * from usage_daily where tenant_id = ? and day = ?]; ERROR: canceling statement due to statement timeout",
        "\tat org.springframework.jdbc.support.SQLStateSQLExceptionTranslator.doTranslate(SQLStateSQLExceptionTranslator.java:112)",
        "\tat org.springframework.jdbc.support.AbstractFallbackSQLExceptionTranslator.translate(AbstractFallbackSQLExceptionTranslator.java:70)",
        "\tat org.springframework.jdbc.core.JdbcTemplate.translateException(JdbcTemplate.java:1580)",
        "\tat org.springframework.jdbc.core.JdbcTemplate.execute(JdbcTemplate.java:675)",
        "\tat org.springframework.jdbc.core.JdbcTemplate.query(JdbcTemplate.java:723)",
        "\tat com.example.report.UsageRepository.daily(UsageRepository.java:48)",
        "\tat com.example.report.ReportJob.buildTenant(ReportJob.java:131)",
        "\tat com.example.report.ReportJob.run(ReportJob.java:87)",
        "\tat com.example.report.ReportApplication.main(ReportApplication.java:31)",
        "Caused by: org.postgresql.util.PSQLException: ERROR: canceling statement due to statement timeout",
        "\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2733)",
        "\tat org.postgresql.core.v3.QueryExecutorImpl.processResults(QueryExecutorImpl.java:2420)",
        "\tat org.postgresql.jdbc.PgStatement.executeInternal(PgStatement.java:517)",
        "\tat org.postgresql.jdbc.PgPreparedStatement.executeQuery(PgPreparedStatement.java:137)",
        "\t... 6 common frames omitted",
    ]
    for frame in trace:
        log.add(clock.tiny(), "stderr", "F", frame)

    info("tenant=006 retry succeeded rows=4410 elapsed=2987ms", step=(5000, 6000))
    for tenant in range(7, 12):
        info(f"tenant={tenant:03d} rows={1000 + rng.below(9000)} elapsed={50 + rng.below(900)}ms", step=(400, 6000))

    # A tag with an extra ':'-separated field: readers ignore unknown fields.
    ns = clock.step(300, 900)
    log.add(ns, "stdout", "F:extra", spring(ns, "INFO", "main", "c.e.report.ReportJob", "tenant=012 rows=2286 elapsed=311ms"))
    info("Writing summary to s3://reports/daily/2026-11-20.csv.gz", step=(200, 700))

    # The container exited in the middle of a line: the file ends with a P chunk.
    ns = clock.step(900, 1500)
    log.add(ns, "stdout", "P", spring(ns, "INFO", "main", "c.e.report.ReportJob", "summary: tenants=12 rows=61873 bytes="))
    log.write()


gen_nginx()
gen_sidecar()
gen_coredns()
gen_report()
PY
    # Compress the oldest coredns file as podlog's rotation would, then drop
    # the plain copy. -n leaves the name and mtime out: deterministic bytes.
    local f="$dir/kube-system_coredns-5d78c9869d-xk2lp_7e8f9a0b-1c2d-3e4f-5a6b-7c8d9e0f1a2b/coredns/0.log.20261121-040000"
    gzip -k -n "$f"
    rm -f "$f"
}

# compare EXPECTED ACTUAL: plain files byte for byte, .gz files by name and
# decompressed content. Prints differences; returns 1 when the trees differ.
compare() {
    local expected="$1" actual="$2" status=0 rel
    if ! diff -r -x '*.gz' "$expected" "$actual" >"$work/diff.txt" 2>&1; then
        head -n 40 "$work/diff.txt" | cut -c1-200
        status=1
    fi
    diff <(cd "$expected" && find . -name '*.gz' | LC_ALL=C sort) \
         <(cd "$actual" && find . -name '*.gz' | LC_ALL=C sort) || status=1
    while IFS= read -r rel; do
        [[ -f "$actual/$rel" ]] || continue
        if ! cmp -s <(gzip -dc "$expected/$rel") <(gzip -dc "$actual/$rel"); then
            echo "content differs: $rel"
            status=1
        fi
    done < <(cd "$expected" && find . -name '*.gz' | LC_ALL=C sort)
    return "$status"
}

mkdir "$work/tree"
generate "$work/tree"

case "$mode" in
    write)
        rm -rf "$tree"
        cp -R "$work/tree" "$tree"
        echo "wrote $tree ($(du -sk "$tree" | cut -f1) KiB on disk)"
        ;;
    out)
        if [[ -e "$out" ]] && [[ -n "$(ls -A "$out")" ]]; then
            echo "gen-var-log-pods: $out exists and is not empty" >&2
            exit 73
        fi
        mkdir -p "$out"
        cp -R "$work/tree/." "$out/"
        ;;
    check)
        if [[ ! -d "$tree" ]]; then
            echo "gen-var-log-pods: $tree is missing; run examples/gen-var-log-pods.sh" >&2
            exit 1
        fi
        if compare "$work/tree" "$tree"; then
            echo "examples/var-log-pods is up to date"
        else
            echo "examples/var-log-pods differs from what examples/gen-var-log-pods.sh generates; rerun it and commit the result" >&2
            exit 1
        fi
        ;;
esac

#!/usr/bin/env bash
# A/B check of two podlogd binaries on the same files, alternating, so that
# a change can be judged against the run-to-run noise of the machine.
#
# Usage:
#   bench/ab.sh OLD_PODLOGD NEW_PODLOGD
#
# Build the old binary in a worktree of its own, e.g.
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release)
#   bench/ab.sh /tmp/old/target/release/podlogd target/release/podlogd
#
# Two measurements, each ROUNDS times (default 3), old then new:
#   json   the best of 3 full `format=json` reads of a SIZE_MB file (default
#          512; 1 % of lines are 40-100 KiB events in 16 KiB P chunks), in s
#   memory the RssAnon peak of a fresh daemon while 50 clients follow with
#          tailLines=10 over 12 events of 100 KiB and 1000 lines are
#          appended, in MiB (the long-event row of bench/compare.sh, alone)
#
# Needs curl and python3. Everything it starts and its temporary directory
# are removed on exit.
set -euo pipefail

old=${1:?usage: bench/ab.sh OLD_PODLOGD NEW_PODLOGD}
new=${2:?usage: bench/ab.sh OLD_PODLOGD NEW_PODLOGD}
ROUNDS=${ROUNDS:-3}
SIZE_MB=${SIZE_MB:-512}
for b in "$old" "$new"; do
    [[ -x $b ]] || { echo "ab: $b is not an executable" >&2; exit 64; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/podlog-ab.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# gen DIR MODE: the container directory's 0.log. MODE big: SIZE_MB of mixed
# lines; long: 20000 short lines, then 12 events of 100 KiB.
gen() {
    mkdir -p "$1"
    python3 - "$1/0.log" "$2" "$SIZE_MB" <<'PY'
import random, sys
path, mode, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(1)
def ts(i):
    return "2026-12-07T05:%02d:%02d.%09dZ" % ((i // 60000) % 60, (i // 1000) % 60, (i % 1000) * 1000)
def chunks(f, t, body):
    for k in range(0, len(body), 16384):
        tag = "F" if k + 16384 >= len(body) else "P"
        f.write("%s stdout %s %s\n" % (t, tag, body[k:k + 16384]))
with open(path, "w") as f:
    if mode == "big":
        i = 0
        while f.tell() < size_mb << 20:
            if i % 100 == 99:
                chunks(f, ts(i), "L" * random.randint(40 << 10, 100 << 10))
            else:
                s = "stderr" if i % 10 == 0 else "stdout"
                f.write("%s %s F msg %d %s\n" % (ts(i), s, i, "x" * random.randint(40, 400)))
            i += 1
    else:
        for i in range(20000):
            f.write("%s stderr F load line %d %s\n" % (ts(i), i, "x" * 120))
        for e in range(12):
            chunks(f, ts(30000 + e), "y" * (100 << 10))
PY
}

port=18830
# start BIN ROOT: starts podlogd on the next port; sets pid and api.
start() {
    port=$((port + 1))
    "$1" --log-root "$2" --cri-endpoint none --listen "127.0.0.1:$port" >"$tmp/out.$port" 2>&1 &
    pid=$!
    pids+=("$pid")
    api="http://127.0.0.1:$port"
    for _ in $(seq 1 200); do
        grep -q listening "$tmp/out.$port" 2>/dev/null && return
        sleep 0.05
    done
    echo "ab: $1 did not start" >&2
    exit 1
}

stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

json_read() {
    start "$1" "$tmp/big"
    local best=999 t
    for _ in 1 2 3; do
        t=$(curl -s -o /dev/null -w '%{time_total}' "$api/logs/default/web/app?format=json")
        best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
    done
    stop
    echo "$best"
}

followers_rss() {
    rm -rf "$tmp/long"
    gen "$tmp/long/default_web_uid1/app" long
    start "$1" "$tmp/long"
    local url="$api/logs/default/web/app" fp=() n="" peak=0 k
    for _ in $(seq 1 50); do
        curl -sN "$url?follow=true&tailLines=10" >/dev/null &
        fp+=($!)
    done
    for _ in $(seq 1 200); do
        n=$(curl -s "$api/metrics" | awk '$1 == "podlog_followers" {print $2}')
        [[ ${n:-0} -ge 50 ]] && break
        sleep 0.05
    done
    python3 - "$tmp/long/default_web_uid1/app/0.log" <<'PY' &
import sys, time
with open(sys.argv[1], "a") as f:
    for i in range(1000):
        f.write("2026-12-07T06:00:00.000000000Z stderr F more %d %s\n" % (i, "x" * 120))
        f.flush()
        if i % 100 == 0:
            time.sleep(0.05)
PY
    local writer=$! end=$((SECONDS + 3))
    while ((SECONDS < end)); do
        k=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
        ((k > peak)) && peak=$k
        sleep 0.02
    done
    wait "$writer" || true
    kill "${fp[@]}" 2>/dev/null || true
    wait "${fp[@]}" 2>/dev/null || true
    stop
    [[ ${n:-0} -ge 50 ]] || echo "ab: only ${n:-0} of 50 followers connected" >&2
    awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }'
}

echo "generating ${SIZE_MB} MiB..." >&2
gen "$tmp/big/default_web_uid1/app" big
cat "$tmp/big/default_web_uid1/app/0.log" >/dev/null

echo "| round | json old (s) | json new (s) | RssAnon old (MiB) | RssAnon new (MiB) |"
echo "| --- | --- | --- | --- | --- |"
for r in $(seq 1 "$ROUNDS"); do
    jo=$(json_read "$old")
    jn=$(json_read "$new")
    mo=$(followers_rss "$old")
    mn=$(followers_rss "$new")
    echo "| $r | $jo | $jn | $mo | $mn |"
done

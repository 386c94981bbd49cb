#!/usr/bin/env bash
# Schemathesis against a live podlogd: every check, every phase, on the
# sample tree (examples/var-log-pods) in directory mode.
#
#   .ci/schemathesis.sh PODLOGD ST
#
# PODLOGD: the podlogd binary to test. ST: schemathesis's `st` (from the
# venv it was installed in; .ci/run pins its version). Exits non-zero on
# any failure or error schemathesis reports.
#
# Optional environment:
#   PODLOG_ST_SEED          a seed, to replay a run (the output names its seed)
#   PODLOG_ST_MAX_EXAMPLES  cases per operation and phase (default 200)
#
# Nothing is excluded: no operation, no check, no phase. What the OpenAPI
# document cannot state (a cursor's checksum, untilTime after sinceTime,
# follow streams that never end, the syntax of grep, the 16 KiB request
# head, the lines of NDJSON) is handled, each with its reason, in
# .ci/schemathesis_hooks.py, and none of it skips a case.
#
# The stateful phase may print "Failed to extract data from response": the
# links of docs/openapi.yaml lead from an inventory to its first container,
# and a merged read (the other answer of GET /logs) has no inventory to
# follow. Those notes are not failures.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 PODLOGD ST" >&2
    exit 64
fi
podlogd=$(realpath "$1")
st=$(realpath -s "$2")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Schemathesis and Hypothesis keep caches in the working directory: a
# temporary one keeps them out of the checkout.
work=$(mktemp -d)
podlogd_pid=
cleanup() {
    if [[ -n $podlogd_pid ]]; then
        kill "$podlogd_pid" 2>/dev/null || true
        wait "$podlogd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the kernel picks a free one, and podlogd prints it.
"$podlogd" --log-root "$repo/examples/var-log-pods" --cri-endpoint none \
    --listen 127.0.0.1:0 --node-name schemathesis \
    >"$work/podlogd.out" 2>"$work/podlogd.err" &
podlogd_pid=$!

addr=
for _ in $(seq 100); do
    addr=$(sed -n 's/^podlogd listening on //p' "$work/podlogd.out")
    if [[ -n $addr ]] && curl -fsS --max-time 2 "http://$addr/readyz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$podlogd_pid" 2>/dev/null; then
        echo "error: podlogd exited before it was ready:" >&2
        cat "$work/podlogd.err" >&2
        exit 1
    fi
    addr=
    sleep 0.1
done
if [[ -z $addr ]]; then
    echo "error: podlogd was not ready within 10 s:" >&2
    cat "$work/podlogd.err" >&2
    exit 1
fi
echo "podlogd $("$podlogd" --version) ready on $addr"

seed=()
if [[ -n ${PODLOG_ST_SEED:-} ]]; then
    seed=(--seed "$PODLOG_ST_SEED")
fi

# --request-timeout bounds every request but follow ones, which the hooks
# read until 0.3 s of silence; --generation-database none: each run draws
# afresh (a seed replays one); --workers 1: with more, Hypothesis parses
# lambdas' sources in several threads at once, which CPython 3.11 before
# 3.11.8 can fail ("AST constructor recursion depth mismatch").
started=$SECONDS
rc=0
(
    cd "$work"
    PODLOG_ST_BASE_URL="http://$addr" \
        SCHEMATHESIS_HOOKS="$repo/.ci/schemathesis_hooks.py" \
        "$st" run "$repo/docs/openapi.yaml" \
        --url "http://$addr" \
        --checks all \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "${PODLOG_ST_MAX_EXAMPLES:-200}" \
        --workers 1 \
        --request-timeout 10 \
        --generation-database none \
        --no-color \
        "${seed[@]}"
) || rc=$?
echo "schemathesis: exit $rc after $((SECONDS - started)) s"

if ! kill -0 "$podlogd_pid" 2>/dev/null; then
    echo "error: podlogd stopped during the run:" >&2
    cat "$work/podlogd.err" >&2
    exit 1
fi
if grep -q "panicked" "$work/podlogd.err"; then
    echo "error: podlogd panicked during the run:" >&2
    grep -A5 "panicked" "$work/podlogd.err" >&2
    exit 1
fi
exit "$rc"

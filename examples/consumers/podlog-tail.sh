#!/usr/bin/env bash
# Follows one container's log through podlogd's API and appends its events,
# as podlogd writes them (NDJSON, `format=json`), to a file or to standard
# output. After each burst of events it records the resume point, the last
# event's attempt and cursor, in a state file; a broken connection, a
# restart of podlogd or a restart of this script continues after that event.
# Rotation and compression of the files do not matter: a cursor survives
# them. When the container restarts, the stream of its old attempt ends and
# this script moves on to the next attempt from its start.
#
# Usage:
#   podlog-tail.sh NAMESPACE POD CONTAINER
#
# Environment:
#   PODLOG_URL  podlogd's address (default http://127.0.0.1:10290)
#   STATE       the state file, "<attempt> <cursor>" (default
#               ./NAMESPACE_POD_CONTAINER.cursor); without it, the newest
#               attempt is read from its start
#   OUT         the file events are appended to (default: standard output)
#   RETRY       seconds between reconnections (default 1)
#
# Delivery: SIGTERM or SIGINT records the resume point and stops, so a
# restart repeats nothing. After a SIGKILL (or a crash of the machine), the
# events written since the last record are written again, at most one burst;
# each event carries its cursor, so a consumer can drop those.
#
# Needs bash 4.4 or later, curl and jq.
set -uo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 NAMESPACE POD CONTAINER" >&2
    exit 64
fi
ns=$1 pod=$2 ctr=$3
api=${PODLOG_URL:-http://127.0.0.1:10290}
state=${STATE:-./${ns}_${pod}_${ctr}.cursor}
retry=${RETRY:-1}
for tool in curl jq; do
    command -v "$tool" >/dev/null || { echo "podlog-tail: $tool is required" >&2; exit 69; }
done

# Events go to fd 3: the file, opened once for appending, or stdout.
if [[ -n ${OUT:-} ]]; then
    exec 3>>"$OUT" || exit 73
else
    exec 3>&1
fi

# The resume point: attempt and cursor of the last event written, or
# cursor "-" for "this attempt from its start". Empty: nothing read yet.
attempt="" cursor=""
if [[ -s $state ]]; then
    read -r attempt cursor <"$state"
fi
saved="$attempt $cursor"

# Records the resume point when it moved: a new file renamed over the old
# one, so the state file is always whole.
save() {
    [[ -n $attempt && "$attempt $cursor" != "$saved" ]] || return 0
    printf '%s %s\n' "$attempt" "$cursor" >"$state.tmp" &&
        mv -f "$state.tmp" "$state" &&
        saved="$attempt $cursor"
}

# SIGTERM and SIGINT only raise a flag: the loop stops where the resume
# point matches what was written (a trap run between writing an event and
# noting its cursor would record the one before, and a restart would write
# that event twice). A signal also ends a wait or a read at once.
stopping=""
trap 'stopping=1' TERM INT
curl_pid=""
stop_if_asked() {
    [[ -n $stopping ]] || return 0
    save
    [[ -n $curl_pid ]] && kill "$curl_pid" 2>/dev/null
    exit 0
}

last_error=""
while :; do
    stop_if_asked
    if [[ -z $attempt ]]; then
        from=""                       # the newest attempt, from its start
    elif [[ $cursor == - ]]; then
        from="&attempt=$attempt"      # a newer attempt, from its start
    else
        from="&cursor=$cursor"        # strictly after the last event written
    fi

    # curl's output is read in this shell (not in a pipeline's subshell),
    # so the trap sees the resume point and can stop curl.
    exec 4< <(exec curl -sN --fail-with-body "$api/logs/$ns/$pod/$ctr?format=json&follow=true$from")
    curl_pid=$!
    line=""
    while IFS= read -r -u 4 line; do
        # podlogd writes an event's own members before any map of labels
        # or annotations, and a quote inside a JSON string is escaped, so
        # the first `,"cursor":"` is the event's cursor (URL-safe base64)
        # and the first `,"attempt":` its attempt. Parsing in bash rather
        # than with a jq per event keeps up with a busy container.
        [[ $line =~ ,\"cursor\":\"([A-Za-z0-9_-]+)\" ]] || break
        c=${BASH_REMATCH[1]}
        [[ $line =~ ,\"attempt\":([0-9]+)[,}] ]] || break
        printf '%s\n' "$line" >&3 || exit 74 # deliver first ...
        attempt=${BASH_REMATCH[1]} cursor=$c
        line=""
        [[ -n $stopping ]] && break
        read -r -t 0 -u 4 || save # ... then record, once nothing more is waiting
    done
    stop_if_asked
    exec 4<&-
    wait "$curl_pid"
    status=$?
    stop_if_asked
    curl_pid=""
    save

    if [[ $status -eq 22 ]]; then
        # An HTTP error; its JSON body is the unterminated last line.
        reason=$(jq -r '.reason // empty' <<<"$line" 2>/dev/null)
        message=$(jq -r '.error // empty' <<<"$line" 2>/dev/null)
        if [[ $reason == BadRequest ]]; then
            # A bad cursor or parameter does not get better by retrying.
            echo "podlog-tail: $message" >&2
            exit 65
        fi
        # NotFound (the pod or container is not there, yet or any more),
        # TooManyRequests, ServiceUnavailable: try again.
        [[ $message != "$last_error" ]] && echo "podlog-tail: $reason: $message; retrying every ${retry}s" >&2
        last_error=$message
    elif [[ $status -ne 0 ]]; then
        # No connection, or it broke (podlogd restarting, say).
        [[ $status != "$last_error" ]] && echo "podlog-tail: curl exited $status; retrying every ${retry}s" >&2
        last_error=$status
    else
        last_error=""
    fi

    # The stream ended. If a newer attempt exists, the followed one is
    # finished: continue with the next from its start.
    if [[ -n $attempt ]]; then
        next=$(curl -sSf --max-time 10 "$api/logs?namespace=$ns" 2>/dev/null |
            jq -r --arg pod "$pod" --arg ctr "$ctr" --argjson a "$attempt" \
                '.pods[] | select(.pod == $pod) | .containers[] | select(.name == $ctr)
                 | [.attempts[] | select(. > $a)] | min // empty')
        if [[ -n $next ]]; then
            attempt=$next cursor=-
            save
            continue
        fi
    fi
    sleep "$retry" &
    wait $!
done

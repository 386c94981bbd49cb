"""Schemathesis hooks for .ci/schemathesis.sh: what docs/openapi.yaml
cannot say about podlogd's API, each with the reason.

Nothing here turns a check off or skips an operation. These hooks change
what is sent, how a response is read, or which failure is no failure:

1. `rust-regex`, the format of `grep`: a generator of patterns in the Rust
   `regex` crate's syntax, within podlogd's bound on their compiled size.
   Schemathesis knows no such format; without it, arbitrary strings would
   be sent as schema-valid patterns.
2. A schema-valid (positive) case with a `cursor` gets a cursor podlogd
   issued. A cursor carries a checksum, and one of another container or
   attempt is refused: a schema can state its alphabet and its two lengths
   (docs/openapi.yaml, Cursor), not which strings podlogd issued. Negative
   cases keep their generated cursors.
3. A positive case with `untilTime` at or before `sinceTime` has the two
   swapped (or, equal, loses `untilTime`): podlogd refuses such a window
   (400 naming untilTime, as documented), and no schema language compares
   two parameters. Negative cases are sent as generated.
4. A `follow` response still open after FOLLOW_WINDOW seconds of silence
   (or FOLLOW_MAX in all) is closed, as a client stops following,
   and checked on its status, headers and what arrived. A follow stream
   ends only when its container ends or podlogd stops (docs/api.md,
   Follow): read to the end, it would wait forever. Only a 200 answer to a
   request with follow on is read this way; any other response that does
   not end within the run's request timeout is a failure.
5. A 431 answer to a request whose head is over 16 KiB is not counted as
   a rejected valid request (ST202) or an accepted invalid one (ST201):
   that limit is podlogd's documented transport limit, whatever the
   parameters; under 16 KiB, a 431 stays a failure.

One hook adds a check: 6. each line of a format=json answer is held to
components/schemas/Event, which OpenAPI 3.0 cannot attach to NDJSON lines.
"""

import hashlib
import json
import os
import re
import time
import urllib.parse

import requests
import schemathesis
import urllib3
from hypothesis import strategies as st

BASE_URL = os.environ["PODLOG_ST_BASE_URL"]
FOLLOW_WINDOW = 0.3
FOLLOW_MAX = 5.0
TRUE = {"", "true", "1"}


# === 1. rust-regex ===

# podlogd refuses a pattern whose compiled program passes 1 MiB (400, as
# documented); a Unicode class such as `\w` takes some 50 KiB of it. Each
# atom comes with a bound on what it takes, measured against podlogd (1 MiB
# over how many of it in a row compile), and a pattern is drawn only while
# its estimate stays under half the limit.
_SIZE_BUDGET = 512 * 1024
_CLASSES = {
    r"\w": 53_000, r"\W": 48_000, r"\p{L}": 44_000, r"\D": 13_000,
    r"\pN": 10_000, r"\d": 5_200, "[[:alpha:]]": 2_900, r"\S": 2_000,
    "[^0-9]": 1_600, "[a-z]": 1_300, ".": 1_100, r"\s": 800,
    r"\b": 600, r"\[": 600, r"\.": 600,
}
# A literal character takes at most this (a case-folded one, or one of four
# UTF-8 bytes, included).
_LITERAL = 1_000
# Counted repetitions copy what they repeat, up to their upper bound.
_QUANTIFIERS = {"": 1, "?": 1, "*": 1, "+": 1, "*?": 1, "+?": 1, "{2}": 2, "{1,3}": 3, "{0,}": 1}
_GROUP = 1_400

# Characters with a meaning in the regex crate's syntax; the rest stand
# for themselves.
_META = set("\\.+*?()|[]{}^$#&-~ \t\n\r\f\v")
_literal = st.characters(codec="utf-8", exclude_characters=_META)
_atom = st.one_of(
    st.text(_literal, min_size=1, max_size=4).map(lambda t: (t, _LITERAL * len(t))),
    st.sampled_from(sorted(_CLASSES.items())),
)
_quantifier = st.sampled_from(sorted(_QUANTIFIERS.items()))


def _concat(pieces: list[tuple[str, int]]) -> tuple[str, int]:
    return "".join(t for t, _ in pieces), sum(c for _, c in pieces)


def _pattern(depth: int) -> st.SearchStrategy[tuple[str, int]]:
    """A sequence of atoms and groups, each maybe quantified, with the
    bound on its compiled size."""
    piece = st.builds(lambda a, q: (a[0] + q[0], a[1] * q[1]), _atom, _quantifier)
    if depth > 0:
        group = st.builds(
            lambda alts, q: (
                "(" + "|".join(t for t, _ in alts) + ")" + q[0],
                (_GROUP + sum(c for _, c in alts)) * q[1],
            ),
            st.lists(_pattern(depth - 1), min_size=1, max_size=3),
            _quantifier,
        )
        piece = piece | group
    return st.lists(piece, max_size=5).map(_concat)


schemathesis.openapi.format(
    "rust-regex",
    st.builds(
        lambda flags, anchor, body, end: (flags + anchor + body[0] + end, body[1]),
        st.sampled_from(["", "", "(?i)", "(?s)", "(?m)"]),
        st.sampled_from(["", "^"]),
        _pattern(1),
        st.sampled_from(["", "$"]),
    )
    .filter(lambda p: p[1] <= _SIZE_BUDGET)
    .map(lambda p: p[0]),
)


# === 2. cursors podlogd issued ===

_cursors: dict[tuple, list[str] | None] = {}


def _issued_cursors(path: str, query: dict) -> list[str] | None:
    """The cursors of the events of the attempt a request for `path` with
    `query` reads, or None when that request cannot be answered 200 at
    all (its answer then does not depend on the cursor)."""
    choice = {k: query[k] for k in ("previous", "attempt") if k in query}
    key = (path, tuple(sorted(choice.items())))
    if key not in _cursors:
        r = requests.get(
            BASE_URL + path, params={**choice, "format": "json"}, timeout=30
        )
        if r.status_code != 200:
            _cursors[key] = None
        else:
            _cursors[key] = [json.loads(line)["cursor"] for line in r.content.splitlines()]
    return _cursors[key]


def _give_issued_cursor(case) -> None:
    issued = _issued_cursors(case.formatted_path, case.query)
    if issued is None:
        return
    if not issued:
        # An attempt without events has no cursor to give.
        del case.query["cursor"]
        return
    # Which one follows from the generated string, so a case replays alike.
    digest = hashlib.sha256(str(case.query["cursor"]).encode()).digest()
    case.query["cursor"] = issued[int.from_bytes(digest[:4], "big") % len(issued)]


# === 3. untilTime after sinceTime ===

_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def _nanos(v: object) -> int | None:
    """An RFC 3339 time as podlogd reads it (docs/openapi.yaml, Time), in
    nanoseconds since the epoch; None if it is not one."""
    m = _TIME.fullmatch(v) if isinstance(v, str) else None
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    # Days from the civil date (proleptic Gregorian), as podlogd counts.
    y -= mo <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * ((mo + 9) % 12) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    offset = 0
    if m.group(8):
        offset = (int(m.group(9)) * 3600 + int(m.group(10)) * 60) * (1 if m.group(8) == "+" else -1)
    frac = int((m.group(7) or "").ljust(9, "0"))
    return (days * 86400 + h * 3600 + mi * 60 + s - offset) * 10**9 + frac


def _order_window(case) -> None:
    if not case.query:
        return
    since, until = _nanos(case.query.get("sinceTime")), _nanos(case.query.get("untilTime"))
    if since is None or until is None or until > since:
        return
    if until == since:
        del case.query["untilTime"]
    else:
        case.query["sinceTime"], case.query["untilTime"] = case.query["untilTime"], case.query["sinceTime"]


# === 4. follow responses ===


def _follows(url: str) -> bool:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True).get("follow")
    return values is not None and len(values) == 1 and values[0] in TRUE


def _read_follow(response, *args, **kwargs):
    """Reads a follow stream until it ends, stays silent for FOLLOW_WINDOW,
    or FOLLOW_MAX pass; then closes it. `requests` calls it once the
    status line and headers are in (within the run's request timeout),
    before the body is read."""
    if response.status_code != 200 or not _follows(response.request.url):
        return response
    conn = response.raw.connection
    if conn is not None and conn.sock is not None:
        conn.sock.settimeout(FOLLOW_WINDOW)
    body = bytearray()
    deadline = time.monotonic() + FOLLOW_MAX
    try:
        while time.monotonic() < deadline:
            chunk = response.raw.read1(64 * 1024, decode_content=True)
            if not chunk:
                break
            body += chunk
    except urllib3.exceptions.ReadTimeoutError:
        pass
    # What `requests` keeps as the body once it has read it.
    response._content = bytes(body)
    response.close()
    return response


@schemathesis.hook
def before_call(ctx, case, kwargs):
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    query = case.query or {}
    if positive:
        if "cursor" in query and case.operation.path != "/logs":
            _give_issued_cursor(case)
        _order_window(case)
        # The case is as valid as it was: an issued cursor matches Cursor,
        # the window's bounds are still times. Schemathesis would check the
        # edited query again, reading `start` and `attemptChoice` as
        # objects where the query now has their members (it does not read
        # exploded `form` objects back), and call every edited case
        # invalid; so the edit is taken as the case's starting state.
        case._sync_validated_hashes()
    kwargs.setdefault("hooks", {}).setdefault("response", []).append(_read_follow)


# === 5. request heads over 16 KiB ===

HEAD_LIMIT = 16 * 1024


def _head_bytes(request) -> int:
    """The size of a request's head as it went out: request line, Host
    (added by http.client), the other headers, and the blank line."""
    url = urllib.parse.urlsplit(request.url)
    target = url.path + ("?" + url.query if url.query else "")
    head = f"{request.method} {target} HTTP/1.1\r\nHost: {url.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    return len(head.encode()) + 2


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """podlogd answers 431 to a request head over 16 KiB, whatever the
    request asks (docs/openapi.yaml, HeadTooLarge): a long enough
    parameter, in or out of its schema, gets there. For such a request a
    431 is neither a valid request refused nor an invalid one accepted;
    for a shorter one it stays a failure."""
    if failure.code in ("ST201", "ST202") and response.status_code == 431:
        return _head_bytes(response.request) <= HEAD_LIMIT
    return True


# === 6. format=json events ===

# OpenAPI 3.0 cannot type the lines of an NDJSON body: docs/openapi.yaml
# gives it as a string and each line's schema as components/schemas/Event.
# The body is handed to schemathesis as that string, and this check holds
# each whole line to Event. Text bodies are handed over as strings too:
# schemathesis has no reader for them, and would not check them at all.


@schemathesis.deserializer("application/x-ndjson")
def _ndjson_text(ctx, response):
    # Whole lines only: a follow stream closed by the hooks may end inside one.
    return response.content[: response.content.rfind(b"\n") + 1].decode("utf-8")


@schemathesis.deserializer("text/plain")
def _plain_text(ctx, response):
    # format=text and cri pass a log's bytes through, invalid UTF-8 included
    # (docs/openapi.yaml, Log): only that the body is text is checked there,
    # while /healthz and /readyz are held to their exact answers.
    return response.content.decode("utf-8", "replace")


def _json_schema(node):
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` becomes a type."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


_event_validator = None


def _event_schema():
    global _event_validator
    if _event_validator is None:
        import jsonschema_rs
        import yaml

        doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "openapi.yaml")
        with open(doc, encoding="utf-8") as f:
            components = yaml.safe_load(f)["components"]
        _event_validator = jsonschema_rs.validator_for(
            {"$ref": "#/components/schemas/Event", "components": _json_schema(components)},
            validate_formats=True,
        )
    return _event_validator


@schemathesis.check
def json_events_conform(ctx, response, case):
    """Each whole line of an application/x-ndjson answer is an Event."""
    ctype = response.headers.get("content-type", [""])[0]
    if response.status_code != 200 or not ctype.startswith("application/x-ndjson"):
        return None
    validator = _event_schema()
    for n, line in enumerate(response.content.split(b"\n")[:-1], 1):
        event = json.loads(line)
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(event)]
        if errors:
            raise AssertionError(f"line {n} is not an Event: {'; '.join(errors[:3])}\n{line[:500]!r}")
    return None

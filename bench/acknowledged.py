#!/usr/bin/env python3
"""Per-request evidence for bench/instances' fault runs (standard library only).

`load` keeps reader and writer threads busy against one HTTPS address, each on its own
kept-alive mutual-TLS connection, and writes one line per attempt to a file:

    started  finished  kind  status  request_id  code

(epoch seconds; kind `read` or `write`; status the HTTP status, or `conn` for a
connection error, with the exception's class as code; request_id the `X-Request-Id`
header, `-` if none; code the problem's `code` for a non-2xx answer, `-` otherwise). A
connection error closes the connection and the thread opens a new one. It stops when
--stop-file exists or after --max-seconds.

`report` reads that file and the request ids of the audit entries added during the run
(one a line) and prints what was sent and answered, and whether every 2xx answer's
request id has its entry. Exits 1 if one is missing, if any answer was 500 `internal`, or
if a requirement given with --down (answers between those two instants: only 503
`audit_unavailable`, at least one of them, and no 2xx for a request sent in between) or
--tail-ok (2xx reads and writes in the run's last seconds) is not met.
"""

import argparse
import collections
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time


def load(args):
    deadline = time.time() + args.max_seconds
    body = open(args.write_body, "rb").read()
    lines = []
    lock = threading.Lock()

    def context(principal):
        ctx = ssl.create_default_context(cafile=args.ca)
        ctx.load_cert_chain(
            os.path.join(args.clients, principal + ".pem"),
            os.path.join(args.clients, principal + ".key"),
        )
        return ctx

    def worker(kind):
        if kind == "write":
            ctx, method, path, payload = context(args.writer), "POST", args.write_path, body
            headers = {"content-type": "application/json"}
        else:
            ctx, method, path, payload = context(args.reader), "GET", args.read_path, None
            headers = {}
        conn = None
        mine = []
        while time.time() < deadline and not os.path.exists(args.stop_file):
            started = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(
                        args.host, args.port, context=ctx, timeout=args.timeout
                    )
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
                request_id = response.getheader("x-request-id") or "-"
                code = "-"
                if not 200 <= status < 300:
                    try:
                        problem = json.loads(data)
                        code = str(problem.get("code") or problem.get("type") or "?")
                    except ValueError:
                        code = "not-json"
                mine.append((started, time.time(), kind, str(status), request_id, code))
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException, ssl.SSLError) as error:
                mine.append((started, time.time(), kind, "conn", "-", type(error).__name__))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()
        with lock:
            lines.extend(mine)

    threads = [threading.Thread(target=worker, args=("write",)) for _ in range(args.writers)]
    threads += [threading.Thread(target=worker, args=("read",)) for _ in range(args.readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines.sort()
    with open(args.out, "w") as out:
        for line in lines:
            out.write("%.6f\t%.6f\t%s\t%s\t%s\t%s\n" % line)
    print(f"  load: {len(lines)} attempts by {len(threads)} threads -> {args.out}")


def report(args):
    attempts = []
    with open(args.responses) as f:
        for line in f:
            started, finished, kind, status, request_id, code = line.rstrip("\n").split("\t")
            attempts.append((float(started), float(finished), kind, status, request_id, code))
    entries = set()
    with open(args.ids) as f:
        for line in f:
            if line.strip():
                entries.add(line.strip())

    ok = [a for a in attempts if a[3].isdigit() and a[3].startswith("2")]
    unavailable = collections.Counter(a[5] for a in attempts if a[3] == "503")
    other = collections.Counter(
        f"{a[3]} {a[5]}" for a in attempts if a[3].isdigit() and not a[3].startswith("2") and a[3] != "503"
    )
    conn = collections.Counter(a[5] for a in attempts if a[3] == "conn")
    by_kind = collections.Counter(a[2] for a in ok)
    missing = [a for a in ok if a[4] not in entries]
    failures = []

    def fmt(counter):
        return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) or "none"

    print(f"  requests sent: {len(attempts)} (responses {len(attempts) - sum(conn.values())}, "
          f"connection errors {sum(conn.values())})")
    print(f"  2xx: {len(ok)} (reads {by_kind['read']}, writes {by_kind['write']})")
    print(f"  503: {sum(unavailable.values())} (by problem code: {fmt(unavailable)})")
    print(f"  other statuses: {sum(other.values())} ({fmt(other)})")
    print(f"  connection errors: {sum(conn.values())} ({fmt(conn)})")
    print(f"  audit entries added: {len(entries)}")
    print(f"  2xx request ids without an audit entry: {len(missing)}")
    if missing:
        failures.append(f"{len(missing)} acknowledged requests have no audit entry")
        for a in missing[:10]:
            print(f"    missing: {a[4]} ({a[2]}, status {a[3]}, answered at {a[1]:.3f})")
    if other.get("500 internal"):
        failures.append(f"{other['500 internal']} answers were 500 internal")

    if args.down:
        down_from, down_to = args.down
        # Answered while down: the gateways could write nothing, so only 503
        # audit_unavailable may come back, and no 2xx for a request sent while down.
        during = [a for a in attempts if down_from <= a[1] <= down_to]
        statuses = collections.Counter(
            a[3] if a[3] == "conn" or a[3].startswith("2") else f"{a[3]} {a[5]}" for a in during
        )
        print(f"  answered while PostgreSQL was down ({down_to - down_from:.1f} s, from pg_ctl stop "
              f"returning to pg_ctl start): {len(during)}; statuses: {fmt(statuses)}")
        ok_sent_down = [a for a in during if a[3].startswith("2") and a[0] >= down_from]
        if ok_sent_down:
            failures.append(f"{len(ok_sent_down)} requests sent and answered while the database "
                            "was down got a 2xx")
        if not statuses.get("503 audit_unavailable"):
            failures.append("no 503 audit_unavailable while the database was down")
        bad = {s: n for s, n in statuses.items() if s not in ("503 audit_unavailable", "conn")
               and not s.startswith("2")}
        if bad:
            failures.append(f"answers other than 503 audit_unavailable while down: {fmt(bad)}")
        sent = [a for a in attempts if down_from <= a[0] <= down_to]
        sent_statuses = collections.Counter(
            a[3] if a[3] == "conn" or a[3].startswith("2") else f"{a[3]} {a[5]}" for a in sent
        )
        print(f"  sent while down (answered whenever): {len(sent)}; statuses: {fmt(sent_statuses)}")
        first_ok = min((a[1] for a in attempts if a[0] > down_to and a[3].startswith("2")),
                       default=None)
        if first_ok is not None:
            print(f"  first 2xx for a request sent after pg_ctl start began: {first_ok - down_to:.2f} s "
                  "after it began")
    if args.tail_ok:
        end = max((a[1] for a in attempts), default=0)
        tail = [a for a in ok if a[1] >= end - args.tail_ok]
        tail_by_kind = collections.Counter(a[2] for a in tail)
        print(f"  2xx in the last {args.tail_ok:g} s: {len(tail)} (reads {tail_by_kind['read']}, "
              f"writes {tail_by_kind['write']})")
        if not tail_by_kind["read"] or not tail_by_kind["write"]:
            failures.append(f"reads and writes did not both succeed in the last {args.tail_ok:g} s")
    for f in failures:
        print(f"  FAILED: {f}")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("load")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="CA file the server certificate chains to")
    p.add_argument("--clients", required=True, help="directory of <principal>.pem and .key")
    p.add_argument("--reader", default="police-mentor")
    p.add_argument("--writer", default="scas-dispatch")
    p.add_argument("--read-path", required=True)
    p.add_argument("--write-path", required=True)
    p.add_argument("--write-body", required=True, help="file holding the JSON body of a write")
    p.add_argument("--readers", type=int, default=4)
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--timeout", type=float, default=15.0, help="socket timeout, seconds")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("responses")
    r.add_argument("ids", help="request ids of the audit entries added during the run")
    r.add_argument("--down", type=float, nargs=2, metavar=("FROM", "TO"),
                   help="epoch seconds while the database was down")
    r.add_argument("--tail-ok", type=float, metavar="SECONDS",
                   help="require 2xx reads and writes within the run's last SECONDS")
    args = parser.parse_args()
    if args.command == "load":
        load(args)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())

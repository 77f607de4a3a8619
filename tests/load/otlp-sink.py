#!/usr/bin/env python3
"""A stand-in OTLP/HTTP receiver for tests/load/telemetry.sh: accepts every export with 200 and an empty (valid)
protobuf response, so that the exporters do their full work without a collector. At exit it prints how many spans,
log records and metric streams arrived per instrumentation scope, read from the protobuf wire format (the three OTLP
export requests share one nesting: resource items (1) > scope items (2) > scope (1, name 1) and items (2)), so a
measurement can show that nothing was dropped on the way."""
import collections
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = {"requests": 0, "bytes": 0}
items = collections.Counter()


def fields(buf):
    """(field number, wire type, value) of one protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            length, i = varint(buf, i)
            value, i = buf[i:i + length], i + length
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def count(signal_name, body):
    for number, _, resource_item in fields(body):
        if number != 1:
            continue
        for number, _, scope_item in fields(resource_item):
            if number != 2:
                continue
            scope, n = "", 0
            for number, _, value in fields(scope_item):
                if number == 1:
                    scope = next((v.decode() for f, _, v in fields(value) if f == 1), "")
                elif number == 2:
                    n += 1
            items[(signal_name, scope)] += n


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        received["requests"] += 1
        received["bytes"] += length
        try:
            count(self.path.rstrip("/").rsplit("/", 1)[-1], body)
        except (ValueError, IndexError):
            items[("unreadable", self.path)] += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)
try:
    server.serve_forever()
finally:
    print(f"otlp-sink: {received['requests']} exports, {received['bytes']} bytes", file=sys.stderr)
    for (signal_name, scope), n in sorted(items.items()):
        print(f"otlp-sink: {signal_name} {scope or '(no scope name)'}: {n}", file=sys.stderr)

#!/usr/bin/env python3
"""A stand-in OTLP/HTTP receiver for tests/load/telemetry.sh: accepts every export with 200 and an empty (valid)
protobuf response, and counts the bytes, so that the exporters do their full work without a collector."""
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        received["requests"] += 1
        received["bytes"] += length
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

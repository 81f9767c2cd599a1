"""A webhook receiver for the tests: verifies each request with the Standard Webhooks
reference library and appends what it got to a JSON-lines file.

usage: webhook_receiver.py SECRET OUT_DIR [PORT]
Listens on PORT (by default a free loopback port) and writes the port to OUT_DIR/port once
listening; answers 204 to a verified request and 400 to one that does not verify. Each
record has the time it was received (seconds since the epoch).
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

secret, out_dir = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
lock = threading.Lock()
hook = Webhook(secret)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"headers": headers, "body": body.decode("utf-8", "replace"), "at": time.time()}
        try:
            hook.verify(body, headers)
            record["verified"] = True
        except Exception as e:  # any failure to verify is an answer of its own
            record["verified"] = False
            record["error"] = str(e)
        with lock, open(os.path.join(out_dir, "received.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(204 if record["verified"] else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
tmp = os.path.join(out_dir, "port.tmp")
with open(tmp, "w") as f:
    f.write(str(server.server_address[1]))
os.rename(tmp, os.path.join(out_dir, "port"))
server.serve_forever()

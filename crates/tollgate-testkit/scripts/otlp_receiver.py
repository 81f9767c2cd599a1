"""An OTLP trace receiver for the tests, on the OpenTelemetry protos: OTLP/gRPC and
OTLP/HTTP (protobuf, POST /v1/traces). Appends each span it receives to
OUT_DIR/spans.jsonl (name, kind, ids in hex, attributes, the resource's service name).

usage: otlp_receiver.py OUT_DIR
Listens on two free loopback ports and writes them to OUT_DIR/port (gRPC) and
OUT_DIR/http_port once listening.
"""

import json
import os
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

out_dir = sys.argv[1]
lock = threading.Lock()


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def record(request, protocol):
    lines = []
    for rs in request.resource_spans:
        service = next(
            (value(a.value) for a in rs.resource.attributes if a.key == "service.name"), None
        )
        for ss in rs.scope_spans:
            for s in ss.spans:
                lines.append(
                    json.dumps(
                        {
                            "name": s.name,
                            "kind": s.kind,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                            "attributes": {a.key: value(a.value) for a in s.attributes},
                            "service": service,
                            "protocol": protocol,
                        }
                    )
                )
    with lock, open(os.path.join(out_dir, "spans.jsonl"), "a") as f:
        for line in lines:
            f.write(line + "\n")


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        record(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


class Http(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        record(request, "http")
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def publish(name, port):
    tmp = os.path.join(out_dir, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, os.path.join(out_dir, name))


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
grpc_port = server.add_insecure_port("127.0.0.1:0")
server.start()
http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
publish("http_port", http.server_address[1])
publish("port", grpc_port)
http.serve_forever()

"""An Envoy rate limit service client built from Envoy's own protos with grpcio-tools.

Usage: rls_client.py PROTO_ROOT OUT_DIR ADDRESS < steps.json > answers.json

PROTO_ROOT holds the data-plane-api, xds and protoc-gen-validate trees (as shipped in the
envoy-types crate). Stubs for rls.proto and everything it imports are generated into
OUT_DIR; then each step of the JSON list on stdin is sent as one ShouldRateLimit call:

    {"domain": "d", "descriptors": [{"entries": [["k", "v"]], "hits_addend": 0,
     "limit": {"requests_per_unit": 5, "unit": "MINUTE"}}], "hits_addend": 1}

and its answer (or gRPC error) is written as one JSON object per step, in order.
"""

import json
import os
import re
import sys

from grpc_tools import protoc
import grpc


def proto_closure(roots, start):
    """Every .proto reachable from `start` through imports, except Google's bundled ones."""
    seen, todo = [], [start]
    while todo:
        name = todo.pop()
        if name in seen or name.startswith("google/protobuf/"):
            continue
        path = next((os.path.join(r, name) for r in roots if os.path.exists(os.path.join(r, name))), None)
        if path is None:
            raise SystemExit(f"{name}: not found under {roots}")
        seen.append(name)
        with open(path, encoding="utf-8") as f:
            todo.extend(re.findall(r'^import (?:public )?"([^"]+)";', f.read(), re.M))
    return seen


def generate(proto_root, out):
    roots = [os.path.join(proto_root, d) for d in ("data-plane-api", "xds", "protoc-gen-validate", "googleapis", "cel-spec/proto")]
    files = proto_closure(roots, "envoy/service/ratelimit/v3/rls.proto")
    bundled = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", f"-I{bundled}"] + [f"-I{r}" for r in roots if os.path.isdir(r)]
    args += [f"--python_out={out}", f"--grpc_python_out={out}"] + files
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Generated packages are plain folders; make them importable.
    for dirpath, _, _ in os.walk(out):
        init = os.path.join(dirpath, "__init__.py")
        if not os.path.exists(init):
            open(init, "w").close()


def main():
    proto_root, out, address = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    generate(proto_root, out)
    sys.path.insert(0, out)
    from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
    from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2

    steps = json.load(sys.stdin)
    answers = []
    with grpc.insecure_channel(address) as channel:
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)
        for step in steps:
            req = rls_pb2.RateLimitRequest(domain=step["domain"], hits_addend=step.get("hits_addend", 0))
            for d in step["descriptors"]:
                desc = req.descriptors.add()
                for k, v in d["entries"]:
                    e = desc.entries.add()
                    e.key, e.value = k, v
                if "hits_addend" in d:
                    desc.hits_addend.value = d["hits_addend"]
                if "limit" in d:
                    desc.limit.requests_per_unit = d["limit"]["requests_per_unit"]
                    desc.limit.unit = rls_pb2.RateLimitResponse.RateLimit.Unit.Value(d["limit"]["unit"])
            try:
                resp = stub.ShouldRateLimit(req, timeout=5)
            except grpc.RpcError as e:
                answers.append({"error": e.code().name, "message": e.details()})
                continue
            answers.append({
                "overall_code": rls_pb2.RateLimitResponse.Code.Name(resp.overall_code),
                "statuses": [{
                    "code": rls_pb2.RateLimitResponse.Code.Name(s.code),
                    "limit": None if not s.HasField("current_limit") else {
                        "requests_per_unit": s.current_limit.requests_per_unit,
                        "unit": rls_pb2.RateLimitResponse.RateLimit.Unit.Name(s.current_limit.unit),
                        "name": s.current_limit.name,
                    },
                    "remaining": s.limit_remaining,
                    "reset_s": s.duration_until_reset.seconds + s.duration_until_reset.nanos / 1e9,
                } for s in resp.statuses],
                "headers": {h.key: h.value for h in resp.response_headers_to_add},
            })
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()

"""Asks a gRPC server what it serves, through server reflection (grpcio-reflection's client).

Usage: reflect.py ADDRESS  -> {"services": [...], "methods": [...], "input": "..."}
"""

import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main():
    with grpc.insecure_channel(sys.argv[1]) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(db.get_services())
        service = DescriptorPool(db).FindServiceByName("envoy.service.ratelimit.v3.RateLimitService")
        print(json.dumps({
            "services": services,
            "methods": [m.name for m in service.methods],
            "input": service.methods[0].input_type.full_name,
        }))


if __name__ == "__main__":
    main()

//! Compiles Envoy's rate limit service protos (as the envoy-types crate ships them) into a
//! descriptor set, which the gRPC door serves through server reflection.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ENVOY_PROTO_DIR");
    let root = proto_root();
    let dirs: Vec<PathBuf> = [
        "data-plane-api",
        "xds",
        "protoc-gen-validate",
        "googleapis",
        "cel-spec/proto",
    ]
    .iter()
    .map(|d| root.join(d))
    .filter(|d| d.is_dir())
    .collect();
    let set = match protox::compile(["envoy/service/ratelimit/v3/rls.proto"], &dirs) {
        Ok(set) => set,
        Err(e) => panic!("compiling Envoy's rls.proto from {}: {e}", root.display()),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let bytes = prost::Message::encode_to_vec(&set);
    if let Err(e) = std::fs::write(out.join("rls_descriptor.bin"), bytes) {
        panic!("writing the descriptor set: {e}");
    }
}

/// `ENVOY_PROTO_DIR`, or the `proto` folder of the envoy-types package Cargo resolved.
fn proto_root() -> PathBuf {
    if let Ok(dir) = std::env::var("ENVOY_PROTO_DIR") {
        return dir.into();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(&manifest)
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!("cargo metadata: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("cargo metadata: {e}"),
    };
    let meta: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("cargo metadata output: {e}"),
    };
    let path = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "envoy-types")
        .and_then(|p| p["manifest_path"].as_str())
        .map(|m| {
            Path::new(m)
                .parent()
                .unwrap_or(Path::new("."))
                .join("proto")
        });
    match path {
        Some(p) => {
            println!("cargo:rerun-if-changed={}", p.display());
            p
        }
        None => panic!("envoy-types not found by cargo metadata; set ENVOY_PROTO_DIR"),
    }
}

//! Compiles Envoy's rate limit service protos (as the envoy-types crate ships them) into a
//! descriptor set, which the gRPC door serves through server reflection.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "brought under these lints after its restructuring"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ENVOY_PROTO_DIR");
    let root = proto_root();
    // The tests hand the same protos to a Python client.
    println!("cargo:rustc-env=ENVOY_PROTO_ROOT={}", root.display());
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

/// `ENVOY_PROTO_DIR`, else the `proto` folder of the envoy-types version in Cargo.lock
/// in Cargo's registry sources, else where `cargo metadata` says envoy-types is.
fn proto_root() -> PathBuf {
    if let Ok(dir) = std::env::var("ENVOY_PROTO_DIR") {
        return dir.into();
    }
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    if let Some(dir) = from_registry(&manifest) {
        println!("cargo:rerun-if-changed={}", dir.display());
        return dir;
    }
    from_metadata(&manifest)
}

fn from_registry(manifest: &Path) -> Option<PathBuf> {
    let lock = std::fs::read_to_string(manifest.join("../../Cargo.lock")).ok()?;
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"envoy-types\""))?
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))?
        .trim_end_matches('"')
        .to_owned();
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok()?;
    let mut found = std::fs::read_dir(home.join("registry/src"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join(format!("envoy-types-{version}/proto")))
        .filter(|p| p.is_dir());
    found.next()
}

fn from_metadata(manifest: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(manifest)
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!(
            "finding Envoy's protos (set ENVOY_PROTO_DIR to envoy-types' proto folder): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
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

//! Build script: declares the crate's own cfg names so `cargo check` does not warn about them.
//! No side effects: it never touches git, the network or files outside `OUT_DIR`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // `coreactor_loom`: production atomics come from loom (see `src/sync/`).
    println!("cargo::rustc-check-cfg=cfg(coreactor_loom)");
    // `coreactor_loom_bug`: injects deliberate ordering bugs that the loom models must catch.
    println!(
        "cargo::rustc-check-cfg=cfg(coreactor_loom_bug, values(\"doorbell\", \"polled\", \"inject\", \"inject_bounded\", \"inject_token\", \"inject_append\", \"migrate\", \"ring\"))"
    );
}

//! Generates the bus messages from `proto/` with protox, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = ["events", "decisions", "interactions", "missed_joins"]
        .map(|name| format!("{proto_root}/invitrack/bus/v1/{name}.proto"));
    println!("cargo:rerun-if-changed={proto_root}");
    let descriptors = protox::compile(files, [proto_root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}

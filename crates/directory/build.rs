//! Compiles `proto/directory.proto` with protox (a pure-Rust protobuf compiler: no `protoc`
//! needed) and generates the tonic client and server from the descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["../../proto/directory.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["../../proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}

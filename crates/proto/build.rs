//! Compiles `proto/*.proto` with protox (a pure-Rust protobuf compiler: no `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["../../proto/whisk.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["../../proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}

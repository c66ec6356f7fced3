//! Compiles `proto/directory.proto` with protox (a pure-Rust protobuf compiler: no `protoc`
//! needed) into the tonic server stub only: the messages and the client come from
//! `whisk-directory-api` (`extern_path`), so both sides share one set of types.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["../../proto/directory.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["../../proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .extern_path(".whisk.directory.v1", "::whisk_directory_api::proto")
        .compile_fds(fds)?;
    Ok(())
}

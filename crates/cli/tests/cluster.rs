//! The ansible five-node deploy on five network namespaces of this machine:
//! `scripts/cluster-test.sh` makes the namespaces node-0..4 on a bridge, runs the `netns`
//! environment's playbooks (ansible/), checks the deployment (`whisk status`, the npm client
//! conformance suite through node-0's gateway, the seed's myname0..3 on four invokers, ring and
//! allreduce across nodes, node-3 killed under load) and cleans it up with
//! `openwhisk.yml -e mode=clean`. The test fails, never skips, when the script cannot run
//! (not root, ansible not installable, a tool missing): its output says why.

use std::process::{Command, Stdio};
use std::time::Instant;

#[test]
fn ansible_deploys_five_netns_nodes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/cluster-test.sh");
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .env("WHISK_BIN", env!("CARGO_BIN_EXE_whisk"))
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    eprintln!("cluster-test.sh took {:?}", started.elapsed());
    assert!(
        status.success(),
        "{} failed ({status}); its output above says where",
        script.display()
    );
}

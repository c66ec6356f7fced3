//! The services a scenario starts as child processes, and the ports it gives them.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child process, stopped with SIGTERM when dropped (SIGKILL after 5 s). SIGTERM lets a
/// whisk service leave its Kafka groups cleanly (the next run's services join at once) and
/// an nginx master stop its workers: a SIGKILL'd master leaves them running, holding what they
/// inherited (such as the benchmark lock of `flock`).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

//! The Docker runtime's container creation rate: hardened containers (non-root, read-only root,
//! no capabilities, a network per namespace) created until their proxy answers, then removed —
//! the factory alone, 1 and 4 at a time.

use crate::load;
use crate::table::{self, Row};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use whisk_invoker::{ContainerFactory, ContainerSpec, DockerConfig, DockerFactory};

/// How many containers to create per row.
pub struct Plan {
    /// Containers created per row.
    pub creates: usize,
}

/// Creates and destroys `plan.creates` containers per row; prints the table.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let factory = Arc::new(DockerFactory::new(DockerConfig {
        prefix: format!("whisk_bench_{}", std::process::id()),
        ..DockerConfig::default()
    }));
    let mut rows = vec![];
    for clients in [1usize, 4] {
        let n = Arc::new(AtomicUsize::new(0));
        let f = factory.clone();
        let m = load::run(clients, plan.creates, move || {
            let f = f.clone();
            let i = n.fetch_add(1, Ordering::Relaxed);
            async move {
                let c = f
                    .create(ContainerSpec {
                        name: format!("whisk_bench_docker_{}_{i}", std::process::id()),
                        family: "python".into(),
                        image: None,
                        memory_mb: 128,
                        env: vec![],
                        peers_dir: None,
                    })
                    .await?;
                c.destroy().await;
                Ok(())
            }
        })
        .await;
        rows.push(Row::measured(
            "create (until /init can be called) + destroy a Docker container",
            clients,
            &m,
        ));
    }
    factory.cleanup().await?;
    table::print("Docker container creation rate (DockerFactory)", &rows);
    Ok(())
}

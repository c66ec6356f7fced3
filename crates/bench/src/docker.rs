//! The Docker runtime's container creation rate: hardened containers (non-root, read-only root,
//! no capabilities, a network per namespace) created until their proxy answers, then removed —
//! the factory alone, 1 and 4 at a time.

use crate::load;
use crate::table::{self, Row};
use std::sync::Arc;
use whisk_invoker::{ContainerFactory, DockerConfig, DockerFactory};

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
        let m = load::create_and_destroy(factory.clone(), "docker", clients, plan.creates).await;
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

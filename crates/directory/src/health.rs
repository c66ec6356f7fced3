//! [`RedisHealth`]: the probe of the Redis a directory keeps its state in, for `whisk status`:
//! `PING`, then `INFO server` for its version. Both only read.

use std::time::Duration;

use async_trait::async_trait;
use redis::RedisError;
use whisk_core::health::{error_chain, Checked, Health};

/// Probes the Redis at a URL.
#[derive(Debug, Clone)]
pub struct RedisHealth {
    url: String,
    timeout: Duration,
}

impl RedisHealth {
    /// The Redis at `url` (`redis://host:port`); connecting and each command are bounded by
    /// `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            url: url.to_string(),
            timeout,
        }
    }

    async fn version(&self) -> Result<String, RedisError> {
        let client = redis::Client::open(self.url.as_str())?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| format!("redis {}", v.trim()))
            .unwrap_or(pong))
    }
}

#[async_trait]
impl Health for RedisHealth {
    fn name(&self) -> &str {
        "redis"
    }

    fn address(&self) -> String {
        self.url.clone()
    }

    async fn check(&self) -> Checked {
        self.version().await.map_err(|e| error_chain(&e))
    }
}

//! [`Health`]: the question every seam answers for `whisk status` — does the service behind it
//! answer, and what does it say? Each seam has a small probe implementing it next to its
//! backend: the store (`whisk_store::health`: CouchDB, or the embedded store's file), the bus
//! (`whisk_bus::kafka::KafkaHealth`: a metadata request), the directory
//! (`whisk_directory_api::DirectoryHealth`: a gRPC watch; `whisk_directory::RedisHealth` for
//! its Redis), and the controller (`GET /api/v1`, in `whisk status` itself).
//!
//! A probe only reads: it never creates a topic, a database, a lease or a document, so probing
//! a platform leaves it exactly as it was.

use async_trait::async_trait;

/// What one probe found: `Ok(detail)`, the service answered (what it said, e.g.
/// `CouchDB 3.3.3`), or `Err(reason)`, why it counts as down.
pub type Checked = Result<String, String>;

/// A probe of one service.
#[async_trait]
pub trait Health: Send + Sync {
    /// The service probed, as operators name it (`couchdb`, `kafka`, `directory`, ...).
    fn name(&self) -> &str;
    /// Where it is looked for: a URL, brokers, an address or a file.
    fn address(&self) -> String;
    /// Probes once, bounded by the probe's own settings (callers may bound it further).
    async fn check(&self) -> Checked;
}

/// An error and its causes on one line (`a: b: c`), leaving out a cause whose text is already
/// there: clients such as reqwest and tonic keep the useful part (connection refused, a TLS
/// refusal) in the causes.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn chain_names_each_new_cause_once() {
        let e = E(
            "transport error",
            Some(Box::new(E(
                "tcp connect error",
                Some(Box::new(E("connection refused", None))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "transport error: tcp connect error: connection refused"
        );
        let repeated = E(
            "error: connection refused",
            Some(Box::new(E("connection refused", None))),
        );
        assert_eq!(error_chain(&repeated), "error: connection refused");
    }
}

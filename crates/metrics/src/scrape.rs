//! What a scrape answers: the families of [`crate::global`], then the gauges and counters of
//! the process's [`Source`]s read at that moment, then `# EOF` — as one text body served at
//! `GET /metrics` by [`router`] (merged into the controller's API) or [`serve`] (a listener
//! of its own, for roles without an HTTP port).

use prometheus_client::encoding::{text, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The exposition's content type (OpenMetrics text, which Prometheus negotiates).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A role's state, read at each scrape.
pub trait Source: Send + Sync + 'static {
    /// Adds this source's values to `out`.
    fn collect(&self, out: &mut Gauges);
}

impl<F: Fn(&mut Gauges) + Send + Sync + 'static> Source for F {
    fn collect(&self, out: &mut Gauges) {
        self(out)
    }
}

/// Values read at scrape time: families of gauges (or of counters kept elsewhere), each
/// sample with its labels.
#[derive(Debug, Default)]
pub struct Gauges {
    families: Vec<ScrapeFamily>,
}

#[derive(Debug)]
struct ScrapeFamily {
    name: &'static str,
    help: &'static str,
    counter: bool,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Gauges {
    fn family(
        &mut self,
        name: &'static str,
        help: &'static str,
        counter: bool,
    ) -> &mut ScrapeFamily {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(ScrapeFamily {
                    name,
                    help,
                    counter,
                    samples: vec![],
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// Gauge `name` with `labels` is `value`.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.family(name, help, false).samples.push((labels, value));
    }

    /// Counter `name` (exposed as `name_total`) with `labels` is `value`.
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: u64,
    ) {
        let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.family(name, help, true)
            .samples
            .push((labels, value as f64));
    }

    fn encode(self, out: &mut String) -> std::fmt::Result {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Collected(self.families)));
        text::encode_registry(out, &registry)
    }
}

#[derive(Debug)]
struct Collected(Vec<ScrapeFamily>);

impl prometheus_client::collector::Collector for Collected {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let kind = if f.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut family = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            for (labels, value) in &f.samples {
                let metric = family.encode_family(labels)?;
                if f.counter {
                    ConstCounter::new(*value as u64).encode(metric)?;
                } else {
                    ConstGauge::new(*value).encode(metric)?;
                }
            }
        }
        Ok(())
    }
}

/// The exposition: the global families, then `sources`' values, then `# EOF`.
pub fn encode(sources: &[Arc<dyn Source>]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut gauges = Gauges::default();
    for s in sources {
        s.collect(&mut gauges);
    }
    let written = text::encode_registry(&mut out, crate::global().registry())
        .and_then(|()| gauges.encode(&mut out))
        .and_then(|()| text::encode_eof(&mut out));
    if let Err(e) = written {
        // Writing into a String does not fail; a label that cannot be written would.
        tracing::warn!(error = %e, "encoding the metrics failed");
        let _ = writeln!(out, "# EOF");
    }
    out
}

/// The content type of the classic text format (what a client that does not ask for
/// OpenMetrics gets).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// [`encode`] rewritten in the classic text format (version 0.0.4): a counter family's
/// `# HELP` and `# TYPE` name its `_total` samples, and no `# EOF`.
pub fn encode_text(sources: &[Arc<dyn Source>]) -> String {
    let open = encode(sources);
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len() + 16 * counters.len());
    for line in open.lines() {
        if line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].into_iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(described.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// `GET /metrics` answering [`encode`] of `sources` in OpenMetrics to a client that asks for
/// it (Prometheus does), else [`encode_text`].
pub fn router(sources: Vec<Arc<dyn Source>>) -> axum::Router {
    let sources: Arc<[Arc<dyn Source>]> = sources.into();
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let sources = sources.clone();
            async move {
                let open = headers
                    .get_all(axum::http::header::ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.contains("application/openmetrics-text"));
                let (kind, body) = match open {
                    true => (CONTENT_TYPE, encode(&sources)),
                    false => (TEXT_CONTENT_TYPE, encode_text(&sources)),
                };
                ([(axum::http::header::CONTENT_TYPE, kind)], body)
            }
        }),
    )
}

/// Serves [`router`] of `sources` on `listener` until `shutdown`: the internal metrics
/// listener of a process (`metrics_listen`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    sources: Vec<Arc<dyn Source>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(sources))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

//! [`init`]: installs the process's `tracing` subscriber once — the stderr log with its
//! `EnvFilter` (`RUST_LOG` wins over the role's default), plus, when [`crate::otlp`] says
//! export is on, a `tracing-opentelemetry` layer sending the platform's spans (targets
//! `whisk*`, any level; events stay in the log) through a batch processor to the OTLP
//! endpoint. The returned [`Telemetry`] flushes and stops the exporter on
//! [`Telemetry::shutdown`] or when dropped.

use crate::otlp::{OtlpSettings, SettingsError, SERVICE_NAME};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// How long [`Telemetry::shutdown`] waits for the last spans to reach the collector.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

static TRACER: OnceLock<Tracer> = OnceLock::new();

/// The exporting tracer, once [`init`] installed one (for spans with explicit times).
pub(crate) fn tracer() -> Option<&'static Tracer> {
    TRACER.get()
}

/// What a role asks of [`init`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The log filter when `RUST_LOG` is unset (`info`, `warn,rdkafka=error`, ...).
    pub default_filter: String,
    /// `service.name` of the exported spans unless `OTEL_SERVICE_NAME` (or
    /// `OTEL_RESOURCE_ATTRIBUTES`) names one: `whisk-controller`, `whisk-invoker`, ...
    pub service_name: String,
    /// Whether this process may export at all (clients and the action proxy never do).
    pub export: bool,
}

impl Options {
    /// A service that exports when configured.
    pub fn service(default_filter: &str, service_name: &str) -> Self {
        Self {
            default_filter: default_filter.to_string(),
            service_name: service_name.to_string(),
            export: true,
        }
    }

    /// A client: the log only.
    pub fn client(default_filter: &str) -> Self {
        Self {
            default_filter: default_filter.to_string(),
            service_name: "whisk".into(),
            export: false,
        }
    }
}

/// Why export could not be set up (the log still is).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The `OTEL_*` settings are unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// The installed subscriber's exporter; flushes on [`Telemetry::shutdown`] or drop.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    settings: Option<OtlpSettings>,
}

impl Telemetry {
    /// The export settings in use, `None` when not exporting.
    pub fn settings(&self) -> Option<&OtlpSettings> {
        self.settings.as_ref()
    }

    /// Sends the spans still buffered and stops the exporter (idempotent).
    pub fn shutdown(&mut self) {
        if let Some(p) = self.provider.take() {
            crate::set_exporting(false);
            if let Err(e) = p.shutdown_with_timeout(FLUSH_TIMEOUT) {
                eprintln!("whisk: flushing trace spans failed: {e}");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs the subscriber (once per process: later calls only log).
///
/// Call it inside the Tokio runtime when gRPC export may be configured. A setting that
/// cannot be used is reported on stderr and leaves export off; the log works regardless.
pub fn init(opts: Options) -> Telemetry {
    let filter = || {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&opts.default_filter))
    };
    let settings = if opts.export {
        OtlpSettings::from_process_env()
    } else {
        Ok(None)
    };
    let (settings, provider) = match settings
        .map_err(TelemetryError::from)
        .and_then(|s| match s {
            Some(s) => provider(&s, &opts.service_name).map(|p| Some((s, p))),
            None => Ok(None),
        }) {
        Ok(Some((s, p))) => (s, p),
        Ok(None) => {
            // The log alone, exactly as before export existed (one global filter).
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(filter())
                .try_init();
            return Telemetry::default();
        }
        Err(e) => {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(filter())
                .try_init();
            tracing::error!(error = %e, "OpenTelemetry export is off");
            return Telemetry::default();
        }
    };
    let tracer = provider.tracer("whisk");
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_level(false)
        .with_target(false)
        // Contexts are read from the spans themselves (`current_context`), never from
        // OpenTelemetry's thread-local one: no attach/detach on every poll of a traced future.
        .with_context_activation(false)
        .with_filter(filter_fn(|m| {
            m.is_span() && m.target().starts_with("whisk")
        }));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    if tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .is_err()
    {
        // A subscriber was installed before (a test harness): it would never see our spans.
        let _ = provider.shutdown();
        return Telemetry::default();
    }
    let _ = TRACER.set(tracer);
    crate::set_exporting(true);
    tracing::info!(endpoint = %settings.endpoint, protocol = ?settings.protocol, "exporting trace spans over OTLP");
    Telemetry {
        provider: Some(provider),
        settings: Some(settings),
    }
}

/// The tracer provider of `settings`: a batch processor (its own thread; `OTEL_BSP_*`) over
/// the OTLP exporter, `service.name` defaulting to `service`.
pub fn provider(
    settings: &OtlpSettings,
    service: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = settings.exporter()?;
    let named = std::env::var(SERVICE_NAME).is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let mut resource = Resource::builder();
    if !named {
        resource = resource.with_service_name(service.to_string());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

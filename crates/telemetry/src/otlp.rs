//! The OTLP exporter's settings, read from the standard OpenTelemetry environment variables:
//! export is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set (and `OTEL_TRACES_EXPORTER` is not `none`); the protocol comes from
//! `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`,
//! `http/protobuf` — the default, as the specification says — or `http/json`). Endpoint,
//! headers (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TRACES_HEADERS`), timeout and compression are
//! read by `opentelemetry-otlp` itself; the service name (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`) and sampler (`OTEL_TRACES_SAMPLER`) by the SDK, and the batch
//! processor's `OTEL_BSP_*` too.

use opentelemetry_otlp::{Protocol, WithExportConfig};
use std::collections::HashMap;

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector for every signal (`/v1/traces` is appended
/// for HTTP).
pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the traces endpoint, used as it is.
pub const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`.
pub const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (wins over [`PROTOCOL`]).
pub const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// `OTEL_TRACES_EXPORTER`: `none` turns export off whatever the endpoint says.
pub const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// `OTEL_SERVICE_NAME`.
pub const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A protocol other than `grpc`, `http/protobuf` and `http/json`.
    #[error("unsupported OTLP protocol {0:?} (grpc, http/protobuf or http/json)")]
    Protocol(String),
    /// The exporter refused its settings (a malformed endpoint, header, ...).
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(String),
}

/// Whether and how to export spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The protocol.
    pub protocol: OtlpProtocol,
    /// The configured endpoint (informational: the exporter reads the variables itself).
    pub endpoint: String,
}

/// The OTLP transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318).
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies (port 4318).
    HttpJson,
}

impl OtlpProtocol {
    /// Parses the specification's names.
    pub fn parse(s: &str) -> Result<Self, SettingsError> {
        match s.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" | "" => Ok(Self::HttpProtobuf),
            "http/json" => Ok(Self::HttpJson),
            other => Err(SettingsError::Protocol(other.to_string())),
        }
    }
}

impl OtlpSettings {
    /// The settings of the environment `env`: `None` when export is off.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Option<Self>, SettingsError> {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if get(TRACES_EXPORTER).is_some_and(|v| v.eq_ignore_ascii_case("none")) {
            return Ok(None);
        }
        let Some(endpoint) = get(TRACES_ENDPOINT).or_else(|| get(ENDPOINT)) else {
            return Ok(None);
        };
        let protocol =
            OtlpProtocol::parse(get(TRACES_PROTOCOL).or_else(|| get(PROTOCOL)).unwrap_or(""))?;
        Ok(Some(Self {
            protocol,
            endpoint: endpoint.to_string(),
        }))
    }

    /// The process's settings.
    pub fn from_process_env() -> Result<Option<Self>, SettingsError> {
        Self::from_env(&std::env::vars().collect())
    }

    /// Builds the span exporter (gRPC needs a Tokio runtime: call it inside one).
    pub fn exporter(&self) -> Result<opentelemetry_otlp::SpanExporter, SettingsError> {
        let b = opentelemetry_otlp::SpanExporter::builder();
        let built = match self.protocol {
            OtlpProtocol::Grpc => b.with_tonic().with_protocol(Protocol::Grpc).build(),
            OtlpProtocol::HttpProtobuf => b.with_http().with_protocol(Protocol::HttpBinary).build(),
            OtlpProtocol::HttpJson => b.with_http().with_protocol(Protocol::HttpJson).build(),
        };
        built.map_err(|e| SettingsError::Exporter(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert_eq!(OtlpSettings::from_env(&env(&[])).unwrap(), None);
        assert_eq!(
            OtlpSettings::from_env(&env(&[(PROTOCOL, "grpc")])).unwrap(),
            None
        );
        let none = env(&[(ENDPOINT, "http://c:4318"), (TRACES_EXPORTER, "none")]);
        assert_eq!(OtlpSettings::from_env(&none).unwrap(), None);
    }

    #[test]
    fn protocol_and_endpoint_by_precedence() {
        let s = OtlpSettings::from_env(&env(&[(ENDPOINT, "http://c:4318")]))
            .unwrap()
            .unwrap();
        assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
        let s = OtlpSettings::from_env(&env(&[
            (ENDPOINT, "http://c:4318"),
            (TRACES_ENDPOINT, "http://t:4317"),
            (PROTOCOL, "http/json"),
            (TRACES_PROTOCOL, "grpc"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.protocol, OtlpProtocol::Grpc);
        assert_eq!(s.endpoint, "http://t:4317");
        let s = OtlpSettings::from_env(&env(&[(TRACES_ENDPOINT, "x"), (PROTOCOL, "http/json")]))
            .unwrap()
            .unwrap();
        assert_eq!(s.protocol, OtlpProtocol::HttpJson);
        assert!(OtlpSettings::from_env(&env(&[(ENDPOINT, "x"), (PROTOCOL, "thrift")])).is_err());
    }
}

//! The server's own failures, apart from the library's: a configuration no server can
//! start with, a port it cannot take, a runtime or thread it cannot start, and inference
//! that panicked. A library error (a model that does not load) is kept as it is.

use std::net::SocketAddr;

/// Why a server did not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A model failed in the library (loading it, asking its size).
    #[error(transparent)]
    Model(#[from] embedkit::Error),
    /// The models or options cannot make a server (none given, one given twice).
    #[error("{0}")]
    Config(String),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A thread or the async runtime could not be started.
    #[error("cannot start the {what}: {source}")]
    Start {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The metrics registry refused a metric.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Inference panicked; the server stopped (an orchestrator should restart it).
    #[error("inference panicked ({0}); the server stopped")]
    InferencePanicked(String),
}

/// Result alias of the server.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

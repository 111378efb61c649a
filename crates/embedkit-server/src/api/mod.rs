//! The wire format: the JSON error answer, and the body extractor that checks
//! Content-Type, reads within the request's deadline and size limit, and names the field
//! a bad body got wrong; the typed request and response bodies (OpenAI's, TEI's, Cohere's
//! shapes) are in `bodies`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

mod bodies;
pub use bodies::*;

/// When a request must be answered by: set when it arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub Instant);

/// An error answer: TEI's `{"error", "error_type"}`, or OpenAI's
/// `{"error": {"message", "type", "param", "code"}}` on `/v1/` routes.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub openai: bool,
    pub retry_after: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            openai: false,
            retry_after: false,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
    }

    /// A request whose answer, or one of whose inputs, is over a limit: 413, as TEI.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "validation", message)
    }

    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", message)
    }

    pub fn overloaded(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
        e.retry_after = true;
        e
    }

    /// In the shape the route's clients expect.
    pub fn shaped_for(mut self, path: &str) -> Self {
        self.openai = path.starts_with("/v1/");
        self
    }
}

/// TEI's error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: String,
    pub error_type: String,
}

/// OpenAI's error body.
#[derive(Serialize, ToSchema)]
pub struct OpenAiErrorResponse {
    pub error: OpenAiError,
}

#[derive(Serialize, ToSchema)]
pub struct OpenAiError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = if self.openai {
            let body = OpenAiErrorResponse {
                error: OpenAiError {
                    message: self.message,
                    kind: self.kind.to_string(),
                    param: None,
                    code: None,
                },
            };
            (self.status, Json(body)).into_response()
        } else {
            let body = ErrorResponse {
                error: self.message,
                error_type: self.kind.to_string(),
            };
            (self.status, Json(body)).into_response()
        };
        if self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body of type `T`: `Content-Type: application/json` (else 415), read
/// within the size limit (413) and the request's deadline (408), parsed with the path of
/// the field that was wrong (400 for bad JSON, 422 for a wrong field).
pub(crate) struct JsonBody<T>(pub T);

fn is_json(value: Option<&HeaderValue>) -> bool {
    let Some(v) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let path = req.uri().path().to_string();
        let shape = |e: ApiError| e.shaped_for(&path);
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(shape(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON, sent with `Content-Type: application/json`",
            )));
        }
        let deadline = req
            .extensions()
            .get::<Deadline>()
            .map(|d| d.0)
            .unwrap_or_else(|| Instant::now() + state.limits.request_timeout);
        let limit = state.limits.max_body_bytes;
        let read = axum::body::to_bytes(req.into_body(), limit);
        let bytes = match tokio::time::timeout_at(deadline.into(), read).await {
            Err(_) => {
                return Err(shape(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "the request body did not arrive within the request timeout",
                )))
            }
            Ok(Err(e)) => {
                // axum reports the limit as a `LengthLimitError` source; its text is
                // the stable part of its public surface.
                let mut too_large = false;
                let mut source: Option<&dyn std::error::Error> = Some(&e);
                while let Some(s) = source {
                    too_large |= s.to_string().contains("length limit");
                    source = s.source();
                }
                return Err(shape(if too_large {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("the request body is larger than the limit of {limit} bytes"),
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        format!("the request body could not be read: {e}"),
                    )
                }));
            }
            Ok(Ok(bytes)) => bytes,
        };
        parse(&bytes).map(JsonBody).map_err(shape)
    }
}

/// `T` from JSON bytes, or the error that names what was wrong and where.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would take a JSON array for a struct (its fields in order): only objects.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        parse_any::<serde_json::Value>(bytes)?;
        return Err(ApiError::validation(
            "the request body must be a JSON object",
        ));
    }
    parse_any(bytes)
}

fn parse_any<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| (e.path().to_string(), e.into_inner()))
        .and_then(|v| de.end().map(|()| v).map_err(|e| (".".to_string(), e)));
    value.map_err(|(path, inner)| {
        match inner.classify() {
            serde_json::error::Category::Data => {
                let at = if path == "." {
                    String::new()
                } else {
                    format!("`{path}`: ")
                };
                let message = inner.to_string();
                let message =
                    if message.contains("expected struct") || message.contains("expected a map") {
                        "the request body must be a JSON object".to_string()
                    } else {
                        message
                    };
                ApiError::validation(format!("{at}{message}"))
            }
            _ => {
                // serde_json's words for a lone UTF-16 surrogate ("unexpected end of hex
                // escape") do not tell a client what it sent.
                let message = inner.to_string();
                let hint = if message.contains("hex escape") || message.contains("surrogate") {
                    " (a \\u escape must be a character: a lone UTF-16 surrogate such as \
                     \\ud800 is not one)"
                } else {
                    ""
                };
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("malformed JSON: {message}{hint}"),
                )
            }
        }
    })
}

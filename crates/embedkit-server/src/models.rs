//! The models a server answers with: any number, of any family. Routes ask for
//! capabilities, never families: a request's `model` field picks a model, which must
//! offer what the route serves; without one, the first model served that offers it
//! answers. A model with several capabilities answers every route they allow.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use embedkit::{Capability, EmbeddingModel, LoadOptions, ModelKind, Operations, Result};

use crate::ServerError;

use crate::api::{ApiError, ModelCard};

/// One served model and its name.
pub struct Served {
    pub name: String,
    pub model: EmbeddingModel,
    /// Its sentence-transformers prompts (TEI's `prompt_name`), or why they are unusable.
    prompts: std::result::Result<BTreeMap<String, String>, String>,
    /// Put before each text of a request that names no prompt (TEI's `--default-prompt`).
    default_prompt: Option<String>,
}

/// A prompt put before each text of the requests that name none: TEI's
/// `--default-prompt-name` (one of the model's prompts) or `--default-prompt` (a text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultPrompt {
    Name(String),
    Text(String),
}

impl Served {
    /// Loads `name` as the registry says it is, with `load` (its `specific_model_path`
    /// the model's files, if given). Loaded now, not on first use, so a bad model fails
    /// at start rather than on a client's request.
    pub fn load(name: &str, mut load: LoadOptions) -> Result<Served> {
        load.lazy_load = false;
        let model = EmbeddingModel::load(name, load)?;
        // A prompts file that cannot be read fails the start, not a request.
        let prompts = model.prompts()?;
        Ok(Served::with_prompts(model, Ok(prompts)))
    }

    /// A model loaded by the caller (a family's `Model`, or a handle).
    pub fn new(model: impl Into<EmbeddingModel>) -> Served {
        let model = model.into();
        let prompts = model.prompts().map_err(|e| e.to_string());
        Served::with_prompts(model, prompts)
    }

    fn with_prompts(
        model: EmbeddingModel,
        prompts: std::result::Result<BTreeMap<String, String>, String>,
    ) -> Served {
        Served {
            name: model.name().to_string(),
            prompts,
            default_prompt: None,
            model,
        }
    }

    /// The same model with a prompt for the requests that name none; a name the model's
    /// prompts lack is an error now, not on a request.
    pub fn with_default_prompt(
        mut self,
        prompt: DefaultPrompt,
    ) -> std::result::Result<Served, ServerError> {
        let text = match prompt {
            DefaultPrompt::Text(t) => t,
            DefaultPrompt::Name(name) => self
                .prompt(&name)
                .map_err(|e| ServerError::Config(format!("default prompt: {}", e.message)))?
                .to_string(),
        };
        self.default_prompt = Some(text);
        Ok(self)
    }

    /// The prompt for requests that name none.
    pub(crate) fn default_prompt(&self) -> Option<&str> {
        self.default_prompt.as_deref()
    }

    pub fn kind(&self) -> ModelKind {
        self.model.kind()
    }

    /// The vector size, for models that have one.
    pub fn dim(&self) -> Option<usize> {
        self.model.dim()
    }

    /// The longest token sequence a text model takes (loading the model if lazy).
    pub fn max_length(&self) -> Result<Option<usize>> {
        self.model.max_length()
    }

    /// The most vectors one image gives, for models of multi-vector images.
    pub fn image_vectors_at_most(&self) -> Result<Option<usize>> {
        self.model.image_vectors_at_most()
    }

    pub fn card(&self) -> ModelCard {
        ModelCard {
            id: self.name.clone(),
            object: "model",
            created: 0,
            owned_by: self
                .name
                .split_once('/')
                .map(|(org, _)| org.to_string())
                .unwrap_or_else(|| "embedkit".into()),
            kind: self.kind(),
            capabilities: self.model.capabilities().to_vec(),
            dim: self.dim(),
        }
    }

    /// The text of the prompt `name` (TEI's `prompt_name`), or why there is none.
    pub(crate) fn prompt(&self, name: &str) -> std::result::Result<&str, ApiError> {
        let prompts = self
            .prompts
            .as_ref()
            .map_err(|e| ApiError::backend(e.clone()))?;
        prompts.get(name).map(String::as_str).ok_or_else(|| {
            let known: Vec<&str> = prompts.keys().map(String::as_str).collect();
            ApiError::validation(if known.is_empty() {
                format!(
                    "prompt_name {name:?}: model {} names no prompts (they are read from {})",
                    self.name,
                    embedkit::registry::PROMPTS_CONFIG
                )
            } else {
                format!(
                    "prompt_name {name:?} is not one of model {}'s prompts: {}",
                    self.name,
                    known.join(", ")
                )
            })
        })
    }

    /// Whether a request's `model` names this one: the full name or the part after the
    /// organization, in any case.
    fn answers_to(&self, requested: &str) -> bool {
        let tail = self.name.rsplit('/').next().unwrap_or(&self.name);
        self.name.eq_ignore_ascii_case(requested) || tail.eq_ignore_ascii_case(requested)
    }
}

/// The served models, in the order given.
pub struct Models {
    list: Vec<Served>,
}

impl Models {
    /// At least one model, no name twice.
    pub fn new(list: Vec<Served>) -> crate::Result<Models> {
        if list.is_empty() {
            return Err(ServerError::Config(
                "a server needs at least one model".into(),
            ));
        }
        for (i, m) in list.iter().enumerate() {
            if list[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&m.name))
            {
                return Err(ServerError::Config(format!(
                    "model {} is given twice",
                    m.name
                )));
            }
        }
        Ok(Models { list })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Served> {
        self.list.iter()
    }

    pub fn get(&self, i: usize) -> &Served {
        &self.list[i]
    }

    /// The model a request on a route that serves `wanted` asks for: the one named,
    /// which must offer one of them, or else the first model served that offers the
    /// first of them (then the second, ...).
    pub(crate) fn pick(
        &self,
        requested: Option<&str>,
        wanted: &[Capability],
        route: &str,
    ) -> std::result::Result<usize, ApiError> {
        match requested.filter(|r| !r.is_empty()) {
            Some(name) => {
                let Some(i) = self.list.iter().position(|m| m.answers_to(name)) else {
                    let names: Vec<&str> = self.list.iter().map(|m| m.name.as_str()).collect();
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "model_not_found",
                        format!(
                            "model {name:?} is not served here; served: {}",
                            names.join(", ")
                        ),
                    ));
                };
                let m = &self.list[i].model;
                if wanted.iter().any(|&c| m.can(c)) {
                    return Ok(i);
                }
                let mut routes: Vec<&str> = Vec::new();
                for &c in m.capabilities() {
                    if !routes.contains(&route_of(c)) {
                        routes.push(route_of(c));
                    }
                }
                Err(ApiError::validation(format!(
                    "model {} offers {}, which {route} does not serve; use {}",
                    self.list[i].name,
                    offers(m),
                    routes.join(" or ")
                )))
            }
            None => wanted
                .iter()
                .find_map(|&c| self.list.iter().position(|m| m.model.can(c)))
                .ok_or_else(|| {
                    let wanted: Vec<&str> = wanted.iter().map(|c| c.name()).collect();
                    ApiError::new(
                        StatusCode::FAILED_DEPENDENCY,
                        "unavailable",
                        format!(
                            "no model served offers {} for {route}; start the server with \
                             --model NAME of a model that does",
                            wanted.join(" or ")
                        ),
                    )
                }),
        }
    }
}

impl Models {
    /// As [`pick`](Self::pick), for a route that needs every one of `wanted` from one
    /// model (several outputs of one pass): the one named, which must offer them all, or
    /// else the first model served that does.
    pub(crate) fn pick_offering(
        &self,
        requested: Option<&str>,
        wanted: &[Capability],
        route: &str,
    ) -> std::result::Result<usize, ApiError> {
        let offers_all = |m: &EmbeddingModel| wanted.iter().all(|&c| m.can(c));
        let names: Vec<&str> = wanted.iter().map(|c| c.name()).collect();
        if let Some(name) = requested.filter(|r| !r.is_empty()) {
            let i = self.pick(Some(name), wanted, route)?;
            let served = &self.list[i];
            if offers_all(&served.model) {
                return Ok(i);
            }
            return Err(ApiError::validation(format!(
                "model {} offers {}; {route} asked for {}",
                served.name,
                offers(&served.model),
                names.join(", ")
            )));
        }
        self.list
            .iter()
            .position(|m| offers_all(&m.model))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::FAILED_DEPENDENCY,
                    "unavailable",
                    format!(
                        "no model served offers {} together for {route}; start the server \
                         with --model NAME of a model that does (BAAI/bge-m3)",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// What a model offers, for errors: its capabilities' names.
pub(crate) fn offers(model: &EmbeddingModel) -> String {
    let names: Vec<&str> = model.capabilities().iter().map(|c| c.name()).collect();
    names.join(", ")
}

/// Where a capability is served.
fn route_of(c: Capability) -> &'static str {
    match c {
        Capability::DenseText | Capability::DenseTokenIds | Capability::DenseImage => {
            "/embed or /v1/embeddings"
        }
        Capability::SparseText => "/embed_sparse",
        Capability::MultiVectorText | Capability::MultiVectorImage => "/embed_late",
        Capability::TokenVectors => "/embed_all",
        Capability::PairScores => "/rerank",
        Capability::Tokens => "/tokenize",
        // A capability newer than the server's routes.
        _ => "no route of this server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_models_is_a_configuration_error() {
        let e = Models::new(Vec::new()).err().expect("no models refused");
        assert!(matches!(e, ServerError::Config(_)), "{e}");
        assert!(e.to_string().contains("at least one model"), "{e}");
    }
}

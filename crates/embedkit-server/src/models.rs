//! The models a server answers with: any number, of any family. The family comes from
//! the registry; a request's `model` field picks one, and the first of each family is
//! the default for that family's routes.

use axum::http::StatusCode;
use embedkit::{
    Error, ImageEmbedding, LateInteractionMultimodalEmbedding, LateInteractionTextEmbedding,
    LoadOptions, ModelKind, Result, SparseTextEmbedding, TextCrossEncoder, TextEmbedding,
};

use crate::api::{ApiError, ModelCard};

/// A loaded model of one family.
pub enum Handle {
    Dense(TextEmbedding),
    Image(ImageEmbedding),
    Sparse(SparseTextEmbedding),
    Late(LateInteractionTextEmbedding),
    Multimodal(LateInteractionMultimodalEmbedding),
    Rerank(TextCrossEncoder),
}

/// One served model and its name.
pub struct Served {
    pub name: String,
    pub handle: Handle,
}

impl Served {
    /// Loads `name` as the family the registry says it is, with `load` (its
    /// `specific_model_path` the model's files, if given). Loaded now, not on first use,
    /// so a bad model fails at start rather than on a client's request.
    pub fn load(name: &str, mut load: LoadOptions) -> Result<Served> {
        load.lazy_load = false;
        let handle = match embedkit::registry::kind_of(name)? {
            ModelKind::Dense => {
                Handle::Dense(TextEmbedding::builder(name).load_options(load).build()?)
            }
            ModelKind::Image => {
                Handle::Image(ImageEmbedding::builder(name).load_options(load).build()?)
            }
            ModelKind::Sparse => Handle::Sparse(
                SparseTextEmbedding::builder(name)
                    .load_options(load)
                    .build()?,
            ),
            ModelKind::LateInteraction => Handle::Late(
                LateInteractionTextEmbedding::builder(name)
                    .load_options(load)
                    .build()?,
            ),
            ModelKind::Multimodal => Handle::Multimodal(
                LateInteractionMultimodalEmbedding::builder(name)
                    .load_options(load)
                    .build()?,
            ),
            ModelKind::Rerank => {
                // A reranker's batch size is its own (fastembed's per-model default).
                load.batch_size = None;
                Handle::Rerank(TextCrossEncoder::builder(name).load_options(load).build()?)
            }
        };
        Ok(Served::new(handle))
    }

    /// A model loaded by the caller.
    pub fn new(handle: Handle) -> Served {
        let name = match &handle {
            Handle::Dense(m) => m.description().core.model.clone(),
            Handle::Image(m) => m.description().core.model.clone(),
            Handle::Sparse(m) => m.description().core.model.clone(),
            Handle::Late(m) => m.description().core.model.clone(),
            Handle::Multimodal(m) => m.description().core.model.clone(),
            Handle::Rerank(m) => m.description().core.model.clone(),
        };
        Served { name, handle }
    }

    pub fn kind(&self) -> ModelKind {
        match &self.handle {
            Handle::Dense(_) => ModelKind::Dense,
            Handle::Image(_) => ModelKind::Image,
            Handle::Sparse(_) => ModelKind::Sparse,
            Handle::Late(_) => ModelKind::LateInteraction,
            Handle::Multimodal(_) => ModelKind::Multimodal,
            Handle::Rerank(_) => ModelKind::Rerank,
        }
    }

    /// The vector size, for families with one.
    pub fn dim(&self) -> Option<usize> {
        match &self.handle {
            Handle::Dense(m) => Some(m.embedding_size()),
            Handle::Image(m) => Some(m.embedding_size()),
            Handle::Late(m) => Some(m.embedding_size()),
            Handle::Multimodal(m) => Some(m.embedding_size()),
            Handle::Sparse(_) | Handle::Rerank(_) => None,
        }
    }

    /// The longest token sequence a text family takes (loading the model if lazy).
    pub fn max_length(&self) -> Result<Option<usize>> {
        match &self.handle {
            Handle::Dense(m) => m.max_length(),
            Handle::Sparse(m) => m.max_length(),
            Handle::Late(m) => m.max_length(),
            Handle::Multimodal(_) | Handle::Image(_) | Handle::Rerank(_) => Ok(None),
        }
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
            dim: self.dim(),
        }
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
    pub fn new(list: Vec<Served>) -> Result<Models> {
        if list.is_empty() {
            return Err(Error::InvalidArgument(
                "a server needs at least one model".into(),
            ));
        }
        for (i, m) in list.iter().enumerate() {
            if list[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&m.name))
            {
                return Err(Error::InvalidArgument(format!(
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

    /// The model a request on a route of the `kinds` families asks for: the one named,
    /// or the first of the first family served.
    pub(crate) fn pick(
        &self,
        requested: Option<&str>,
        kinds: &[ModelKind],
        route: &str,
    ) -> std::result::Result<usize, ApiError> {
        let served = |k: &ModelKind| format!("{k:?}").to_lowercase();
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
                let kind = self.list[i].kind();
                if kinds.contains(&kind) {
                    Ok(i)
                } else {
                    Err(ApiError::validation(format!(
                        "model {} is a {} model, which {route} does not serve; use {}",
                        self.list[i].name,
                        served(&kind),
                        route_of(kind)
                    )))
                }
            }
            None => kinds
                .iter()
                .find_map(|k| self.list.iter().position(|m| m.kind() == *k))
                .ok_or_else(|| {
                    let wanted: Vec<String> = kinds.iter().map(served).collect();
                    ApiError::new(
                        StatusCode::FAILED_DEPENDENCY,
                        "unavailable",
                        format!(
                            "no {} model is served for {route}; start the server with \
                             --model NAME of that family",
                            wanted.join(" or ")
                        ),
                    )
                }),
        }
    }
}

/// Where a family's models are served.
fn route_of(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Dense | ModelKind::Image => "/embed or /v1/embeddings",
        ModelKind::Sparse => "/embed_sparse",
        ModelKind::LateInteraction | ModelKind::Multimodal => "/embed_late",
        ModelKind::Rerank => "/rerank",
    }
}

//! Loading a handle: by name, the registry deciding the family, with the capabilities a
//! front end needs checked before the graph is loaded.

use serde::Deserialize;

use super::{Capability, Capable, EmbeddingModel, Operations};
use crate::engine::Model;
use crate::error::{Error, Result};
use crate::options::LoadOptions;
use crate::pipeline::Family;
use crate::registry::{self, Kind};

impl EmbeddingModel {
    /// Loads the registry's model `name` (built-in or registered) as the family the
    /// registry says it is.
    pub fn load(name: &str, load: LoadOptions) -> Result<Self> {
        Self::load_with(name, load, &serde_json::Value::Null)
    }

    /// As [`load_with`](Self::load_with), for a front end that needs one of `wanted`
    /// (a `TextEmbedding` needs dense vectors of texts): a model that offers none of them
    /// is an `Unsupported` error naming what it offers, before its graph is loaded.
    pub fn load_for(
        name: &str,
        load: LoadOptions,
        settings: &serde_json::Value,
        wanted: &[Capability],
    ) -> Result<Self> {
        Self::load_checked(name, load, settings, |model| {
            if wanted.is_empty() || wanted.iter().any(|&c| model.can(c)) {
                return Ok(());
            }
            Err(model.refusal(
                &wanted
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(" or "),
            ))
        })
    }

    /// As [`load_for`](Self::load_for), for a front end that needs every one of `wanted`
    /// (dense, sparse and multi-vector outputs of one pass).
    pub fn load_offering(
        name: &str,
        load: LoadOptions,
        settings: &serde_json::Value,
        wanted: &[Capability],
    ) -> Result<Self> {
        Self::load_checked(name, load, settings, |model| {
            match wanted.iter().find(|&&c| !model.can(c)) {
                Some(c) => Err(model.refusal(c.name())),
                None => Ok(()),
            }
        })
    }

    /// Loads lazily, runs `check`, then loads the graph unless the options say lazy.
    fn load_checked(
        name: &str,
        mut load: LoadOptions,
        settings: &serde_json::Value,
        check: impl FnOnce(&Self) -> Result<()>,
    ) -> Result<Self> {
        let lazy = load.lazy_load;
        load.lazy_load = true;
        let model = Self::load_with(name, load, settings)?;
        check(&model)?;
        if !lazy {
            model.inner.load_now()?;
        }
        Ok(model)
    }

    fn refusal(&self, wanted: &str) -> Error {
        let offers: Vec<&str> = self.capabilities().iter().map(|c| c.name()).collect();
        Error::Unsupported(format!(
            "model {} offers {}, not {wanted}",
            self.name(),
            offers.join(", ")
        ))
    }

    /// As [`load`](Self::load), with the family's builder settings as a JSON object
    /// (`{"add_prefixes": true}` for dense models, `{"bm25": {"language": "german"}}`
    /// for sparse ones, ...; null or `{}` for the defaults). A key the family does not
    /// have is an error.
    pub fn load_with(name: &str, load: LoadOptions, settings: &serde_json::Value) -> Result<Self> {
        use crate::{
            bge_m3, image, late_interaction, late_interaction_multimodal, rerank, sparse, text,
        };
        match registry::kind_of(name)? {
            Kind::Dense => build::<text::Dense>(name, load, settings),
            Kind::Sparse => build::<sparse::Sparse>(name, load, settings),
            Kind::LateInteraction => build::<late_interaction::Colbert>(name, load, settings),
            Kind::Rerank => build::<rerank::CrossEncoder>(name, load, settings),
            Kind::Image => build::<image::Image>(name, load, settings),
            Kind::Multimodal => {
                build::<late_interaction_multimodal::Multimodal>(name, load, settings)
            }
            Kind::BgeM3 => build::<bge_m3::BgeM3>(name, load, settings),
            #[cfg(feature = "test-family")]
            Kind::Twin => build::<crate::twin::Twin>(name, load, settings),
        }
    }
}

/// The one place that maps a family to its loader: a new family adds a line to
/// [`EmbeddingModel::load_with`] and a registry table.
fn build<F: Family>(
    name: &str,
    load: LoadOptions,
    settings: &serde_json::Value,
) -> Result<EmbeddingModel>
where
    Model<F>: Capable,
{
    let mut builder = Model::<F>::builder(name).load_options(load);
    if !settings.is_null() {
        builder.settings = F::Settings::deserialize(settings)
            .map_err(|e| Error::InvalidArgument(format!("settings of {name}: {e}")))?;
    }
    Ok(builder.build()?.into())
}

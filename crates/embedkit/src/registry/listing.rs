//! Every family's table behind one interface ([`LISTINGS`]): what lookups by name,
//! `embedkit models` and Python's `list_supported_models` iterate.

use super::*;

/// One family's table behind one interface: what listings, lookups by name and the
/// front ends (`embedkit models`, Python's `list_supported_models`) iterate, so that a
/// new family is one line in [`LISTINGS`], not one in each of them.
pub struct Listing {
    pub kind: Kind,
    /// Its name in listings (JSON keys, Python's `list_supported_models(kind)`).
    pub key: &'static str,
    /// Its section title in tables.
    pub title: &'static str,
    rows: fn() -> Vec<ListedModel>,
    json: fn() -> serde_json::Result<serde_json::Value>,
    files: fn(&str) -> Option<ModelFiles>,
}

/// One model of a listing, as a table row shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedModel {
    pub model: String,
    pub dim: Option<usize>,
    pub size_in_gb: f64,
    pub detail: String,
    pub license: String,
}

impl Listing {
    const fn of<T: Describe>(kind: Kind, key: &'static str, title: &'static str) -> Listing {
        fn rows<T: Describe>() -> Vec<ListedModel> {
            T::table()
                .all()
                .iter()
                .map(|d| ListedModel {
                    model: d.name().to_string(),
                    dim: d.dim(),
                    size_in_gb: d.core().size_in_gb,
                    detail: d.detail(),
                    license: d.core().license.clone(),
                })
                .collect()
        }
        fn json<T: Describe>() -> serde_json::Result<serde_json::Value> {
            serde_json::to_value(T::table().all())
        }
        fn files<T: Describe>(name: &str) -> Option<ModelFiles> {
            T::table().get(name).ok().map(|d| d.files())
        }
        Listing {
            kind,
            key,
            title,
            rows: rows::<T>,
            json: json::<T>,
            files: files::<T>,
        }
    }

    /// Its models, built-in then registered, as table rows.
    pub fn models(&self) -> Vec<ListedModel> {
        (self.rows)()
    }

    /// Its full descriptions, built-in then registered, as JSON.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        (self.json)().map_err(|e| Error::Internal(format!("listing {}: {e}", self.key)))
    }

    /// The files of `name`, when it is one of its models.
    pub fn files_of(&self, name: &str) -> Option<ModelFiles> {
        (self.files)(name)
    }
}

/// Every family's table, in the order names are looked up.
pub static LISTINGS: &[Listing] = &[
    Listing::of::<DenseModelDescription>(Kind::Dense, "dense", "DENSE MODEL"),
    Listing::of::<SparseModelDescription>(Kind::Sparse, "sparse", "SPARSE MODEL"),
    Listing::of::<LateInteractionModelDescription>(
        Kind::LateInteraction,
        "late_interaction",
        "LATE-INTERACTION MODEL",
    ),
    Listing::of::<RerankerModelDescription>(Kind::Rerank, "rerank", "RERANKER"),
    Listing::of::<ImageModelDescription>(Kind::Image, "image", "IMAGE MODEL"),
    Listing::of::<MultimodalModelDescription>(
        Kind::Multimodal,
        "late_interaction_multimodal",
        "MULTIMODAL LATE-INTERACTION MODEL",
    ),
    Listing::of::<BgeM3ModelDescription>(
        Kind::BgeM3,
        "bge_m3",
        "DENSE + SPARSE + MULTI-VECTOR MODEL",
    ),
    #[cfg(feature = "test-family")]
    Listing::of::<TwinModelDescription>(Kind::Twin, "twin", "TEST FAMILY (DENSE + SPARSE)"),
];

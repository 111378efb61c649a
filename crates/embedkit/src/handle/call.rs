//! What a model can do ([`Capability`]) and what one call asks for ([`CallOptions`]).

use serde::Serialize;

use crate::late_interaction::MultiVector;
use crate::pipeline::{Prep, Purpose};
use crate::postprocess::{MuveraOptions, VectorType};
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;
use crate::tokenize::TruncationSide;

/// What a model can compute. Non-exhaustive: a new capability is not a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Capability {
    /// One dense vector per text.
    DenseText,
    /// One dense vector per token-id sequence (OpenAI's token-array input).
    DenseTokenIds,
    /// One dense vector per image.
    DenseImage,
    /// One sparse vector per text.
    SparseText,
    /// One matrix (a vector per token) per text.
    MultiVectorText,
    /// One matrix (a vector per patch) per image.
    MultiVectorImage,
    /// The model's vectors of each token of a text, before pooling (TEI's `/embed_all`).
    TokenVectors,
    /// One relevance score per (query, document) pair.
    PairScores,
    /// The texts' tokens as the model sees them.
    Tokens,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 9] = [
        Capability::DenseText,
        Capability::DenseTokenIds,
        Capability::DenseImage,
        Capability::SparseText,
        Capability::MultiVectorText,
        Capability::MultiVectorImage,
        Capability::TokenVectors,
        Capability::PairScores,
        Capability::Tokens,
    ];

    /// Its name as serialized (`dense_text`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Capability::DenseText => "dense_text",
            Capability::DenseTokenIds => "dense_token_ids",
            Capability::DenseImage => "dense_image",
            Capability::SparseText => "sparse_text",
            Capability::MultiVectorText => "multi_vector_text",
            Capability::MultiVectorImage => "multi_vector_image",
            Capability::TokenVectors => "token_vectors",
            Capability::PairScores => "pair_scores",
            Capability::Tokens => "tokens",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of one call, the same for every operation and front end. Fields a call's
/// operation does not use are ignored, except `dimensions`, which is refused where there
/// is no dense vector to shorten.
///
/// It reads from JSON by its field names ([`CallOptions::from_json`]; the Python
/// package forwards its keyword arguments so), so a new option is one field here and its
/// step in the handle.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CallOptions {
    /// Inputs per batch; default: the model's.
    pub batch_size: Option<usize>,
    /// Query, passage or plain document (prefixes, query paths).
    pub purpose: Purpose,
    /// Shorter dense vectors, for models trained for it (Matryoshka): the first
    /// `dimensions` values, L2-normalized again. The model's own size is always taken.
    pub dimensions: Option<usize>,
    /// L2-normalize each dense vector once more, last (TEI's `normalize`).
    pub normalize: bool,
    /// Sparse vectors keep only their `sparse_top_k` largest weights.
    #[serde(alias = "top_k")]
    pub sparse_top_k: Option<usize>,
    /// Sparse vectors drop weights below this.
    #[serde(alias = "min_weight")]
    pub sparse_min_weight: Option<f32>,
    /// Where an over-long text is cut (TEI's `truncation_direction`); `None`: where the
    /// model's tokenizer configuration says.
    #[serde(alias = "truncation_side")]
    pub truncation: Option<TruncationSide>,
    /// False: a text longer than the model takes is an `InvalidInput` error naming its
    /// position (TEI's `truncate: false`) instead of being cut. Default true.
    pub truncate: bool,
    /// How dense vectors are handed out: float32, int8 or binary (a front end's last
    /// step: [`VectorType::apply`]).
    #[serde(alias = "output_dtype")]
    pub output_type: VectorType,
    /// MUVERA's parameters for the fixed-size encodings of multi-vectors
    /// ([`Operations::embed_muvera`](super::Operations::embed_muvera)); `None`: fastembed's
    /// defaults.
    pub muvera: Option<MuveraOptions>,
    /// A ranking keeps only its `top_n` best (Cohere's and TEI's `top_n`;
    /// [`Operations::rank`](super::Operations::rank)), in memory for `top_n` only.
    pub top_n: Option<usize>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            batch_size: None,
            purpose: Purpose::default(),
            dimensions: None,
            normalize: false,
            sparse_top_k: None,
            sparse_min_weight: None,
            truncation: None,
            truncate: true,
            output_type: VectorType::default(),
            muvera: None,
            top_n: None,
        }
    }
}

impl CallOptions {
    /// The names [`from_json`](Self::from_json) takes (fields, then aliases).
    pub const NAMES: &'static [&'static str] = &[
        "batch_size",
        "purpose",
        "dimensions",
        "normalize",
        "sparse_top_k",
        "sparse_min_weight",
        "truncation",
        "truncate",
        "output_type",
        "muvera",
        "top_n",
        "top_k",
        "min_weight",
        "truncation_side",
        "output_dtype",
    ];

    /// Options from a JSON object of [`NAMES`](Self::NAMES) (`null` is the default of
    /// an optional field); an unknown name or a bad value is `InvalidArgument`.
    pub fn from_json(json: &str) -> crate::Result<Self> {
        let bad = |e: String| crate::Error::InvalidArgument(format!("call options: {e}"));
        let given: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        // One option at a time first, so that an error names the option it is about.
        for (name, value) in &given {
            if !Self::NAMES.contains(&name.as_str()) {
                return Err(bad(format!(
                    "unknown option `{name}`; expected one of {}",
                    Self::NAMES.join(", ")
                )));
            }
            let one =
                serde_json::Value::Object([(name.clone(), value.clone())].into_iter().collect());
            if let Err(e) = serde_json::from_value::<CallOptions>(one) {
                return Err(bad(format!("{name}: {e}")));
            }
        }
        serde_json::from_value(serde_json::Value::Object(given)).map_err(|e| bad(e.to_string()))
    }

    pub fn new() -> Self {
        Self::default()
    }
    pub fn truncate(mut self, yes: bool) -> Self {
        self.truncate = yes;
        self
    }
    pub fn output_type(mut self, t: VectorType) -> Self {
        self.output_type = t;
        self
    }
    pub fn batch_size(mut self, n: Option<usize>) -> Self {
        self.batch_size = n;
        self
    }
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }
    pub fn dimensions(mut self, d: Option<usize>) -> Self {
        self.dimensions = d;
        self
    }
    pub fn normalize(mut self, yes: bool) -> Self {
        self.normalize = yes;
        self
    }
    pub fn sparse_top_k(mut self, k: Option<usize>) -> Self {
        self.sparse_top_k = k;
        self
    }
    pub fn sparse_min_weight(mut self, w: Option<f32>) -> Self {
        self.sparse_min_weight = w;
        self
    }
    pub fn muvera(mut self, m: Option<MuveraOptions>) -> Self {
        self.muvera = m;
        self
    }
    pub fn top_n(mut self, n: Option<usize>) -> Self {
        self.top_n = n;
        self
    }
    pub fn truncation(mut self, side: Option<TruncationSide>) -> Self {
        self.truncation = side;
        self
    }
    /// What preparing this call's inputs needs to know.
    pub fn prep(&self) -> Prep {
        Prep::from(self.purpose).truncation(self.truncation)
    }
}

/// What one pass over texts gave, for each output asked for.
#[derive(Debug, Default)]
pub struct TextOutputs {
    pub dense: Option<Vec<Embedding>>,
    pub sparse: Option<Vec<SparseEmbedding>>,
    pub multi: Option<Vec<MultiVector>>,
}

/// What one text became, for each output asked for (the others `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextOutput {
    pub dense: Option<Embedding>,
    pub sparse: Option<SparseEmbedding>,
    pub multi: Option<MultiVector>,
}

impl TextOutput {
    /// Only the outputs in `wanted`.
    pub fn keep(self, wanted: &[Capability]) -> TextOutput {
        let want = |c| wanted.contains(&c);
        TextOutput {
            dense: self.dense.filter(|_| want(Capability::DenseText)),
            sparse: self.sparse.filter(|_| want(Capability::SparseText)),
            multi: self.multi.filter(|_| want(Capability::MultiVectorText)),
        }
    }
}

/// The outputs a text can have, which `embed_all` may ask for.
pub const TEXT_OUTPUTS: [Capability; 3] = [
    Capability::DenseText,
    Capability::SparseText,
    Capability::MultiVectorText,
];

impl TextOutputs {
    /// Empty columns for the outputs in `wanted`.
    pub(crate) fn wanting(wanted: &[Capability]) -> Self {
        fn column<T>(wanted: &[Capability], c: Capability) -> Option<Vec<T>> {
            wanted.contains(&c).then(Vec::new)
        }
        TextOutputs {
            dense: column(wanted, Capability::DenseText),
            sparse: column(wanted, Capability::SparseText),
            multi: column(wanted, Capability::MultiVectorText),
        }
    }

    /// Appends one text's outputs to the columns asked for.
    pub(crate) fn push(&mut self, one: TextOutput) {
        fn put<T>(column: &mut Option<Vec<T>>, value: Option<T>) {
            if let (Some(c), Some(v)) = (column.as_mut(), value) {
                c.push(v);
            }
        }
        put(&mut self.dense, one.dense);
        put(&mut self.sparse, one.sparse);
        put(&mut self.multi, one.multi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_read_and_nothing_else() {
        // Each name is accepted (a wrong value's error is about the value, never an
        // unknown field), and what is not a name is refused.
        for name in CallOptions::NAMES {
            let e = CallOptions::from_json(&format!("{{\"{name}\": \"?\"}}")).unwrap_err();
            assert!(!e.to_string().contains("unknown option"), "{name}: {e}");
        }
        let e = CallOptions::from_json(r#"{"dimension": 8}"#).unwrap_err();
        assert!(e.to_string().contains("unknown option `dimension`"), "{e}");
        // A bad value names its option.
        let e = CallOptions::from_json(r#"{"truncation_side": "middle"}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("truncation_side: unknown variant `middle`"),
            "{e}"
        );
        let e = CallOptions::from_json(r#"{"output_dtype": "int4"}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("output_dtype: unknown variant `int4`"),
            "{e}"
        );
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }

    /// The field names serde's derive hands to a deserializer of the struct.
    fn serde_fields() -> &'static [&'static str] {
        use serde::de::{self, Visitor};
        struct Capture;
        #[derive(Debug)]
        struct Fields(&'static [&'static str]);
        impl std::fmt::Display for Fields {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Fields {}
        impl de::Error for Fields {
            fn custom<T: std::fmt::Display>(_: T) -> Self {
                Fields(&[])
            }
        }
        impl<'de> de::Deserializer<'de> for Capture {
            type Error = Fields;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
                Err(Fields(&[]))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Fields> {
                Err(Fields(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        match <CallOptions as serde::Deserialize>::deserialize(Capture) {
            Err(Fields(fields)) => fields,
            Ok(_) => unreachable!(),
        }
    }

    #[test]
    fn names_list_every_field() {
        let fields = serde_fields();
        assert!(fields.contains(&"batch_size"), "{fields:?}");
        for f in fields {
            assert!(
                CallOptions::NAMES.contains(f),
                "{f} is missing from CallOptions::NAMES"
            );
        }
    }

    #[test]
    fn json_reads_as_the_builder_builds() {
        let o = CallOptions::from_json(
            r#"{"batch_size": 4, "purpose": "query", "dimensions": 64, "normalize": true,
                "top_k": 10, "min_weight": 0.5, "truncation_side": "left",
                "truncate": false, "output_dtype": "binary", "top_n": 3,
                "muvera": {"k_sim": 4, "seed": 7}}"#,
        )
        .unwrap();
        let built = CallOptions::new()
            .batch_size(Some(4))
            .purpose(Purpose::Query)
            .dimensions(Some(64))
            .normalize(true)
            .sparse_top_k(Some(10))
            .sparse_min_weight(Some(0.5))
            .truncation(Some(TruncationSide::Left))
            .truncate(false)
            .output_type(VectorType::Binary)
            .top_n(Some(3))
            .muvera(Some(MuveraOptions {
                k_sim: 4,
                random_seed: 7,
                ..MuveraOptions::default()
            }));
        assert_eq!(o, built);
        // Nothing given, or nulls: the defaults (truncation on, float32).
        assert_eq!(CallOptions::from_json("{}").unwrap(), CallOptions::new());
        let nulls = r#"{"batch_size": null, "dimensions": null, "truncation": null}"#;
        assert_eq!(CallOptions::from_json(nulls).unwrap(), CallOptions::new());
        assert!(CallOptions::new().truncate);
        assert!(CallOptions::from_json(r#"{"purpose": "queries"}"#).is_err());
    }
}

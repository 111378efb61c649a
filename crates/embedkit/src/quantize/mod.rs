//! The int8 tier ([`Precision::Int8`]): a model's ONNX graph rewritten at load so its
//! matrix products run on ONNX Runtime's integer kernels, calibrated on built-in text or
//! images through the family's own preprocessing, and cached beside the source file
//! under the source's sha256 and the scheme's version.
//!
//! The exact tier (the default) never comes here: its graphs are the files as given.

mod calibrate;
#[allow(clippy::all, missing_docs, rustdoc::all)]
mod onnx_proto;
mod plan;
mod proto;
mod rewrite;

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use sha2::{Digest, Sha256};

pub(crate) use calibrate::{images as calibration_images, pair_feeds, text_feeds, Calibrate};
use plan::Plan;
use rewrite::Scheme;

use crate::error::{Error, Result};
use crate::runtime::{Device, OnnxModel, RuntimeOptions};

/// How a model's arithmetic runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Precision {
    /// The model's own float arithmetic: vectors equal to fastembed's.
    #[default]
    Exact,
    /// Matrix products in int8 (weights per column, activations per call), calibrated
    /// and cached at first load: faster on CPUs with VNNI or AMX, close but not equal.
    Int8,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "exact" | "fp32" | "float" => Ok(Precision::Exact),
            "int8" => Ok(Precision::Int8),
            other => Err(Error::InvalidArgument(format!(
                "unknown precision {other:?}; expected exact or int8"
            ))),
        }
    }
}

impl TryFrom<String> for Precision {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Exact => "exact",
            Precision::Int8 => "int8",
        })
    }
}

/// The CPU's int8 dot-product units, as ONNX Runtime's kernels use them.
pub fn int8_units() -> Vec<&'static str> {
    let mut units = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vnni") {
            units.push("AVX-512 VNNI");
        }
        if std::arch::is_x86_feature_detected!("avxvnni") {
            units.push("AVX-VNNI");
        }
        // Rust's detection of AMX is not stable yet; Linux lists it among the flags.
        let amx = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
            info.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.split_whitespace().any(|f| f == "amx_int8"))
        });
        if amx {
            units.push("AMX int8");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            units.push("Arm dot product");
        }
        if std::arch::is_aarch64_feature_detected!("i8mm") {
            units.push("Arm i8mm");
        }
    }
    units
}

/// Opens the graph at `path` at `opts.precision`: as it is, or its int8 rewrite
/// (calibrated with `calibration` when first made). Every family loads through here.
pub(crate) fn load(
    path: &Path,
    opts: &RuntimeOptions,
    calibration: &dyn Calibrate,
) -> Result<OnnxModel> {
    match opts.precision {
        Precision::Exact => OnnxModel::load(path, opts),
        Precision::Int8 => {
            let file = int8_file(path, opts, calibration, Scheme::for_this_machine())?;
            OnnxModel::load(&file, opts)
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The sha256 of the file at `path`, read in pieces.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// A name part no other temporary file of ours has at the same time: the process id and
/// a counter, so two threads quantizing the same model each write their own file (the
/// last rename wins; the bytes are the same).
pub(crate) fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Writes `bytes` to `dest` through a temporary file in the same folder and a rename:
/// a reader sees the old file or the whole new one.
fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.partial", unique_suffix()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::io(dest, e))
}

/// Where the int8 file of a source goes: beside it when its folder is writable, else
/// under embedkit's own cache (`EMBEDKIT_HOME`).
fn cache_dir_for(source: &Path) -> PathBuf {
    let beside = source.parent().unwrap_or(Path::new(".")).to_path_buf();
    let probe = beside.join(format!(".embedkit-write-probe.{}", unique_suffix()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            beside
        }
        Err(_) => crate::runtime::embedkit_home().join("int8"),
    }
}

/// The int8 file of `source` under `scheme`: the cached one when its recorded digest
/// matches, else made now.
fn int8_file(
    source: &Path,
    opts: &RuntimeOptions,
    calibration: &dyn Calibrate,
    scheme: Scheme,
) -> Result<PathBuf> {
    // Hashed as a stream: a cache hit never holds the source (which may be gigabytes)
    // in memory; only a rebuild reads it whole.
    let digest = sha256_file(source)?;
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let dir = cache_dir_for(source);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let dest = dir.join(format!(
        "{stem}.int8-{}-{}.onnx",
        scheme.version(),
        &digest[..16]
    ));
    // The stamp records the int8 file's own digest: a torn or altered file is rebuilt.
    let stamp = dest.with_extension("onnx.sha256");
    let units = int8_units();
    if units.is_empty() {
        tracing::warn!(
            "this CPU has no int8 dot-product units (VNNI, AMX); the int8 tier may be slower than exact here"
        );
    } else {
        tracing::info!("int8 units on this CPU: {}", units.join(", "));
    }
    if let (Ok(recorded), true) = (std::fs::read_to_string(&stamp), dest.exists()) {
        if recorded.split_whitespace().next() == sha256_file(&dest).ok().as_deref() {
            tracing::info!("int8 model: reusing {}", dest.display());
            return Ok(dest);
        }
        tracing::warn!(
            "int8 model {} does not match its recorded digest; rebuilding it",
            dest.display()
        );
    } else if dest.exists() {
        tracing::warn!(
            "int8 model {} has no digest record; rebuilding it",
            dest.display()
        );
    }
    let bytes = std::fs::read(source).map_err(|e| Error::io(source, e))?;
    if sha256_hex(&bytes) != digest {
        return Err(Error::InvalidModel {
            path: source.to_path_buf(),
            reason: "the file changed while it was being read".into(),
        });
    }
    let mut model =
        onnx_proto::ModelProto::decode(prost::bytes::Bytes::from(bytes)).map_err(|e| {
            Error::InvalidModel {
                path: source.to_path_buf(),
                reason: format!("not an ONNX model ({e})"),
            }
        })?;
    if let Some(g) = model.graph.as_mut() {
        proto::inline_external(
            &mut g.initializer,
            source.parent().unwrap_or(Path::new(".")),
        )?;
    }
    let sites = match plan::plan(&model) {
        Plan::AsIs(reason) => {
            tracing::info!("int8: using {} as it is: {reason}", source.display());
            return Ok(source.to_path_buf());
        }
        Plan::Quantize(sites) => sites,
    };
    let started = std::time::Instant::now();
    let amax = calibrate::calibrate(
        &rewrite::calibration_model(&model, &sites),
        &sites,
        &dir,
        &calibration_options(opts),
        calibration,
    )?;
    let count = sites.len();
    let out = rewrite::rewrite(model, &sites, &amax, scheme).encode_to_vec();
    if out.len() > i32::MAX as usize {
        tracing::warn!(
            "int8: the rewritten {} would exceed protobuf's 2 GB; using it as it is",
            source.display()
        );
        return Ok(source.to_path_buf());
    }
    write_atomic(&dest, &out)?;
    write_atomic(
        &stamp,
        format!("{}  source={digest}\n", sha256_hex(&out)).as_bytes(),
    )?;
    tracing::info!(
        "int8: quantized {count} matrix products of {} in {:.1}s into {}",
        source.display(),
        started.elapsed().as_secs_f64(),
        dest.display()
    );
    if Some(dir.as_path()) == source.parent() {
        remove_superseded(&dir, &stem, &dest);
    }
    Ok(dest)
}

/// Removes the int8 files an earlier scheme or an earlier version of the source left
/// beside it (`STEM.int8-*.onnx` and their digest records), keeping `current`. Only
/// beside the source: the shared fallback folder holds other models' files of the same
/// stem. A process still running an old file keeps it open; Unix removes it after.
fn remove_superseded(dir: &Path, stem: &str, current: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let keep_stamp = current.with_extension("onnx.sha256");
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_int8_name(&name, stem) && path != current && path != keep_stamp {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!("int8: removed the superseded {}", path.display()),
                Err(e) => tracing::warn!("int8: could not remove {}: {e}", path.display()),
            }
        }
    }
}

/// Whether `name` is one of our int8 files of `stem` or its digest record:
/// `STEM.int8-q<N>-<letter><N>...-<16 hex>.onnx[.sha256]`, nothing looser, so a user's
/// own file beside the model is never taken for one.
fn is_int8_name(name: &str, stem: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(stem)
        .and_then(|r| r.strip_prefix(".int8-"))
    else {
        return false;
    };
    let Some(rest) = rest
        .strip_suffix(".onnx.sha256")
        .or_else(|| rest.strip_suffix(".onnx"))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let Some((digest, fields)) = parts.split_last() else {
        return false;
    };
    let field = |f: &str| {
        let mut chars = f.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && !chars.as_str().is_empty()
            && chars.as_str().bytes().all(|b| b.is_ascii_digit())
    };
    digest.len() == 16
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && fields.first().is_some_and(|f| f.starts_with('q'))
        && fields.iter().all(|f| field(f))
}

/// Calibration runs once on the CPU, in one session, at exact precision.
fn calibration_options(opts: &RuntimeOptions) -> RuntimeOptions {
    RuntimeOptions {
        device: Device::Cpu,
        providers: None,
        device_ids: None,
        parallel: Some(1),
        precision: Precision::Exact,
        ..opts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names() {
        assert_eq!("INT8".parse::<Precision>().unwrap(), Precision::Int8);
        assert_eq!("exact".parse::<Precision>().unwrap(), Precision::Exact);
        let err = "int4".parse::<Precision>().unwrap_err().to_string();
        assert!(err.contains("expected exact or int8"), "{err}");
        assert_eq!(Precision::default(), Precision::Exact);
    }

    use super::onnx_proto::ModelProto;
    use super::proto::{f32_tensor, float_model, node, with_float, with_int};
    use crate::inputs::Feed;
    use crate::runtime::Lane;
    use ort::value::Tensor;

    fn feed(x: &ndarray::Array2<f32>) -> Result<Feed> {
        Ok(vec![(
            "x".to_string(),
            Tensor::from_array(x.clone())?.into_dyn(),
        )])
    }

    #[test]
    fn only_our_own_int8_names_are_taken_for_superseded_files() {
        let ours = [
            "model.int8-q3-o8-a0-d19abe57662ee1d8.onnx",
            "model.int8-q3-o8-a0-d19abe57662ee1d8.onnx.sha256",
            "model.int8-q1-o2-a50-0123456789abcdef.onnx",
        ];
        for name in ours {
            assert!(is_int8_name(name, "model"), "{name}");
        }
        let theirs = [
            "model.int8-mine.onnx",
            "model.int8-q3-o8-a0-D19ABE57662EE1D8.onnx",
            "model.int8-q3-o8-a0-d19abe57662ee1d.onnx",
            "model.int8-o8-a0-d19abe57662ee1d8.onnx",
            "model.int8-q3-o8-a0-d19abe57662ee1d8.onnx.bak",
            "other.int8-q3-o8-a0-d19abe57662ee1d8.onnx",
            "model.onnx",
        ];
        for name in theirs {
            assert!(!is_int8_name(name, "model"), "{name}");
        }
        let version = Scheme::DEFAULT.version();
        assert!(is_int8_name(
            &format!("model.int8-{version}-0123456789abcdef.onnx"),
            "model"
        ));
    }

    /// Calibration asks for products' inputs as outputs, and a product may read a graph
    /// input: ONNX Runtime hands such an output back as a view of the input's buffer,
    /// which must still be alive when it is copied (it was freed first, once).
    #[test]
    fn an_output_that_is_a_graph_input_comes_back_intact() {
        let dir = crate::runtime::test_dir("passthrough");
        let src = dir.join("model.onnx");
        let model = float_model(
            vec![node("Relu", "relu", &["x"], &["y"])],
            vec![],
            &["x", "y"],
        );
        std::fs::write(&src, model.encode_to_vec()).unwrap();
        let session = OnnxModel::load(&src, &RuntimeOptions::default()).unwrap();
        let names = ["x".to_string(), "y".to_string()];
        for i in 0..50 {
            let x = ndarray::Array2::<f32>::from_shape_fn((64, 64), |(r, c)| {
                (i * 64 * 64 + r * 64 + c) as f32 - 1000.0
            });
            let outs = session
                .run_many_f32(Lane::Solo, feed(&x).unwrap(), &names)
                .unwrap();
            assert_eq!(outs[0], x.clone().into_dyn(), "run {i}");
            assert_eq!(outs[1], x.mapv(|v| v.max(0.0)).into_dyn(), "run {i}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// x [rows, 32] → Gemm(transB, alpha 0.5, beta 2, C [96]) → y, and
    /// x → Gemm(B [32, 80], no C) → y2: quantized, then run by ONNX Runtime next to the
    /// float graph on inputs with one channel thirty times the rest.
    #[test]
    fn gemm_products_are_quantized_and_match_the_float_graph() {
        let mut seed = 12345u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let b1: Vec<f32> = (0..96 * 32).map(|_| next()).collect();
        let c1: Vec<f32> = (0..96).map(|_| next()).collect();
        let b2: Vec<f32> = (0..32 * 80).map(|_| next()).collect();
        let g1 = with_int(node("Gemm", "g1", &["x", "B1", "C1"], &["y"]), "transB", 1);
        let g1 = with_float(with_float(g1, "alpha", 0.5), "beta", 2.0);
        let model = float_model(
            vec![g1, node("Gemm", "g2", &["x", "B2"], &["y2"])],
            vec![
                f32_tensor("B1", &[96, 32], &b1),
                f32_tensor("C1", &[96], &c1),
                f32_tensor("B2", &[32, 80], &b2),
            ],
            &["y", "y2"],
        );
        let dir = crate::runtime::test_dir("int8-gemm");
        let src = dir.join("model.onnx");
        std::fs::write(&src, model.encode_to_vec()).unwrap();
        let mut inputs = |rows: usize| {
            let mut x = ndarray::Array2::<f32>::from_shape_fn((rows, 32), |_| next() * 4.0);
            x.column_mut(3).mapv_inplace(|v| v * 30.0);
            x
        };
        let batches: Vec<_> = (0..6).map(|i| inputs(8 + i)).collect();
        let feed = |x: &ndarray::Array2<f32>| -> Result<Feed> {
            Ok(vec![(
                "x".to_string(),
                Tensor::from_array(x.clone())?.into_dyn(),
            )])
        };
        let calibration = |_: &OnnxModel| batches[..4].iter().map(feed).collect::<Result<Vec<_>>>();
        let opts = RuntimeOptions::default();
        let int8 = int8_file(&src, &opts, &calibration, Scheme::for_this_machine()).unwrap();
        assert_ne!(int8, src, "the Gemm graph was used as it is");
        let rewritten =
            ModelProto::decode(prost::bytes::Bytes::from(std::fs::read(&int8).unwrap())).unwrap();
        let ops: Vec<String> = rewritten
            .graph
            .unwrap()
            .node
            .iter()
            .filter_map(|n| n.op_type.clone())
            .collect();
        assert!(!ops.iter().any(|o| o == "Gemm"), "{ops:?}");
        assert_eq!(ops.iter().filter(|o| *o == "MatMulInteger").count(), 2);
        let names = ["y".to_string(), "y2".to_string()];
        let exact = OnnxModel::load(&src, &opts).unwrap();
        let quant = OnnxModel::load(&int8, &opts).unwrap();
        for x in &batches[4..] {
            let a = exact
                .run_many_f32(Lane::Solo, feed(x).unwrap(), &names)
                .unwrap();
            let b = quant
                .run_many_f32(Lane::Solo, feed(x).unwrap(), &names)
                .unwrap();
            for (a, b) in a.iter().zip(&b) {
                assert_eq!(a.shape(), b.shape());
                let peak = a.iter().fold(0f32, |m, v| m.max(v.abs()));
                let err = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
                assert!(err <= 0.02 * peak, "error {err} against a peak of {peak}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

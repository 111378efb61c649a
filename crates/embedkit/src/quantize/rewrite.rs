//! The int8 rewrite of one ONNX graph: which matrix products it quantizes and how.
//!
//! Each product [`super::plan`] picks, with its float32 weight `W [K, N]`, becomes
//! `DynamicQuantizeLinear` of its input (uint8, one scale per call) → `MatMulInteger`
//! with `W` in int8, one scale per output column → `Cast` → `Mul` by the two scales.
//! ONNX Runtime fuses that tail into its integer GEMM on CPUs with VNNI/AMX.
//!
//! Transformer activations carry a few channels tens of times larger than the rest;
//! one activation scale per call would spend the int8 range on them. So, from
//! calibration, the largest input channels are taken out (LLM.int8()'s decomposition):
//! they are zeroed before quantization and multiplied in float32 on their own (picked
//! by a one-hot `MatMul` → `MatMul` on those rows of `W` → `Add` after the product's
//! bias, which stays on the integer part where ONNX Runtime fuses it); not in products
//! far wider than deep, where that path costs as much as the product. Optionally the
//! rest are smoothed (SmoothQuant: activations divided and weight rows multiplied by a
//! per-channel factor). The schemes tried, and why this one, are in BENCHMARKS.md.

use std::collections::{HashMap, HashSet};

use super::onnx_proto::{tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto};
use super::plan::{constants, is_default_domain, weight_matrix, Form, Site};
use super::proto::{constant_value, f32_tensor, float_value, i8_tensor, node, with_int};

/// How a graph is quantized. Changing any of it changes [`Scheme::version`], so files
/// cached under another scheme are rebuilt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheme {
    /// Input channels per product kept in float32 (the calibrated largest).
    pub outliers: usize,
    /// SmoothQuant's migration strength; 0 is no smoothing.
    pub alpha: f32,
    /// Weight levels: 8 bits (±127), or 7 (±63) where 8 would saturate.
    pub weight_bits: u8,
}

impl Scheme {
    /// The shipped scheme, on a machine whose int8 products do not saturate.
    pub const DEFAULT: Scheme = Scheme {
        outliers: 8,
        alpha: 0.0,
        weight_bits: 8,
    };

    /// The shipped scheme for this machine. ONNX Runtime's u8×s8 kernels for x86-64
    /// without VNNI (AVX2, AVX-512 without VNNI) add pairs of products in 16 bits
    /// (`vpmaddubsw`): 2 · 255 · 127 overflows and saturates, which costs whole
    /// percent of a product's range. 7-bit weights keep every pair in range there (what
    /// ONNX Runtime's own quantizer calls `reduce_range`); VNNI, AMX and ARM kernels
    /// accumulate in 32 bits and keep 8.
    pub fn for_this_machine() -> Scheme {
        Scheme {
            weight_bits: if pairs_saturate() { 7 } else { 8 },
            ..Scheme::DEFAULT
        }
    }

    /// A name for cached files: the rewrite's version and the scheme's parameters.
    /// (q4: `Gemm` nodes are rewritten too; graphs with only `MatMul` are as in q3.)
    pub fn version(&self) -> String {
        let bits = match self.weight_bits {
            8 => String::new(),
            b => format!("-w{b}"),
        };
        format!(
            "q4-o{}-a{}{bits}",
            self.outliers,
            (self.alpha * 100.0).round() as u32
        )
    }

    /// The largest weight level.
    fn weight_max(&self) -> f32 {
        ((1u32 << (self.weight_bits.clamp(2, 8) - 1)) - 1) as f32
    }
}

/// Whether ONNX Runtime's u8×s8 products on this CPU add pairs in 16 bits.
fn pairs_saturate() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !(std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Products with more than this many output columns per input channel get no float32
/// outlier path.
const WIDE: usize = 8;

/// `model` with each site's input added as a graph output, for calibration.
pub fn calibration_model(model: &ModelProto, sites: &[Site]) -> ModelProto {
    let mut cal = model.clone();
    if let Some(g) = cal.graph.as_mut() {
        let mut have: HashSet<String> = g.output.iter().filter_map(|o| o.name.clone()).collect();
        for s in sites {
            if have.insert(s.input.clone()) {
                g.output.push(float_value(&s.input));
            }
        }
    }
    cal
}

/// The largest `k` of `amax`, by index.
fn largest(amax: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..amax.len()).collect();
    idx.sort_by(|&a, &b| amax[b].total_cmp(&amax[a]));
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Weights `[K, N]` in int8 with one symmetric scale per column, each column's
/// largest magnitude mapped to `top` (127, or 63 for 7-bit weights).
fn quantize_columns(w: &[f32], k: usize, n: usize, top: f32) -> (Vec<i8>, Vec<f32>) {
    let mut scale = vec![0f32; n];
    for row in w.chunks_exact(n) {
        for (s, v) in scale.iter_mut().zip(row) {
            *s = s.max(v.abs());
        }
    }
    for s in &mut scale {
        *s = if *s > 0.0 { *s / top } else { 1.0 };
    }
    let mut q = Vec::with_capacity(k * n);
    for row in w.chunks_exact(n) {
        q.extend(
            row.iter()
                .zip(&scale)
                .map(|(v, s)| (v / s).round().clamp(-top, top) as i8),
        );
    }
    (q, scale)
}

/// Rewrites `model`'s sites under `scheme`, with each input's calibrated per-channel
/// absolute maxima (`amax`, by input name; inputs without get no outliers/smoothing).
pub fn rewrite(
    mut model: ModelProto,
    sites: &[Site],
    amax: &HashMap<String, Vec<f32>>,
    scheme: Scheme,
) -> ModelProto {
    let Some(g) = model.graph.as_mut() else {
        return model;
    };
    let consts: HashMap<String, TensorProto> = constants(g)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let readers = readers(g);
    // Sites sharing an input share its quantization (Q, K and V read one LayerNorm).
    let mut groups: Vec<(String, Vec<&Site>)> = Vec::new();
    for s in sites {
        match groups.iter_mut().find(|(x, _)| *x == s.input) {
            Some((_, v)) => v.push(s),
            None => groups.push((s.input.clone(), vec![s])),
        }
    }
    let mut replace: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut added: Vec<TensorProto> = Vec::new();
    for (gi, (x, group)) in groups.iter().enumerate() {
        let weights: Vec<(Vec<usize>, Vec<f32>)> = group
            .iter()
            .filter_map(|s| weight_matrix(s, &consts))
            .collect();
        if weights.len() != group.len() {
            continue;
        }
        let kdim = weights[0].0[0];
        if weights.iter().any(|(d, _)| d[0] != kdim) {
            continue;
        }
        let stats = amax.get(x).filter(|a| a.len() == kdim);
        // The float32 outlier path writes and adds a [tokens, N] result: for products far
        // wider than deep (SPLADE's vocabulary, N = 30522 from K = 128) that costs as much
        // as the integer product itself, so those run without it.
        let widest = weights.iter().map(|(d, _)| d[1]).max().unwrap_or(0);
        let wanted = if widest > WIDE * kdim {
            0
        } else {
            scheme.outliers.min(kdim.saturating_sub(1))
        };
        let outliers = stats.map(|a| largest(a, wanted)).unwrap_or_default();
        // Smoothing factor per input channel: activations are divided by it, weights
        // multiplied.
        let mut smooth = vec![1f32; kdim];
        if let (Some(a), true) = (stats, scheme.alpha > 0.0) {
            for (c, s) in smooth.iter_mut().enumerate() {
                let wmax = weights
                    .iter()
                    .map(|(d, w)| {
                        (0..d[1])
                            .map(|j| w[c * d[1] + j].abs())
                            .fold(0f32, f32::max)
                    })
                    .fold(0f32, f32::max);
                let v = a[c].max(1e-5).powf(scheme.alpha) / wmax.max(1e-5).powf(1.0 - scheme.alpha);
                *s = v.max(1e-5);
            }
        }
        let p = format!("embedkit_int8/{gi}");
        let mut pre: Vec<NodeProto> = Vec::new();
        let mut quantized_input = x.clone();
        if scheme.alpha > 0.0 || !outliers.is_empty() {
            let mut inv: Vec<f32> = smooth.iter().map(|s| 1.0 / s).collect();
            for &c in &outliers {
                inv[c] = 0.0;
            }
            added.push(f32_tensor(&format!("{p}/inv_smooth"), &[kdim], &inv));
            quantized_input = format!("{p}/smoothed");
            pre.push(node(
                "Mul",
                &format!("{p}/smooth"),
                &[x, &format!("{p}/inv_smooth")],
                &[&quantized_input],
            ));
        }
        let (xq, xs, xz) = (format!("{p}/xq"), format!("{p}/xs"), format!("{p}/xz"));
        pre.push(node(
            "DynamicQuantizeLinear",
            &format!("{p}/quantize"),
            &[&quantized_input],
            &[&xq, &xs, &xz],
        ));
        let xo = format!("{p}/outliers");
        if !outliers.is_empty() {
            // A one-hot [K, k] product picks the outlier channels out: ONNX Runtime's
            // Gather on the last axis copies value by value and took 7% of the time.
            let k = outliers.len();
            let mut pick = vec![0f32; kdim * k];
            for (j, &c) in outliers.iter().enumerate() {
                pick[c * k + j] = 1.0;
            }
            added.push(f32_tensor(&format!("{p}/outlier_pick"), &[kdim, k], &pick));
            pre.push(node(
                "MatMul",
                &format!("{p}/pick"),
                &[x, &format!("{p}/outlier_pick")],
                &[&xo],
            ));
        }
        for (si, (site, (dims, w))) in group.iter().zip(&weights).enumerate() {
            let n = dims[1];
            let q = format!("{p}/{si}");
            let mut scaled: Vec<f32> = w.clone();
            for (c, row) in scaled.chunks_exact_mut(n).enumerate() {
                let f = if outliers.binary_search(&c).is_ok() {
                    0.0
                } else {
                    smooth[c]
                };
                row.iter_mut().for_each(|v| *v *= f);
            }
            let (wq, ws) = quantize_columns(&scaled, kdim, n, scheme.weight_max());
            added.push(i8_tensor(&format!("{q}/wq"), &[kdim, n], &wq));
            added.push(f32_tensor(&format!("{q}/ws"), &[n], &ws));
            added.push(i8_tensor(&format!("{q}/wz"), &[n], &vec![0i8; n]));
            let out = g.node[site.node]
                .output
                .first()
                .cloned()
                .unwrap_or_default();
            let mut body = vec![
                node(
                    "Mul",
                    &format!("{q}/scales"),
                    &[&xs, &format!("{q}/ws")],
                    &[&format!("{q}/scale")],
                ),
                node(
                    "MatMulInteger",
                    &format!("{q}/matmul"),
                    &[&xq, &format!("{q}/wq"), &xz, &format!("{q}/wz")],
                    &[&format!("{q}/i32")],
                ),
                with_int(
                    node(
                        "Cast",
                        &format!("{q}/cast"),
                        &[&format!("{q}/i32")],
                        &[&format!("{q}/f32")],
                    ),
                    "to",
                    DataType::Float as i64,
                ),
            ];
            // A Gemm's own bias, spread over the columns.
            let own_bias = match &site.form {
                Form::Gemm {
                    bias: Some(values), ..
                } => {
                    let name = format!("{q}/gemm_bias");
                    added.push(f32_tensor(&name, &[n], values));
                    Some(name)
                }
                _ => None,
            };
            // Without outliers or a bias the rescaled product is the output itself.
            let int8_part = if outliers.is_empty() && own_bias.is_none() {
                out.clone()
            } else {
                format!("{q}/int8_part")
            };
            body.push(node(
                "Mul",
                &format!("{q}/rescale"),
                &[&format!("{q}/f32"), &format!("{q}/scale")],
                &[&int8_part],
            ));
            // The bias is added to the integer part, where ONNX Runtime fuses it into its
            // integer GEMM, before the outliers: a Gemm's own, or, when outliers follow,
            // the model's bias `Add` after the product (which then goes).
            let bias = match own_bias {
                Some(b) => Some((b, out.clone())),
                None if !outliers.is_empty() => {
                    bias_add(g, &consts, &readers, &out, n).map(|(j, b, y)| {
                        replace.insert(j, Vec::new());
                        (b, y)
                    })
                }
                None => None,
            };
            let mut sum = int8_part;
            let mut target = out;
            if let Some((b, y)) = bias {
                target = y;
                let biased = if outliers.is_empty() {
                    target.clone()
                } else {
                    format!("{q}/biased")
                };
                body.push(node("Add", &format!("{q}/bias"), &[&sum, &b], &[&biased]));
                sum = biased;
            }
            if !outliers.is_empty() {
                let rows: Vec<f32> = outliers
                    .iter()
                    .flat_map(|&c| w[c * n..(c + 1) * n].iter().copied())
                    .collect();
                added.push(f32_tensor(&format!("{q}/wo"), &[outliers.len(), n], &rows));
                body.extend([
                    node(
                        "MatMul",
                        &format!("{q}/outlier_matmul"),
                        &[&xo, &format!("{q}/wo")],
                        &[&format!("{q}/float_part")],
                    ),
                    node(
                        "Add",
                        &format!("{q}/sum"),
                        &[&sum, &format!("{q}/float_part")],
                        &[&target],
                    ),
                ]);
            }
            let mut nodes = if si == 0 {
                std::mem::take(&mut pre)
            } else {
                Vec::new()
            };
            nodes.extend(body);
            replace.insert(site.node, nodes);
        }
    }
    let old = std::mem::take(&mut g.node);
    for (i, n) in old.into_iter().enumerate() {
        match replace.remove(&i) {
            Some(nodes) => g.node.extend(nodes),
            None => g.node.push(n),
        }
    }
    drop_unused_constants(g);
    g.initializer.extend(added);
    model
}

/// Which nodes read each value (a node reading one twice is listed twice); graph
/// outputs count as a reader. Empty for graphs with subgraphs, whose readers are not all
/// listed here, so nothing is fused there.
fn readers(g: &GraphProto) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    if has_subgraphs(g) {
        return map;
    }
    for (i, n) in g.node.iter().enumerate() {
        for input in &n.input {
            map.entry(input.clone()).or_default().push(i);
        }
    }
    for o in g.output.iter().filter_map(|o| o.name.clone()) {
        map.entry(o).or_default().push(usize::MAX);
    }
    map
}

/// The bias `Add` after a product: its only reader, adding a float32 constant of the
/// product's `n` columns. Returns the node's index, the bias and the node's output.
fn bias_add(
    g: &GraphProto,
    consts: &HashMap<String, TensorProto>,
    readers: &HashMap<String, Vec<usize>>,
    product: &str,
    n: usize,
) -> Option<(usize, String, String)> {
    let &[j] = readers.get(product)?.as_slice() else {
        return None;
    };
    let add = g.node.get(j)?;
    if add.op_type.as_deref() != Some("Add") || !is_default_domain(add) {
        return None;
    }
    let bias = match add.input.as_slice() {
        [a, b] if a == product && b != product => b,
        [a, b] if b == product && a != product => a,
        _ => return None,
    };
    let t = consts.get(bias)?;
    let vector = t.dims.len() == 1 && usize::try_from(t.dims[0]).ok() == Some(n);
    let y = add.output.first()?;
    (vector && t.data_type == Some(DataType::Float as i32)).then(|| (j, bias.clone(), y.clone()))
}

fn has_subgraphs(g: &GraphProto) -> bool {
    g.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    })
}

/// Removes the float weights no node reads any more. Graphs with subgraphs (If, Loop)
/// keep them: a subgraph may read an outer name.
fn drop_unused_constants(g: &mut GraphProto) {
    if has_subgraphs(g) {
        return;
    }
    let used: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(g.output.iter().filter_map(|o| o.name.clone()))
        .collect();
    g.initializer
        .retain(|t| t.name.as_ref().is_none_or(|name| used.contains(name)));
    g.node
        .retain(|n| constant_value(n).is_none() || n.output.iter().any(|o| used.contains(o)));
}

#[cfg(test)]
mod tests {
    use super::super::plan::{plan, Plan};
    use super::super::proto::{f32_values, float_model};
    use super::*;

    #[test]
    fn seven_bit_weights_have_their_own_cache_name_and_range() {
        let seven = Scheme {
            weight_bits: 7,
            ..Scheme::DEFAULT
        };
        assert_eq!(Scheme::DEFAULT.version(), "q4-o8-a0");
        assert_eq!(seven.version(), "q4-o8-a0-w7");
        assert_eq!(seven.weight_max(), 63.0);
        let (q, _) = quantize_columns(&[63.0, -21.0], 2, 1, seven.weight_max());
        assert_eq!(q, vec![63, -21]);
    }

    #[test]
    fn columns_are_scaled_to_their_own_maximum() {
        // Column 0 spans ±2, column 1 ±0.5: each maps its maximum to ±127.
        let w = [2.0, 0.5, -1.0, -0.5, 0.0, 0.25];
        let (q, s) = quantize_columns(&w, 3, 2, 127.0);
        assert_eq!(q, vec![127, 127, -64, -127, 0, 64]);
        assert!((s[0] - 2.0 / 127.0).abs() < 1e-9 && (s[1] - 0.5 / 127.0).abs() < 1e-9);
        // An all-zero column gets a harmless scale, not a division by zero.
        let (q, s) = quantize_columns(&[0.0, 1.0], 1, 2, 127.0);
        assert_eq!((q, s[0]), (vec![0, 127], 1.0));
    }

    /// A one-graph model of `nodes` and `initializers` (`proto::float_model`) and its sites.
    fn model(
        nodes: Vec<NodeProto>,
        initializers: Vec<TensorProto>,
        outputs: &[&str],
    ) -> (ModelProto, Vec<Site>) {
        let model = float_model(nodes, initializers, outputs);
        let Plan::Quantize(sites) = plan(&model) else {
            panic!("the product is a site");
        };
        (model, sites)
    }

    /// x [?, 16] → MatMul(W [16, 64]) → Add(b) → `z`, plus `y` read again by another
    /// node when asked (then the bias Add must stay), rewritten with one outlier
    /// channel (channel 1, thirty times the rest).
    fn product_with_bias(extra_reader: bool) -> GraphProto {
        let w: Vec<f32> = (0..16 * 64).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut nodes = vec![
            node("MatMul", "mm", &["x", "W"], &["y"]),
            node("Add", "bias_add", &["y", "b"], &["z"]),
        ];
        if extra_reader {
            nodes.push(node("Relu", "other", &["y"], &["r"]));
        }
        let initializers = vec![
            f32_tensor("W", &[16, 64], &w),
            f32_tensor("b", &[64], &[0.5; 64]),
        ];
        let (model, sites) = model(nodes, initializers, &["z"]);
        let amax = HashMap::from([("x".to_string(), one_outlier(16))]);
        let scheme = Scheme {
            outliers: 1,
            ..Scheme::DEFAULT
        };
        rewrite(model, &sites, &amax, scheme).graph.unwrap()
    }

    /// Calibrated maxima with channel 1 thirty times the rest.
    fn one_outlier(k: usize) -> Vec<f32> {
        let mut a = vec![1.0; k];
        a[1] = 30.0;
        a
    }

    fn one_hot(k: usize, at: usize) -> Vec<f32> {
        (0..k).map(|i| if i == at { 1.0 } else { 0.0 }).collect()
    }

    #[test]
    fn wide_products_get_no_outlier_path() {
        // 16 columns per input channel (W [4, 64]): past WIDE, so integer only.
        let w: Vec<f32> = (0..4 * 64).map(|i| (i % 5) as f32 - 2.0).collect();
        let nodes = vec![node("MatMul", "mm", &["x", "W"], &["y"])];
        let (model, sites) = model(nodes, vec![f32_tensor("W", &[4, 64], &w)], &[]);
        let amax = HashMap::from([("x".to_string(), one_outlier(4))]);
        let g = rewrite(model, &sites, &amax, Scheme::DEFAULT)
            .graph
            .unwrap();
        let ops: Vec<&str> = g.node.iter().filter_map(|n| n.op_type.as_deref()).collect();
        assert_eq!(
            ops,
            [
                "DynamicQuantizeLinear",
                "Mul",
                "MatMulInteger",
                "Cast",
                "Mul"
            ]
        );
        assert_eq!(g.node.last().unwrap().output, ["y"]);
    }

    #[test]
    fn the_bias_moves_onto_the_integer_part_when_it_is_the_only_reader() {
        let g = product_with_bias(false);
        let op = |name: &str| g.node.iter().find(|n| n.name.as_deref() == Some(name));
        assert!(op("bias_add").is_none(), "the model's own bias Add is gone");
        assert!(op("mm").is_none(), "the float product is gone");
        let bias = g
            .node
            .iter()
            .find(|n| n.input.iter().any(|i| i == "b"))
            .expect("the bias is still added");
        assert_eq!(bias.op_type.as_deref(), Some("Add"));
        let last = g.node.iter().find(|n| n.output == ["z"]).unwrap();
        assert_eq!(last.op_type.as_deref(), Some("Add"));
        assert!(last.input.contains(&bias.output[0]), "outliers added last");
        // The outlier channel is picked by a one-hot [16, 1] product.
        let pick = g.initializer.iter().find(|t| {
            t.name
                .as_deref()
                .is_some_and(|n| n.ends_with("/outlier_pick"))
        });
        let (dims, values) = f32_values(pick.unwrap()).unwrap();
        assert_eq!((dims, values), (vec![16, 1], one_hot(16, 1)));
    }

    #[test]
    fn a_product_read_elsewhere_keeps_its_bias_add() {
        let g = product_with_bias(true);
        let add = g
            .node
            .iter()
            .find(|n| n.name.as_deref() == Some("bias_add"));
        assert_eq!(add.unwrap().input, ["y", "b"]);
        assert!(g.node.iter().any(|n| n.output == ["y"]), "y is still made");
    }

    #[test]
    fn largest_channels_by_calibrated_maximum() {
        assert_eq!(largest(&[0.1, 9.0, 0.3, 5.0, 0.2], 2), vec![1, 3]);
        assert_eq!(largest(&[1.0], 0), Vec::<usize>::new());
    }
}

//! Which products of a graph the int8 rewrite takes ([`plan`]), and each one's weight as
//! a `[K, N]` float32 matrix ([`weight_matrix`]): `MatMul`s with a constant right side and
//! the `Gemm`s whose `alpha`, `transB` and `beta · C` fold into a weight and a bias.

use std::collections::HashMap;

use super::onnx_proto::{tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto};
use super::proto::{attr_float, attr_int, constant_value, f32_values};

/// A product to quantize: the node, its activation input and its weight.
#[derive(Debug, Clone)]
pub struct Site {
    pub(super) node: usize,
    pub input: String,
    pub(super) weight: String,
    pub(super) form: Form,
}

/// The operator a site replaces.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Form {
    MatMul,
    /// `alpha · X · op(B) + beta · C`: the weight is stored `[N, K]` when `trans_b`;
    /// `bias` is `beta · C` as `N` values, when the node has a `C`.
    Gemm {
        trans_b: bool,
        alpha: f32,
        bias: Option<Vec<f32>>,
    },
}

/// What to do with a graph.
#[derive(Debug)]
pub enum Plan {
    Quantize(Vec<Site>),
    /// Used as it is, for this reason.
    AsIs(String),
}

/// Products with fewer output columns stay in float32.
const MIN_OUTPUTS: i64 = 64;

/// Operators that mean the graph is quantized already.
const QUANTIZED_OPS: [&str; 9] = [
    "MatMulInteger",
    "QLinearMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "DynamicQuantizeLinear",
    "QuantizeLinear",
    "DequantizeLinear",
    "ConvInteger",
    "QLinearConv",
];

pub(super) fn is_default_domain(n: &NodeProto) -> bool {
    matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx"))
}

/// Constant tensors by name: initializers and `Constant` nodes' values.
pub(super) fn constants(g: &GraphProto) -> HashMap<&str, &TensorProto> {
    let mut map: HashMap<&str, &TensorProto> = HashMap::new();
    for t in &g.initializer {
        if let Some(name) = t.name.as_deref() {
            map.insert(name, t);
        }
    }
    for n in &g.node {
        if let (Some(t), Some(out)) = (constant_value(n), n.output.first()) {
            map.insert(out.as_str(), t);
        }
    }
    // An initializer that is also a graph input is a default the caller may replace.
    for i in &g.input {
        if let Some(name) = i.name.as_deref() {
            map.remove(name);
        }
    }
    map
}

/// Which products of `model` to quantize, or why none.
pub fn plan(model: &ModelProto) -> Plan {
    let Some(g) = model.graph.as_ref() else {
        return Plan::AsIs("the file has no graph".into());
    };
    if let Some(op) = g.node.iter().find_map(|n| {
        let op = n.op_type.as_deref()?;
        QUANTIZED_OPS.contains(&op).then_some(op)
    }) {
        return Plan::AsIs(format!("it is quantized already (it has {op} nodes)"));
    }
    let opset = model
        .opset_import
        .iter()
        .filter(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .filter_map(|o| o.version)
        .max()
        .unwrap_or(0);
    if opset < 11 {
        return Plan::AsIs(format!(
            "its opset ({opset}) predates the integer operators the rewrite uses (11)"
        ));
    }
    let consts = constants(g);
    let sites: Vec<Site> =
        g.node
            .iter()
            .enumerate()
            .filter(|(_, n)| is_default_domain(n))
            .filter_map(|(i, n)| {
                let (x, w, form) = match n.op_type.as_deref() {
                    Some("MatMul") => match n.input.as_slice() {
                        [x, w] => (x, w, Form::MatMul),
                        _ => return None,
                    },
                    Some("Gemm") => gemm_form(n, &consts)?,
                    _ => return None,
                };
                let t = consts.get(w.as_str())?;
                let (k, outputs) = match (&form, t.dims.as_slice()) {
                    (Form::Gemm { trans_b: true, .. }, &[n, k]) => (k, n),
                    (_, &[k, n]) => (k, n),
                    _ => return None,
                };
                // Narrow products (classifier heads) cost little in float32 and their few
                // outputs are the result itself: they stay exact.
                (k > 0 && outputs >= MIN_OUTPUTS && t.data_type == Some(DataType::Float as i32))
                    .then(|| Site {
                        node: i,
                        input: x.clone(),
                        weight: w.clone(),
                        form,
                    })
            })
            .collect();
    if sites.is_empty() {
        return Plan::AsIs("it has no matrix product with float32 constant weights".into());
    }
    Plan::Quantize(sites)
}

/// A `Gemm` the rewrite can take: `X` not transposed, a constant `B` (checked by the
/// caller) and a constant `C` of one value or one row, or none. Returns `X`, `B` and the
/// form; `beta · C` is spread over the `N` columns here.
fn gemm_form<'a>(
    n: &'a NodeProto,
    consts: &HashMap<&str, &TensorProto>,
) -> Option<(&'a String, &'a String, Form)> {
    if attr_int(n, "transA").unwrap_or(0) != 0 || n.output.len() != 1 {
        return None;
    }
    let trans_b = attr_int(n, "transB").unwrap_or(0) != 0;
    let alpha = attr_float(n, "alpha").unwrap_or(1.0);
    let beta = attr_float(n, "beta").unwrap_or(1.0);
    if !alpha.is_finite() || !beta.is_finite() {
        return None;
    }
    let (x, w, c) = match n.input.as_slice() {
        [x, w] => (x, w, None),
        [x, w, c] if c.is_empty() => (x, w, None),
        [x, w, c] => (x, w, Some(c)),
        _ => return None,
    };
    let b = consts.get(w.as_str())?;
    let columns = match (trans_b, b.dims.as_slice()) {
        (true, &[n, _]) | (false, &[_, n]) => usize::try_from(n).ok()?,
        _ => return None,
    };
    let bias = match c {
        None => None,
        Some(c) => {
            let (dims, values) = f32_values(consts.get(c.as_str())?)?;
            // One value, or one row of N (any leading ones): the same bias on every row.
            let row = dims.last() == Some(&columns) && dims.iter().rev().skip(1).all(|&d| d == 1);
            let spread: Vec<f32> = match values.len() {
                1 => vec![values[0] * beta; columns],
                _ if row => values.iter().map(|v| v * beta).collect(),
                _ => return None,
            };
            Some(spread)
        }
    };
    Some((
        x,
        w,
        Form::Gemm {
            trans_b,
            alpha,
            bias,
        },
    ))
}

/// A site's weight as `[K, N]` float32 values, `alpha` and `transB` applied.
pub(super) fn weight_matrix(
    site: &Site,
    consts: &HashMap<String, TensorProto>,
) -> Option<(Vec<usize>, Vec<f32>)> {
    let (dims, w) = f32_values(consts.get(&site.weight)?)?;
    match &site.form {
        Form::MatMul => Some((dims, w)),
        Form::Gemm { trans_b, alpha, .. } => {
            let &[rows, cols] = dims.as_slice() else {
                return None;
            };
            let (k, n) = if *trans_b { (cols, rows) } else { (rows, cols) };
            let at = |r: usize, c: usize| {
                if *trans_b {
                    w[c * cols + r]
                } else {
                    w[r * cols + c]
                }
            };
            let mut out = Vec::with_capacity(k * n);
            for r in 0..k {
                out.extend((0..n).map(|c| at(r, c) * alpha));
            }
            Some((vec![k, n], out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{f32_tensor, float_model, node, with_float, with_int};
    use super::*;

    fn gemm(inputs: &[&str], trans_a: i64, trans_b: i64, alpha: f32, beta: f32) -> NodeProto {
        let n = with_int(node("Gemm", "gemm", inputs, &["y"]), "transA", trans_a);
        let n = with_float(with_int(n, "transB", trans_b), "alpha", alpha);
        with_float(n, "beta", beta)
    }

    fn plan_of(n: NodeProto, initializers: Vec<TensorProto>) -> Plan {
        plan(&float_model(vec![n], initializers, &[]))
    }

    #[test]
    fn gemm_weights_are_taken_transposed_and_scaled_with_beta_times_c_as_bias() {
        // B stored [N = 64, K = 2] (transB), alpha 0.5, C one value, beta 3.
        let b: Vec<f32> = (0..128).map(|i| i as f32).collect();
        let inits = vec![f32_tensor("B", &[64, 2], &b), f32_tensor("C", &[1], &[2.0])];
        let Plan::Quantize(sites) = plan_of(gemm(&["x", "B", "C"], 0, 1, 0.5, 3.0), inits.clone())
        else {
            panic!("a Gemm with constant B and C is a site");
        };
        let Form::Gemm { bias, .. } = &sites[0].form else {
            panic!("{:?}", sites[0].form);
        };
        assert_eq!(bias.as_deref(), Some(&[6.0; 64][..]));
        let consts: HashMap<String, TensorProto> = inits
            .into_iter()
            .map(|t| (t.name.clone().unwrap(), t))
            .collect();
        let (dims, w) = weight_matrix(&sites[0], &consts).unwrap();
        assert_eq!(dims, [2, 64]);
        // W[k][n] = 0.5 · B[n][k]
        assert_eq!((w[0], w[1], w[64], w[65]), (0.0, 1.0, 0.5, 1.5));
    }

    #[test]
    fn gemms_the_rewrite_cannot_take_stay_float() {
        let b = f32_tensor("B", &[2, 64], &[1.0; 128]);
        let as_is = |p: Plan| matches!(p, Plan::AsIs(_));
        // X transposed.
        assert!(as_is(plan_of(
            gemm(&["x", "B"], 1, 0, 1.0, 1.0),
            vec![b.clone()]
        )));
        // C differs per row ([3, 64]): not one bias vector.
        let c = f32_tensor("C", &[3, 64], &[0.0; 192]);
        assert!(as_is(plan_of(
            gemm(&["x", "B", "C"], 0, 0, 1.0, 1.0),
            vec![b.clone(), c]
        )));
        // C computed by the graph.
        assert!(as_is(plan_of(
            gemm(&["x", "B", "c"], 0, 0, 1.0, 1.0),
            vec![b.clone()]
        )));
        // Without C, and with an empty name for it: sites.
        assert!(!as_is(plan_of(
            gemm(&["x", "B"], 0, 0, 1.0, 1.0),
            vec![b.clone()]
        )));
        assert!(!as_is(plan_of(
            gemm(&["x", "B", ""], 0, 0, 1.0, 1.0),
            vec![b]
        )));
    }
}

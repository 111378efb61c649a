//! Reading and building the pieces of an ONNX graph the rewrite touches: float tensors
//! (inline, raw or external data), new initializers and nodes.

use std::path::Path;

use prost::bytes::Bytes;

use super::onnx_proto::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_proto::DataType, type_proto,
    AttributeProto, NodeProto, TensorProto, TypeProto, ValueInfoProto,
};
use crate::error::{Error, Result};

/// A float32 tensor's shape and values, when `t` is one.
pub fn f32_values(t: &TensorProto) -> Option<(Vec<usize>, Vec<f32>)> {
    if t.data_type != Some(DataType::Float as i32) {
        return None;
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    let values: Vec<f32> = match &t.raw_data {
        Some(raw) if !raw.is_empty() || len == 0 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => t.float_data.clone(),
    };
    (values.len() == len).then_some((dims, values))
}

/// Moves every initializer stored in a file beside the model (`external_data`) into
/// the graph itself, so the rewritten model is one self-contained file.
pub fn inline_external(tensors: &mut [TensorProto], dir: &Path) -> Result<()> {
    for t in tensors {
        if t.data_location != Some(DataLocation::External as i32) {
            continue;
        }
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(key))
                .and_then(|e| e.value.clone())
        };
        let bad = |reason: String| Error::InvalidModel {
            path: dir.to_path_buf(),
            reason,
        };
        let location = entry("location")
            .ok_or_else(|| bad(format!("tensor {:?} has no data location", t.name)))?;
        // Data files sit beside the model: no absolute paths or parent folders.
        let rel = Path::new(&location);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad(format!(
                "tensor {:?} points outside the model folder ({location:?})",
                t.name
            )));
        }
        let number = |key: &str| -> Result<Option<u64>> {
            entry(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| bad(format!("tensor {:?}: bad {key} {v:?}", t.name)))
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let length = number("length")?;
        let file = dir.join(rel);
        let data = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = match length {
            Some(l) => start.saturating_add(usize::try_from(l).unwrap_or(usize::MAX)),
            None => data.len(),
        };
        let slice = data.get(start..end).ok_or_else(|| {
            bad(format!(
                "tensor {:?} lies beyond the end of {location:?}",
                t.name
            ))
        })?;
        t.raw_data = Some(Bytes::copy_from_slice(slice));
        t.external_data.clear();
        t.data_location = Some(DataLocation::Default as i32);
    }
    Ok(())
}

fn tensor(name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(data_type as i32),
        raw_data: Some(Bytes::from(raw)),
        ..Default::default()
    }
}

pub fn f32_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, dims, DataType::Float, raw)
}

pub fn i8_tensor(name: &str, dims: &[usize], values: &[i8]) -> TensorProto {
    let raw = values.iter().map(|&v| v as u8).collect();
    tensor(name, dims, DataType::Int8, raw)
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.to_string()),
        name: Some(name.to_string()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn with_int(mut n: NodeProto, key: &str, value: i64) -> NodeProto {
    n.attribute.push(AttributeProto {
        name: Some(key.to_string()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    });
    n
}

/// A graph input or output named `name`: a float32 tensor of any shape.
pub fn float_value(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model at opset 17 reading one float input `x`, with float outputs `outputs`.
#[cfg(test)]
pub fn float_model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    outputs: &[&str],
) -> super::onnx_proto::ModelProto {
    use super::onnx_proto::{GraphProto, ModelProto, OperatorSetIdProto};
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("test".into()),
            node: nodes,
            initializer: inits,
            input: vec![float_value("x")],
            output: outputs.iter().map(|o| float_value(o)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
pub fn with_float(mut n: NodeProto, key: &str, value: f32) -> NodeProto {
    n.attribute.push(AttributeProto {
        name: Some(key.to_string()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    });
    n
}

/// An integer attribute of `n`, when set.
pub fn attr_int(n: &NodeProto, key: &str) -> Option<i64> {
    n.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(key))
        .and_then(|a| a.i)
}

/// A float attribute of `n`, when set.
pub fn attr_float(n: &NodeProto, key: &str) -> Option<f32> {
    n.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(key))
        .and_then(|a| a.f)
}

/// The tensor of a `Constant` node's `value` attribute.
pub fn constant_value(n: &NodeProto) -> Option<&TensorProto> {
    if n.op_type.as_deref() != Some("Constant")
        || n.domain.as_deref().is_some_and(|d| !d.is_empty())
    {
        return None;
    }
    n.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("value"))
        .and_then(|a| a.t.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_values_from_raw_and_typed_data() {
        let t = f32_tensor("w", &[2, 2], &[1.0, -2.0, 3.5, 0.0]);
        assert_eq!(
            f32_values(&t),
            Some((vec![2, 2], vec![1.0, -2.0, 3.5, 0.0]))
        );
        let typed = TensorProto {
            dims: vec![3],
            data_type: Some(DataType::Float as i32),
            float_data: vec![1.0, 2.0, 3.0],
            ..Default::default()
        };
        assert_eq!(f32_values(&typed), Some((vec![3], vec![1.0, 2.0, 3.0])));
        // Wrong length or type: not a usable float tensor.
        let short = TensorProto {
            dims: vec![4],
            ..typed.clone()
        };
        assert_eq!(f32_values(&short), None);
        assert_eq!(f32_values(&i8_tensor("q", &[1], &[1])), None);
    }

    #[test]
    fn external_data_outside_the_folder_is_refused() {
        let mut t = f32_tensor("w", &[1], &[0.0]);
        t.raw_data = None;
        t.data_location = Some(DataLocation::External as i32);
        t.external_data
            .push(super::super::onnx_proto::StringStringEntryProto {
                key: Some("location".into()),
                value: Some("../secret".into()),
            });
        let err = inline_external(std::slice::from_mut(&mut t), Path::new("/tmp")).unwrap_err();
        assert!(
            err.to_string().contains("outside the model folder"),
            "{err}"
        );
    }
}

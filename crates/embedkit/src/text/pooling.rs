//! From a model's output tensor to one vector per input: pooling and L2 normalization,
//! with fastembed's numerics (sums in f64, a norm floor of 1e-12).

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewD, Axis, Ix2, Ix3};

use crate::error::{Error, Result};
use crate::registry::Pooling;

const NORM_EPS: f64 = 1e-12;

/// Pools `output` ([batch, seq, dim] or [batch, dim]) into one vector per row.
/// `mask` is the batch's attention mask ([batch, seq]).
pub fn pool(
    output: ArrayViewD<'_, f32>,
    mask: &Array2<i64>,
    pooling: Pooling,
    normalize: bool,
) -> Result<Vec<Vec<f32>>> {
    let shape = output.shape().to_vec();
    if shape.len() == 3 && shape[1] == 0 {
        return Err(Error::Unsupported(format!(
            "the model output {shape:?} has no token positions to pool"
        )));
    }
    let rows: Vec<Vec<f64>> = match (pooling, shape.len()) {
        (Pooling::Cls, 2) | (Pooling::Disabled, 2) => {
            let out = output.into_dimensionality::<Ix2>().map_err(shape_err)?;
            out.outer_iter()
                .map(|r| r.iter().map(|&v| f64::from(v)).collect())
                .collect()
        }
        (Pooling::Cls, 3) => {
            let out = output.into_dimensionality::<Ix3>().map_err(shape_err)?;
            out.index_axis(Axis(1), 0)
                .outer_iter()
                .map(|r| r.iter().map(|&v| f64::from(v)).collect())
                .collect()
        }
        (Pooling::Mean | Pooling::LastToken, 3) => {
            let out = output.into_dimensionality::<Ix3>().map_err(shape_err)?;
            check_mask(&shape, mask)?;
            out.outer_iter()
                .zip(mask.outer_iter())
                .map(|(tokens, m)| match pooling {
                    Pooling::Mean => mean(tokens, m),
                    _ => {
                        // The last real position, whichever side the batch was padded
                        // on; a row with no real token takes the last position, as
                        // fastembed's argmax does (there is one: shape[1] > 0).
                        let last = m.iter().rposition(|&v| v != 0).unwrap_or(shape[1] - 1);
                        tokens.row(last).iter().map(|&v| f64::from(v)).collect()
                    }
                })
                .collect()
        }
        (Pooling::Disabled, n) => {
            return Err(Error::Unsupported(format!(
                "pooling is disabled for this model, so it must output sentence vectors \
                 [batch, dim], but it output {n} dimensions {shape:?}; use cls, mean or \
                 last_token pooling, or select a pooled output"
            )))
        }
        (p, n) => {
            return Err(Error::Unsupported(format!(
                "{p:?} pooling needs an output of shape [batch, seq, dim], got {n} dimensions {shape:?}"
            )))
        }
    };
    Ok(rows
        .into_iter()
        .map(|v| {
            let scale = if normalize {
                1.0 / v.iter().map(|x| x * x).sum::<f64>().sqrt().max(NORM_EPS)
            } else {
                1.0
            };
            v.into_iter().map(|x| (x * scale) as f32).collect()
        })
        .collect())
}

/// The mean of the token vectors the mask marks as real, in f64 (a row with none
/// divides by 1e-9, as fastembed's clip does).
fn mean(tokens: ArrayView2<'_, f32>, mask: ArrayView1<'_, i64>) -> Vec<f64> {
    let mut sum = vec![0f64; tokens.ncols()];
    let mut count = 0f64;
    for (tok, &keep) in tokens.outer_iter().zip(mask.iter()) {
        if keep != 0 {
            count += keep as f64;
            for (s, &v) in sum.iter_mut().zip(tok.iter()) {
                *s += f64::from(v);
            }
        }
    }
    let denom = count.max(1e-9);
    sum.iter().map(|s| s / denom).collect()
}

fn check_mask(shape: &[usize], mask: &Array2<i64>) -> Result<()> {
    if mask.dim() != (shape[0], shape[1]) {
        return Err(Error::OutputShape(format!(
            "{shape:?} does not match the input batch {:?}",
            mask.dim()
        )));
    }
    Ok(())
}

fn shape_err(e: ndarray::ShapeError) -> Error {
    Error::OutputShape(e.to_string())
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
        .max(NORM_EPS);
    for x in v {
        *x = (f64::from(*x) / norm) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};

    fn out3() -> Array3<f32> {
        // batch 2, seq 3, dim 2
        Array3::from_shape_vec(
            (2, 3, 2),
            vec![1., 2., 3., 4., 100., 100., 5., 6., 7., 8., 9., 10.],
        )
        .unwrap()
    }

    #[test]
    fn mean_skips_padding() {
        let mask = array![[1, 1, 0], [1, 1, 1]];
        let v = pool(out3().into_dyn().view(), &mask, Pooling::Mean, false).unwrap();
        assert_eq!(v[0], vec![2., 3.]);
        assert_eq!(v[1], vec![7., 8.]);
    }

    #[test]
    fn cls_and_last_token() {
        let mask = array![[1, 1, 0], [0, 1, 1]];
        let cls = pool(out3().into_dyn().view(), &mask, Pooling::Cls, false).unwrap();
        assert_eq!(cls, vec![vec![1., 2.], vec![5., 6.]]);
        let last = pool(out3().into_dyn().view(), &mask, Pooling::LastToken, false).unwrap();
        assert_eq!(last, vec![vec![3., 4.], vec![9., 10.]]);
    }

    #[test]
    fn normalizes_and_keeps_zero_vectors_finite() {
        let out = array![[3f32, 4.], [0., 0.]];
        let mask = array![[1], [1]];
        let v = pool(out.into_dyn().view(), &mask, Pooling::Disabled, true).unwrap();
        assert!((v[0][0] - 0.6).abs() < 1e-7 && (v[0][1] - 0.8).abs() < 1e-7);
        assert_eq!(v[1], vec![0., 0.]);
    }

    #[test]
    fn an_output_without_positions_is_an_error_not_a_panic() {
        let empty = ndarray::Array3::<f32>::zeros((2, 0, 4));
        let mask = ndarray::Array2::<i64>::zeros((2, 0));
        for p in [Pooling::Cls, Pooling::Mean, Pooling::LastToken] {
            assert!(pool(empty.view().into_dyn(), &mask, p, true).is_err());
        }
    }

    #[test]
    fn disabled_pooling_refuses_token_outputs() {
        let mask = array![[1, 1, 1], [1, 1, 1]];
        let err = pool(out3().into_dyn().view(), &mask, Pooling::Disabled, false).unwrap_err();
        assert!(err.to_string().contains("sentence vectors"), "{err}");
    }
}

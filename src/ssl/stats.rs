//! Collapse indicator: spread of L2-normalised embeddings.

use burn::tensor::Tensor;

/// Mean over dimensions of the per-dimension standard deviation (biased, over the batch) of the
/// L2-normalised rows of `z` (`[batch, dim]` row-major).
///
/// A healthy embedding spread over the sphere gives about `1/√dim`; a collapsed one (all rows
/// equal) gives 0. Returns 0 for an empty batch.
pub fn embedding_std(z: &[f32], dim: usize) -> f32 {
    if dim == 0 || z.len() < dim {
        return 0.0;
    }
    let batch = z.len() / dim;
    let mut normed = Vec::with_capacity(batch * dim);
    for row in z.chunks_exact(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        normed.extend(row.iter().map(|v| v / norm));
    }
    let mut total = 0.0f64;
    for d in 0..dim {
        let col = normed.iter().skip(d).step_by(dim).map(|&v| v as f64);
        let mean = col.clone().sum::<f64>() / batch as f64;
        let var = col.map(|v| (v - mean) * (v - mean)).sum::<f64>() / batch as f64;
        total += var.sqrt();
    }
    (total / dim as f64) as f32
}

/// [`embedding_std`] on the device, as a one-element tensor: `z` is `[batch, dim]`. The trainer
/// reads it together with the loss, so a step costs the device one read.
pub fn embedding_std_tensor(z: Tensor<2>) -> Tensor<1> {
    let [batch, dim] = z.dims();
    if batch == 0 || dim == 0 {
        return Tensor::zeros([1], &z.device());
    }
    let norm = z.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    let normed = z / norm;
    let centred = normed.clone() - normed.mean_dim(0);
    centred.square().mean_dim(0).sqrt().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn device_std_equals_the_host_std() {
        // Deterministic, spread rows: z[i][j] = sin(1 + 7i + 3j).
        let (b, d) = (37, 11);
        let z: Vec<f32> = (0..b * d)
            .map(|k| (1.0 + 7.0 * (k / d) as f32 + 3.0 * (k % d) as f32).sin())
            .collect();
        let host = embedding_std(&z, d);
        let t = Tensor::<2>::from_data(TensorData::new(z, [b, d]), &Device::flex());
        let dev: f32 = embedding_std_tensor(t).into_scalar();
        assert!(
            (dev - host).abs() < 1e-6 * host.abs().max(1.0),
            "{dev} vs {host}"
        );
        assert!(host > 0.1, "{host}");
        let same = Tensor::<2>::ones([4, 3], &Device::flex());
        assert!(embedding_std_tensor(same).into_scalar::<f32>().abs() < 1e-7);
    }

    #[test]
    fn collapsed_embeddings_have_zero_std() {
        assert_eq!(embedding_std(&[1., 2., 1., 2., 1., 2.], 2), 0.0);
    }

    // np: z = np.array([[1,0],[0,1],[-1,0],[0,-1]]); z.std(0).mean() == 0.70710678
    #[test]
    fn spread_embeddings_match_numpy() {
        let s = embedding_std(&[1., 0., 0., 1., -1., 0., 0., -1.], 2);
        assert!((s - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }
}

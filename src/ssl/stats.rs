//! Collapse indicator: spread of L2-normalised embeddings.

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

#[cfg(test)]
mod tests {
    use super::*;

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

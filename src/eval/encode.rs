//! Backbone features of a whole dataset, for evaluation (no augmentation, inference mode).

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use crate::{
    augment::AugRecipe, dataset::DataSource, loader::PairLoaderBuilder, progress::Progress,
    sampler::SelfSampler, ssl::ResNet, Error, Result,
};

/// Batch size used when encoding a dataset.
pub const ENCODE_BATCH_SIZE: usize = 256;

/// Runs every image of `source` through `backbone` and returns the pooled features,
/// `[n, feature_dim]` row-major, in dataset order.
///
/// Images are prepared exactly as the training views of `recipe` would be — same output size,
/// channels and normalisation — but without any random augmentation. The backbone runs in
/// inference mode ([`Module::valid`]: BatchNorm uses its running statistics) on the plain
/// (non-autodiff) version of `device`.
pub fn encode_features(
    backbone: &ResNet,
    source: Arc<dyn DataSource>,
    recipe: &AugRecipe,
    device: &Device,
    progress: &dyn Progress,
) -> Result<Vec<f32>> {
    let mut clean = recipe.clone();
    for view in [&mut clean.view_a, &mut clean.view_b] {
        view.crop = None;
        view.flip_p = 0.0;
        view.jitter = None;
        view.grayscale_p = 0.0;
        view.blur = None;
        view.solarize_p = 0.0;
    }
    clean.name = format!("{}-eval", recipe.name);
    let n = source.len();
    let loader = PairLoaderBuilder::new(source)
        .recipe(clean)
        .sampler(SelfSampler)
        .shuffle(false)
        .drop_last(false)
        .batch_size(ENCODE_BATCH_SIZE)
        .build()?;
    let model = backbone.valid();
    let plain = device.clone().inner();
    let dim = backbone.feature_dim();
    let mut out = Vec::with_capacity(n * dim);
    progress.start("encode", n as u64);
    let mut expected_id = 0u64;
    for batch in loader.iter_epoch(0) {
        let batch = batch?;
        if batch.anchor_ids.first() != Some(&expected_id) {
            return Err(Error::Worker(format!(
                "encode: batch out of order (expected id {expected_id})"
            )));
        }
        expected_id += batch.len() as u64;
        let x = Tensor::<4>::from_data(TensorData::new(batch.view_a, batch.shape), &plain);
        let features = model.forward(x).into_data();
        let values = features
            .try_to_vec::<f32>()
            .map_err(|e| Error::Worker(format!("encode: reading features: {e:?}")))?;
        out.extend_from_slice(&values);
        progress.advance(batch.shape[0] as u64);
    }
    progress.finish();
    if out.len() != n * dim {
        return Err(Error::mismatch("encoded feature count", n * dim, out.len()));
    }
    Ok(out)
}

//! Shared plumbing of the Flex kernels in [`super::conv`] and [`super::norm`]: reading a Flex
//! tensor's values, wrapping results, and the switch that turns the kernels off.

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::TensorData;

/// The autodiff backend the trainer's `Device::flex().autodiff()` dispatches to.
pub(super) type AutodiffFlex = Autodiff<Flex, NoCheckpointing>;

/// `GPS_SSL_KERNELS=burn` in the environment turns this crate's Flex kernels off (every
/// convolution and batch norm goes to burn's own implementation): an escape hatch and the
/// baseline of `benches/ssl_step.rs`. Read once per process.
pub(super) fn disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("GPS_SSL_KERNELS").is_ok_and(|v| v == "burn"))
}

/// A contiguous f32 view (or copy, when the layout is strided) of a Flex tensor's values.
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().as_slice::<f32>().unwrap_or(&[]).to_vec()),
    }
}

/// A contiguous f32 Flex tensor of `shape` over `values` (no copy).
pub(super) fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Largest absolute element-wise difference of two tensors (the kernels' tests).
#[cfg(test)]
pub(super) fn max_diff<const D: usize>(
    a: burn::tensor::Tensor<D>,
    b: burn::tensor::Tensor<D>,
) -> f32 {
    (a - b).abs().max().into_scalar()
}

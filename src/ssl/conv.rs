//! 2-D convolution for the Flex CPU backend as im2col + GEMM, forward *and* backward.
//!
//! burn-flex 0.22.1 computes the forward convolution with a tiled NHWC im2col + GEMM, but the
//! backward through burn's generic defaults: the input gradient as a transposed convolution
//! (a direct loop, `conv_transpose3d_impl`) and the weight gradient as a convolution whose
//! kernel is the whole output map (skinny GEMMs with `n = kh·kw`). Profiled on a SimCLR step of
//! the `small` ResNet those two took about a quarter of the step. This module computes all three
//! products per sample on NCHW data with the same GEMM crate burn-flex uses:
//!
//! ```text
//! cols_n  [C·kh·kw, P] = im2col(x_n)                      P = Ho·Wo
//! y_n     [O, P]       = W [O, C·kh·kw] · cols_n           forward
//! dW      [O, C·kh·kw] = Σ_n dY_n [O, P] · cols_nᵀ         weight gradient
//! dx_n    [C, H, W]    = col2im(Wᵀ · dY_n)                 input gradient
//! ```
//!
//! Samples are split over the rayon pool (each worker keeps its own `dW` and scratch buffers), so
//! both cores work on every convolution. It is wired into autodiff as a custom operation on
//! `Autodiff<Flex>` (burn's `Backward` trait, the same mechanism burn's own ops use), reached
//! through the `extension` primitive API; it could be proposed upstream as burn-flex's
//! `conv2d_x_backward` / `conv2d_weight_backward`. Any other case (another backend, dtype,
//! groups or dilation) calls burn's own `conv2d`, so results never depend on the fast path
//! being available. Tests compare values and gradients with burn's implementation.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use burn::tensor::ops::ConvOptions;
//! let device = Device::flex();
//! let x = Tensor::<4>::random([2, 3, 9, 9], Distribution::Default, &device);
//! let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Default, &device);
//! let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
//! let fast = gps_ssl::ssl::conv2d(x.clone(), w.clone(), options.clone());
//! let reference = burn::tensor::module::conv2d(x, w, None, options);
//! assert_eq!(fast.dims(), [2, 4, 5, 5]);
//! let diff: f32 = (fast - reference).abs().max().into_scalar();
//! assert!(diff < 1e-4);
//! ```

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::flex::{disabled, flex_tensor, values, AutodiffFlex};

/// Shape of one convolution: input `[n, c, h, w]`, weight `[o, c, kh, kw]`, output
/// `[n, o, oh, ow]`, stride and leading padding per axis (dilation 1, one group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Geometry {
    /// The geometry when this module handles the case (dilation 1, one group, non-empty
    /// output), `None` otherwise.
    fn new(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> Option<Self> {
        let [n, c, h, wd] = x;
        let [o, wc, kh, kw] = w;
        if options.groups != 1 || options.dilation != [1, 1] || wc != c {
            return None;
        }
        let out = |size: usize, k: usize, (pb, pe): (usize, usize), s: usize| {
            (size + pb + pe).checked_sub(k).map(|span| span / s + 1)
        };
        let oh = out(h, kh, options.padding[0], options.stride[0])?;
        let ow = out(wd, kw, options.padding[1], options.stride[1])?;
        if [n, c, h, wd, o, kh, kw, oh, ow].contains(&0) || options.stride.contains(&0) {
            return None;
        }
        Some(Geometry {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            oh,
            ow,
            stride: options.stride,
            pad: [options.padding[0].0, options.padding[1].0],
        })
    }

    fn ck(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn p(&self) -> usize {
        self.oh * self.ow
    }

    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.o * self.p()
    }

    /// For kernel offset `k` along an axis: the output positions whose input coordinate
    /// `pos·s + k − pad` lies in `0..size`, as a half-open range.
    fn valid(out: usize, size: usize, k: usize, s: usize, pad: usize) -> (usize, usize) {
        // pos·s + k ≥ pad  ⇔  pos ≥ ceil((pad − k)/s)
        let lo = if pad > k { (pad - k).div_ceil(s) } else { 0 };
        // pos·s + k − pad ≤ size − 1  ⇔  pos ≤ (size − 1 + pad − k)/s
        let hi = if size + pad > k {
            ((size - 1 + pad - k) / s + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Writes the columns of one sample `x [C, H, W]` into `cols`, a row-major matrix with
    /// `C·kh·kw` rows and leading dimension `ld`, at columns `col0..col0 + P`.
    fn im2col(&self, x: &[f32], cols: &mut [f32], ld: usize, col0: usize) {
        let (p, [sy, sx], [py, px]) = (self.p(), self.stride, self.pad);
        for c in 0..self.c {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.kh {
                let (y0, y1) = Self::valid(self.oh, self.h, ky, sy, py);
                for kx in 0..self.kw {
                    let (x0, x1) = Self::valid(self.ow, self.w, kx, sx, px);
                    let row = (c * self.kh + ky) * self.kw + kx;
                    let dst = &mut cols[row * ld + col0..row * ld + col0 + p];
                    dst[..y0 * self.ow].fill(0.0);
                    dst[y1 * self.ow..].fill(0.0);
                    for oy in y0..y1 {
                        let line = &mut dst[oy * self.ow..(oy + 1) * self.ow];
                        line[..x0].fill(0.0);
                        line[x1..].fill(0.0);
                        let src = &plane[(oy * sy + ky - py) * self.w..][..self.w];
                        if sx == 1 {
                            let start = x0 + kx - px;
                            line[x0..x1].copy_from_slice(&src[start..start + (x1 - x0)]);
                        } else {
                            for (ox, v) in line[x0..x1].iter_mut().enumerate() {
                                *v = src[(x0 + ox) * sx + kx - px];
                            }
                        }
                    }
                }
            }
        }
    }

    /// `dx [C, H, W] = col2im(dcols)` of one sample whose columns sit at `col0..col0 + P` of
    /// `dcols` (leading dimension `ld`); overwrites `dx`.
    fn col2im(&self, dcols: &[f32], ld: usize, col0: usize, dx: &mut [f32]) {
        dx.fill(0.0);
        let (p, [sy, sx], [py, px]) = (self.p(), self.stride, self.pad);
        for c in 0..self.c {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.kh {
                let (y0, y1) = Self::valid(self.oh, self.h, ky, sy, py);
                for kx in 0..self.kw {
                    let (x0, x1) = Self::valid(self.ow, self.w, kx, sx, px);
                    let row = (c * self.kh + ky) * self.kw + kx;
                    let src = &dcols[row * ld + col0..row * ld + col0 + p];
                    for oy in y0..y1 {
                        let line = &src[oy * self.ow..(oy + 1) * self.ow];
                        let dst = &mut plane[(oy * sy + ky - py) * self.w..][..self.w];
                        if sx == 1 {
                            let start = x0 + kx - px;
                            for (d, &g) in
                                dst[start..start + (x1 - x0)].iter_mut().zip(&line[x0..x1])
                            {
                                *d += g;
                            }
                        } else {
                            for (ox, &g) in line[x0..x1].iter().enumerate() {
                                dst[(x0 + ox) * sx + kx - px] += g;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Row-major `dst [m, n] = (accumulate ? dst : 0) + lhs · rhs`, each operand given by its row and
/// column strides (so transposes are free).
#[allow(clippy::too_many_arguments)]
fn gemm(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[f32],
    [rhs_rs, rhs_cs]: [usize; 2],
) {
    // Checked in every build (one GEMM call covers a whole group of samples, so the three
    // comparisons are nothing next to it); overflow-checked so a wrapped product cannot pass.
    assert!(
        reach([m, n], [n, 1]).is_some_and(|r| r <= dst.len())
            && reach([m, k], [lhs_rs, lhs_cs]).is_some_and(|r| r <= lhs.len())
            && reach([k, n], [rhs_rs, rhs_cs]).is_some_and(|r| r <= rhs.len()),
        "conv gemm [{m}, {n}, {k}]: operands of {}, {} and {} values are too short",
        dst.len(),
        lhs.len(),
        rhs.len()
    );
    // SAFETY: the assert above bounds every element the strides reach inside its slice; `dst`
    // is exclusively borrowed and does not alias `lhs` or `rhs` (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Values a `[rows, cols]` matrix with strides `[row_stride, col_stride]` reaches: one past its
/// last element's offset (0 when it is empty); `None` on overflow.
fn reach([rows, cols]: [usize; 2], [rs, cs]: [usize; 2]) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

/// Samples per rayon task: enough tasks for load balance on every worker, few enough that
/// each task's `dW` accumulator and scratch are amortised. For the forward and input-gradient
/// products, whose samples are independent, the split only decides who computes what.
fn chunk_len(n: usize) -> usize {
    let tasks = 4 * rayon::current_num_threads().max(1);
    n.div_ceil(tasks).max(1)
}

/// Tasks of the weight gradient, whatever the thread count: its samples are summed per task and
/// the task sums added in task order, so the split (and with it every rounding) is a function
/// of the batch alone, and a run resumed with another thread count continues bit for bit. 8 is
/// the split a 2-core machine had (4 tasks a thread); more threads than 8 leave the rest idle in
/// this product.
const WEIGHT_GRAD_TASKS: usize = 8;

/// Values of the ordered task-sum per rayon job (a few L1/L2-sized blocks per thread).
const SUM_BLOCK: usize = 16 * 1024;

/// Columns per GEMM: samples are grouped until their output maps give about this many
/// columns, so deep layers with small maps (4×4 = 16 columns a sample) still get wide GEMMs.
const GROUP_COLUMNS: usize = 1024;

/// Samples per group for maps of `p` output pixels, at most `chunk`.
fn group_len(p: usize, chunk: usize) -> usize {
    (GROUP_COLUMNS / p).clamp(1, chunk.max(1))
}

/// `[S, O, P]` sample-major maps ⇄ the `[O, S·P]` matrix the group GEMMs use.
fn gather(maps: &[f32], o: usize, p: usize, out: &mut [f32]) {
    let s = maps.len() / (o * p);
    for (si, map) in maps.chunks_exact(o * p).enumerate() {
        for (oi, row) in map.chunks_exact(p).enumerate() {
            out[oi * s * p + si * p..][..p].copy_from_slice(row);
        }
    }
}

/// Inverse of [`gather`].
fn scatter(mat: &[f32], o: usize, p: usize, maps: &mut [f32]) {
    let s = maps.len() / (o * p);
    for (si, map) in maps.chunks_exact_mut(o * p).enumerate() {
        for (oi, row) in map.chunks_exact_mut(p).enumerate() {
            row.copy_from_slice(&mat[oi * s * p + si * p..][..p]);
        }
    }
}

/// Forward: `y [N, O, Ho, Wo]` from contiguous `x` and `w`.
fn forward(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (ck, p) = (g.ck(), g.p());
    let mut y = vec![0.0f32; g.n * g.out_len()];
    let chunk = chunk_len(g.n);
    let group = group_len(p, chunk);
    y.par_chunks_mut(chunk * g.out_len())
        .zip(x.par_chunks(chunk * g.in_len()))
        .for_each(|(ys, xs)| {
            let mut cols = vec![0.0f32; ck * group * p];
            let mut out = vec![0.0f32; g.o * group * p];
            for (yg, xg) in ys
                .chunks_mut(group * g.out_len())
                .zip(xs.chunks(group * g.in_len()))
            {
                let cols_n = xg.len() / g.in_len() * p;
                for (si, xn) in xg.chunks_exact(g.in_len()).enumerate() {
                    g.im2col(xn, &mut cols, cols_n, si * p);
                }
                // out [O, S·P] = W [O, CK] · cols [CK, S·P]
                gemm(
                    [g.o, cols_n, ck],
                    &mut out,
                    false,
                    w,
                    [ck, 1],
                    &cols,
                    [cols_n, 1],
                );
                scatter(&out[..g.o * cols_n], g.o, p, yg);
            }
        });
    y
}

/// Weight gradient `dW [O, C·kh·kw]` from contiguous `x` and output gradient `dy`.
fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (ck, p) = (g.ck(), g.p());
    let chunk = g.n.div_ceil(WEIGHT_GRAD_TASKS).max(1);
    let group = group_len(p, chunk);
    let parts: Vec<Vec<f32>> = x
        .par_chunks(chunk * g.in_len())
        .zip(dy.par_chunks(chunk * g.out_len()))
        .map(|(xs, dys)| {
            let mut cols = vec![0.0f32; ck * group * p];
            let mut dmat = vec![0.0f32; g.o * group * p];
            let mut dw = vec![0.0f32; g.o * ck];
            for (i, (xg, dyg)) in xs
                .chunks(group * g.in_len())
                .zip(dys.chunks(group * g.out_len()))
                .enumerate()
            {
                let cols_n = xg.len() / g.in_len() * p;
                for (si, xn) in xg.chunks_exact(g.in_len()).enumerate() {
                    g.im2col(xn, &mut cols, cols_n, si * p);
                }
                gather(dyg, g.o, p, &mut dmat);
                // dW += dY [O, S·P] · colsᵀ [S·P, CK]
                gemm(
                    [g.o, ck, cols_n],
                    &mut dw,
                    i > 0,
                    &dmat,
                    [cols_n, 1],
                    &cols,
                    [1, cols_n],
                );
            }
            dw
        })
        .collect();
    // Σ over tasks in task order, element by element (`collect` keeps the order); blocks of
    // elements in parallel, which changes no sum.
    let mut parts = parts.into_iter();
    let Some(mut dw) = parts.next() else {
        return vec![0.0; g.o * ck];
    };
    let rest: Vec<Vec<f32>> = parts.collect();
    dw.par_chunks_mut(SUM_BLOCK)
        .enumerate()
        .for_each(|(b, block)| {
            for part in &rest {
                let src = &part[b * SUM_BLOCK..][..block.len()];
                block.iter_mut().zip(src).for_each(|(a, v)| *a += v);
            }
        });
    dw
}

/// Input gradient `dx [N, C, H, W]` from contiguous `w` and output gradient `dy`.
fn input_grad(g: &Geometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (ck, p) = (g.ck(), g.p());
    let mut dx = vec![0.0f32; g.n * g.in_len()];
    let chunk = chunk_len(g.n);
    let group = group_len(p, chunk);
    dx.par_chunks_mut(chunk * g.in_len())
        .zip(dy.par_chunks(chunk * g.out_len()))
        .for_each(|(dxs, dys)| {
            let mut dcols = vec![0.0f32; ck * group * p];
            let mut dmat = vec![0.0f32; g.o * group * p];
            for (dxg, dyg) in dxs
                .chunks_mut(group * g.in_len())
                .zip(dys.chunks(group * g.out_len()))
            {
                let cols_n = dyg.len() / g.out_len() * p;
                gather(dyg, g.o, p, &mut dmat);
                // dcols [CK, S·P] = Wᵀ [CK, O] · dY [O, S·P]
                gemm(
                    [ck, cols_n, g.o],
                    &mut dcols,
                    false,
                    w,
                    [1, ck],
                    &dmat,
                    [cols_n, 1],
                );
                for (si, dxn) in dxg.chunks_exact_mut(g.in_len()).enumerate() {
                    g.col2im(&dcols, cols_n, si * p, dxn);
                }
            }
        });
    dx
}

fn flex_forward(g: &Geometry, x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let y = forward(g, &values(x), &values(w));
    flex_tensor(y, [g.n, g.o, g.oh, g.ow])
}

/// The backward step of the autodiff operation: the geometry and both inputs.
#[derive(Debug)]
struct GemmConv2dBackward;

impl Backward<Flex, 2> for GemmConv2dBackward {
    type State = (Geometry, FlexTensor, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (g, x, w) = ops.state;
        let dy = values(&dy);
        if let Some(node) = node_x {
            let dx = input_grad(&g, &values(&w), &dy);
            grads.register::<Flex>(node.id, flex_tensor(dx, [g.n, g.c, g.h, g.w]));
        }
        if let Some(node) = node_w {
            let dw = weight_grad(&g, &values(&x), &dy);
            grads.register::<Flex>(node.id, flex_tensor(dw, [g.o, g.c, g.kh, g.kw]));
        }
    }
}

/// 2-D convolution without bias, `x [N, C, H, W]` × `weight [O, C, kh, kw]` →
/// `[N, O, Ho, Wo]`; identical in value and gradient to `burn::tensor::module::conv2d(x, weight,
/// None, options)`, computed by this module's GEMM kernels on the Flex backend (with or
/// without autodiff) for f32, one group and dilation 1, and by burn otherwise.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, options: ConvOptions<2>) -> Tensor<4> {
    routed(x, weight, options).0
}

/// Which implementation computed a [`conv2d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// This module's kernels with the custom backward, on `Autodiff<Flex>`.
    AutodiffFlex,
    /// This module's forward on plain Flex.
    Flex,
    /// burn's `conv2d`.
    Burn,
}

fn routed(x: Tensor<4>, weight: Tensor<4>, options: ConvOptions<2>) -> (Tensor<4>, Route) {
    let geometry = (!disabled() && x.dtype() == DType::F32 && weight.dtype() == DType::F32)
        .then(|| Geometry::new(x.dims(), weight.dims(), &options))
        .flatten();
    let Some(g) = geometry else {
        let y = burn::tensor::module::conv2d(x, weight, None, options);
        return (y, Route::Burn);
    };
    if let (Ok(xa), Ok(wa)) = (
        x.clone().try_into_primitive::<AutodiffFlex>(),
        weight.clone().try_into_primitive::<AutodiffFlex>(),
    ) {
        let out = match GemmConv2dBackward
            .prepare::<NoCheckpointing>([xa.node(), wa.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (xa.primitive().clone(), wa.primitive().clone());
                let y = flex_forward(&g, &xp, &wp);
                prep.finish((g, xp, wp), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(flex_forward(&g, xa.primitive(), wa.primitive()))
            }
        };
        return (
            Tensor::from_primitive::<AutodiffFlex>(out),
            Route::AutodiffFlex,
        );
    }
    if let (Ok(xf), Ok(wf)) = (
        x.clone().try_into_primitive::<Flex>(),
        weight.clone().try_into_primitive::<Flex>(),
    ) {
        let y = Tensor::from_primitive::<Flex>(flex_forward(&g, &xf, &wf));
        return (y, Route::Flex);
    }
    let y = burn::tensor::module::conv2d(x, weight, None, options);
    (y, Route::Burn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssl::flex::max_diff;
    use burn::tensor::{Device, Distribution};

    /// The GEMM wrapper's bounds hold in release builds too: operands shorter than the shape
    /// and strides reach are refused before the unchecked GEMM runs.
    #[test]
    #[should_panic(expected = "too short")]
    fn gemm_refuses_an_operand_shorter_than_its_strides_reach() {
        let (lhs, rhs) = (vec![1.0f32; 2 * 3], vec![1.0f32; 3 * 4 - 1]);
        let mut dst = vec![0.0f32; 2 * 4];
        gemm([2, 4, 3], &mut dst, false, &lhs, [3, 1], &rhs, [4, 1]);
    }

    /// The weight gradient is the same bits under 1, 2, 3 and 5 rayon threads: its split and
    /// the order of its sums do not depend on the thread count (they did: tasks were sized by
    /// `rayon::current_num_threads` and summed with `reduce_with`).
    #[test]
    fn weight_grad_bits_do_not_depend_on_the_thread_count() {
        let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let g = Geometry::new([37, 3, 9, 9], [8, 3, 3, 3], &options).unwrap();
        let x: Vec<f32> = (0..g.n * g.in_len())
            .map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 97.0)
            .collect();
        let dy: Vec<f32> = (0..g.n * g.out_len())
            .map(|i| ((i * 104_729 % 997) as f32 - 498.0) / 113.0)
            .collect();
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| weight_grad(&g, &x, &dy))
        };
        let one = in_pool(1);
        for threads in [2, 3, 5] {
            let other = in_pool(threads);
            assert!(
                one.iter()
                    .zip(&other)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn reach_is_one_past_the_last_offset_and_none_on_overflow() {
        assert_eq!(reach([2, 4], [4, 1]), Some(8));
        assert_eq!(reach([3, 2], [1, 3]), Some(6));
        assert_eq!(reach([0, 5], [5, 1]), Some(0));
        assert_eq!(reach([usize::MAX, 2], [2, 1]), None);
    }

    /// Values and both gradients of the fast path against burn's conv2d on an autodiff device,
    /// over strides, paddings, kernel sizes and shapes the ResNets use (and odd ones).
    #[test]
    fn equals_burn_conv2d_in_value_and_gradients() {
        let device = Device::flex().autodiff();
        let cases = [
            // (n, c, h, w, o, k, stride, pad)
            (3, 2, 7, 6, 4, 3, 1, 1),
            (2, 3, 9, 9, 5, 3, 2, 1),
            (2, 4, 8, 8, 6, 1, 2, 0),
            (2, 4, 8, 8, 6, 1, 1, 0),
            (1, 3, 15, 13, 4, 7, 2, 3),
            (5, 1, 5, 5, 2, 3, 1, 0),
            (2, 2, 6, 6, 3, 3, 3, 2),
            // enough samples for several per task, so maps are grouped into wide GEMMs
            // (full and partial groups)
            (40, 3, 4, 4, 5, 3, 2, 1),
            (37, 2, 5, 5, 3, 3, 1, 1),
        ];
        for (n, c, h, w, o, k, s, p) in cases {
            let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
            let (x0, w0) = crate::train::seeded(&device, (n * 1000 + c * 100 + h) as u64, || {
                (
                    Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device),
                    Tensor::<4>::random([o, c, k, k], Distribution::Normal(0.0, 1.0), &device),
                )
            });
            // a fixed, non-uniform upstream gradient through a weighted sum
            let run = |fast: bool| {
                let x = x0.clone().detach().require_grad();
                let wt = w0.clone().detach().require_grad();
                let y = if fast {
                    let (y, route) = routed(x.clone(), wt.clone(), options.clone());
                    assert_eq!(route, Route::AutodiffFlex);
                    y
                } else {
                    burn::tensor::module::conv2d(x.clone(), wt.clone(), None, options.clone())
                };
                let weights = Tensor::<4>::ones(y.dims(), &device).cumsum(3).sin();
                let grads = (y.clone() * weights).sum().backward();
                let gx = x.grad(&grads).expect("x grad");
                let gw = wt.grad(&grads).expect("w grad");
                (y.inner(), gx, gw)
            };
            let (y_fast, gx_fast, gw_fast) = run(true);
            let (y_ref, gx_ref, gw_ref) = run(false);
            let case = format!("n{n} c{c} {h}x{w} o{o} k{k} s{s} p{p}");
            assert_eq!(y_fast.dims(), y_ref.dims(), "{case}");
            assert!(max_diff(y_fast, y_ref) < 1e-4, "forward {case}");
            assert!(max_diff(gx_fast, gx_ref) < 1e-4, "input grad {case}");
            assert!(max_diff(gw_fast, gw_ref) < 1e-3, "weight grad {case}");
        }
    }

    #[test]
    fn plain_flex_forward_and_fallbacks_equal_burn() {
        let device = Device::flex();
        let (x, w, wg) = crate::train::seeded(&device, 3, || {
            (
                Tensor::<4>::random([2, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device),
                Tensor::<4>::random([3, 4, 3, 3], Distribution::Normal(0.0, 1.0), &device),
                Tensor::<4>::random([4, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device),
            )
        });
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let reference = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone());
        let (y, route) = routed(x.clone(), w.clone(), options);
        assert_eq!(route, Route::Flex);
        assert!(max_diff(y, reference) < 1e-4);
        // dilation 2 and two groups are not handled here: burn computes them
        let dilated = ConvOptions::new([1, 1], [2, 2], [2, 2], 1);
        let reference = burn::tensor::module::conv2d(x.clone(), w.clone(), None, dilated.clone());
        let (y, route) = routed(x.clone(), w, dilated);
        assert_eq!(route, Route::Burn);
        assert!(max_diff(y, reference) < 1e-6);
        let grouped = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
        let reference = burn::tensor::module::conv2d(x.clone(), wg.clone(), None, grouped.clone());
        assert!(max_diff(conv2d(x, wg, grouped), reference) < 1e-6);
    }

    #[test]
    fn valid_ranges_match_a_brute_force_scan() {
        for size in 1usize..9 {
            for k in 0..5 {
                for s in 1..4 {
                    for pad in 0..4 {
                        let span = (size + 2 * pad).saturating_sub(4);
                        let out = span / s + 1;
                        let inside: Vec<usize> = (0..out)
                            .filter(|&pos| {
                                let i = (pos * s + k) as isize - pad as isize;
                                i >= 0 && (i as usize) < size
                            })
                            .collect();
                        let (lo, hi) = Geometry::valid(out, size, k, s, pad);
                        let got: Vec<usize> = (lo..hi).collect();
                        assert_eq!(got, inside, "size {size} k {k} s {s} pad {pad}");
                    }
                }
            }
        }
    }
}

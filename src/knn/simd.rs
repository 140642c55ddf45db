//! Distance kernels for the HNSW graph: an f32 query against rows stored as IEEE half floats
//! (f16 bits in `u16`), chosen once at run time: AVX-512F, or AVX2 + FMA + F16C, on x86-64 CPUs
//! that have them, otherwise a portable loop.
//!
//! Half-float rows halve the bytes a graph search pulls from memory per distance; graph search
//! at 10^6 points is bound by fetching rows, not by arithmetic. The kernels take one query
//! against four rows in one pass (`dot4`, `l2_4`), so four rows stream at once. The crate is
//! compiled for the baseline x86-64 target (SSE2), so only these run-time-selected kernels use
//! wide registers, fused multiply-adds and the f16 → f32 conversion instructions.
//!
//! Graph distances are therefore approximate (f16 rows, another summation order); the graph only
//! ranks candidates, and every returned neighbour is re-scored exactly in f32 with the portable
//! code (see `hnsw.rs`).

/// The instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// A dot-product / squared-L2 kernel set for this CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kernel {
    level: Level,
}

/// f32 → f16 bits (round to nearest even), for storing rows.
pub(crate) fn to_f16(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// f16 bits → f32.
pub(crate) fn from_f16(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

impl Kernel {
    /// The best kernel this CPU runs.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel {
                    level: Level::Avx512,
                };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                return Kernel { level: Level::Avx2 };
            }
        }
        Kernel {
            level: Level::Portable,
        }
    }

    /// Every kernel this CPU runs, the portable one first (for tests comparing them).
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Self> {
        let mut out = vec![Kernel {
            level: Level::Portable,
        }];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                out.push(Kernel { level: Level::Avx2 });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Kernel {
                    level: Level::Avx512,
                });
            }
        }
        out
    }

    /// `q · r` for four f16 rows `r` (all of `q`'s length).
    #[inline]
    pub(crate) fn dot4(self, q: &[f32], r: [&[u16]; 4]) -> [f32; 4] {
        self.batch4::<false>(q, r)
    }

    /// `||q - r||²` for four f16 rows `r` (all of `q`'s length).
    #[inline]
    pub(crate) fn l2_4(self, q: &[f32], r: [&[u16]; 4]) -> [f32; 4] {
        self.batch4::<true>(q, r)
    }

    #[inline]
    fn batch4<const SQ: bool>(self, q: &[f32], r: [&[u16]; 4]) -> [f32; 4] {
        debug_assert!(r.iter().all(|r| r.len() == q.len()));
        match self.level {
            // SAFETY (both arms): `detect` found the instruction set on this CPU.
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { x86::batch4_512::<SQ>(q, r) },
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { x86::batch4_256::<SQ>(q, r) },
            Level::Portable => r.map(|r| {
                q.iter()
                    .zip(r)
                    .map(|(&x, &h)| {
                        let y = from_f16(h);
                        if SQ {
                            (x - y) * (x - y)
                        } else {
                            x * y
                        }
                    })
                    .sum()
            }),
        }
    }

    /// f16 bits → f32, element by element (`out` takes `h.len()` values).
    pub(crate) fn widen(self, h: &[u16], out: &mut Vec<f32>) {
        out.clear();
        out.resize(h.len(), 0.0);
        match self.level {
            // SAFETY (both arms): `detect` found the instruction set on this CPU.
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { x86::widen_512(h, out) },
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { x86::widen_256(h, out) },
            Level::Portable => out.iter_mut().zip(h).for_each(|(o, &h)| *o = from_f16(h)),
        }
    }

    /// Asks the CPU to start loading every cache line of `v`.
    #[inline]
    pub(crate) fn prefetch<T>(self, v: &[T]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = v.as_ptr().cast::<i8>();
            for off in (0..std::mem::size_of_val(v)).step_by(64) {
                // SAFETY: prefetching is a hint and never faults; the address lies inside `v`.
                unsafe { _mm_prefetch(p.add(off), _MM_HINT_T0) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = v;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::from_f16;

    /// The sum of the 8 lanes.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Adds the scalar tail `[i, n)` of each row to `out`.
    fn tail<const SQ: bool>(q: &[f32], r: [&[u16]; 4], i: usize, n: usize, out: &mut [f32; 4]) {
        for (o, r) in out.iter_mut().zip(r) {
            for (&x, &h) in q[i..n].iter().zip(&r[i..n]) {
                let y = from_f16(h);
                *o += if SQ { (x - y) * (x - y) } else { x * y };
            }
        }
    }

    /// One f32 query against four f16 rows, 8 lanes a step, one accumulator per row, written
    /// out row by row (arrays or closures in the loop went through the stack).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn batch4_256<const SQ: bool>(q: &[f32], r: [&[u16]; 4]) -> [f32; 4] {
        let n = r.iter().fold(q.len(), |n, r| n.min(r.len()));
        let pq = q.as_ptr();
        let (p0, p1, p2, p3) = (r[0].as_ptr(), r[1].as_ptr(), r[2].as_ptr(), r[3].as_ptr());
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
        );
        #[inline(always)]
        fn term<const SQ: bool>(x: __m256, h: *const u16, acc: __m256) -> __m256 {
            // SAFETY: only inlined into `batch4_256` (AVX2 + FMA + F16C), with `h` pointing at
            // 8 readable halves.
            unsafe {
                let y = _mm256_cvtph_ps(_mm_loadu_si128(h.cast()));
                if SQ {
                    let d = _mm256_sub_ps(x, y);
                    _mm256_fmadd_ps(d, d, acc)
                } else {
                    _mm256_fmadd_ps(x, y, acc)
                }
            }
        }
        let mut i = 0;
        // SAFETY: every load reads `[i, i + 8)` with `i + 8 <= n`.
        unsafe {
            while i + 8 <= n {
                let x = _mm256_loadu_ps(pq.add(i));
                a0 = term::<SQ>(x, p0.add(i), a0);
                a1 = term::<SQ>(x, p1.add(i), a1);
                a2 = term::<SQ>(x, p2.add(i), a2);
                a3 = term::<SQ>(x, p3.add(i), a3);
                i += 8;
            }
        }
        let mut out = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
        tail::<SQ>(q, r, i, n, &mut out);
        out
    }

    /// f16 → f32, 8 a step, scalar tail (`out.len() == h.len()`).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn widen_256(h: &[u16], out: &mut [f32]) {
        let n = h.len().min(out.len());
        let mut i = 0;
        // SAFETY: every access covers `[i, i + 8)` with `i + 8 <= n`.
        unsafe {
            while i + 8 <= n {
                let y = _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().add(i).cast()));
                _mm256_storeu_ps(out.as_mut_ptr().add(i), y);
                i += 8;
            }
        }
        for (o, &x) in out[i..n].iter_mut().zip(&h[i..n]) {
            *o = from_f16(x);
        }
    }

    /// f16 → f32, 16 a step, scalar tail (`out.len() == h.len()`).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn widen_512(h: &[u16], out: &mut [f32]) {
        let n = h.len().min(out.len());
        let mut i = 0;
        // SAFETY: every access covers `[i, i + 16)` with `i + 16 <= n`.
        unsafe {
            while i + 16 <= n {
                let y = _mm512_cvtph_ps(_mm256_loadu_si256(h.as_ptr().add(i).cast()));
                _mm512_storeu_ps(out.as_mut_ptr().add(i), y);
                i += 16;
            }
        }
        for (o, &x) in out[i..n].iter_mut().zip(&h[i..n]) {
            *o = from_f16(x);
        }
    }

    /// As [`batch4_256`], 16 lanes a step.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn batch4_512<const SQ: bool>(q: &[f32], r: [&[u16]; 4]) -> [f32; 4] {
        let n = r.iter().fold(q.len(), |n, r| n.min(r.len()));
        let pq = q.as_ptr();
        let (p0, p1, p2, p3) = (r[0].as_ptr(), r[1].as_ptr(), r[2].as_ptr(), r[3].as_ptr());
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
        );
        #[inline(always)]
        fn term<const SQ: bool>(x: __m512, h: *const u16, acc: __m512) -> __m512 {
            // SAFETY: only inlined into `batch4_512` (AVX-512F), with `h` pointing at 16
            // readable halves.
            unsafe {
                let y = _mm512_cvtph_ps(_mm256_loadu_si256(h.cast()));
                if SQ {
                    let d = _mm512_sub_ps(x, y);
                    _mm512_fmadd_ps(d, d, acc)
                } else {
                    _mm512_fmadd_ps(x, y, acc)
                }
            }
        }
        let mut i = 0;
        // SAFETY: every load reads `[i, i + 16)` with `i + 16 <= n`.
        unsafe {
            while i + 16 <= n {
                let x = _mm512_loadu_ps(pq.add(i));
                a0 = term::<SQ>(x, p0.add(i), a0);
                a1 = term::<SQ>(x, p1.add(i), a1);
                a2 = term::<SQ>(x, p2.add(i), a2);
                a3 = term::<SQ>(x, p3.add(i), a3);
                i += 16;
            }
        }
        let mut out = [
            _mm512_reduce_add_ps(a0),
            _mm512_reduce_add_ps(a1),
            _mm512_reduce_add_ps(a2),
            _mm512_reduce_add_ps(a3),
        ];
        tail::<SQ>(q, r, i, n, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(len: usize, salt: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * (37 + 2 * salt) % 101) as f32 - 50.0) / 50.0)
            .collect()
    }

    #[test]
    fn every_kernel_agrees_with_f64_sums_at_every_tail_length() {
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 65, 512, 1281] {
            let q = rows(len, 0);
            let r: Vec<Vec<u16>> = (1..=4)
                .map(|s| rows(len, s).into_iter().map(to_f16).collect())
                .collect();
            let exact = |sq: bool, r: &[u16]| -> f64 {
                q.iter()
                    .zip(r)
                    .map(|(&x, &h)| {
                        let (x, y) = (f64::from(x), f64::from(from_f16(h)));
                        if sq {
                            (x - y) * (x - y)
                        } else {
                            x * y
                        }
                    })
                    .sum()
            };
            let tol = 1e-4 * (1.0 + len as f64);
            for k in Kernel::all() {
                let four = [&r[0][..], &r[1][..], &r[2][..], &r[3][..]];
                let (d4, l4) = (k.dot4(&q, four), k.l2_4(&q, four));
                for j in 0..4 {
                    let (d, l) = (exact(false, &r[j]), exact(true, &r[j]));
                    assert!((f64::from(d4[j]) - d).abs() < tol, "{k:?} dot4 {len}");
                    assert!((f64::from(l4[j]) - l).abs() < tol, "{k:?} l2_4 {len}");
                }
            }
        }
    }

    #[test]
    fn every_kernel_widens_like_the_half_crate() {
        let h: Vec<u16> = rows(37, 3).into_iter().map(to_f16).collect();
        let want: Vec<f32> = h.iter().map(|&x| from_f16(x)).collect();
        for k in Kernel::all() {
            let mut got = Vec::new();
            k.widen(&h, &mut got);
            assert_eq!(got, want, "{k:?}");
        }
    }

    #[test]
    fn half_floats_round_trip_within_their_precision() {
        for x in [0.0f32, 1.0, -0.5, 0.044_194, 1e-3, 65_504.0] {
            let back = from_f16(to_f16(x));
            assert!((back - x).abs() <= x.abs() / 1024.0, "{x} -> {back}");
        }
    }
}

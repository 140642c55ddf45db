//! Derivation of independent random streams from `(seed, epoch, position, view)`.
//!
//! Every random choice in the loader (shuffle, partner, augmentation parameters) comes from a
//! ChaCha8 generator seeded by a SplitMix64 hash of such a tuple, so results do not depend on
//! which thread computed them or in which order.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream tag for the per-epoch shuffle.
pub(crate) const STREAM_SHUFFLE: u64 = 0x5348_5546;
/// Stream tag for partner draws.
pub(crate) const STREAM_PARTNER: u64 = 0x5041_5254;
/// Stream tag for the choice between mixed samplers (see `MixSampler`).
pub(crate) const STREAM_MIX: u64 = 0x4D49_5853;
/// Stream tag for view augmentations (the view index is added).
pub(crate) const STREAM_VIEW: u64 = 0x5649_4557;

/// SplitMix64 finaliser (also the HNSW graph's level hash, `knn::graph`).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a tuple of words into one 64-bit seed.
pub(crate) fn hash_words(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x6A09_E667_F3BC_C908, |h, &w| mix(h ^ mix(w)))
}

/// A generator that is a pure function of `(seed, stream, epoch, position, slot)`.
pub(crate) fn rng_for(seed: u64, stream: u64, epoch: u64, position: u64, slot: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(hash_words(&[seed, stream, epoch, position, slot]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_every_component() {
        let base = rng_for(1, 2, 3, 4, 5).random::<u64>();
        assert_eq!(base, rng_for(1, 2, 3, 4, 5).random::<u64>());
        for other in [
            rng_for(0, 2, 3, 4, 5),
            rng_for(1, 0, 3, 4, 5),
            rng_for(1, 2, 0, 4, 5),
            rng_for(1, 2, 3, 0, 5),
            rng_for(1, 2, 3, 4, 0),
        ] {
            let mut other = other;
            assert_ne!(base, other.random::<u64>());
        }
    }
}

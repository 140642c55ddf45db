//! Re-mining the GPS neighbour lists during training (the official code's `reload_freq`).
//!
//! Every [`RemineConfig::every`] epochs, at an epoch boundary, the online backbone encodes the
//! whole training set (no augmentation, inference mode: [`encode_features`]) and the `k` nearest
//! neighbours of every sample are searched again among those features (cosine, self excluded;
//! [`NeighbourBuilder`]'s `auto` method: exact search, HNSW above its cost model's threshold).
//! The epochs that follow draw each partner from the re-mined lists with probability
//! [`RemineConfig::mix`], else from the loader's own sampler (the prior's lists for GPS, the
//! anchor itself for plain SSL) through a [`MixSampler`].
//!
//! ```text
//! epoch:    0   1 | 2   3 | 4   5      every = 2
//! lists:  prior   | e2    | e4         e2 = mined from the weights at the end of epoch 1
//! ```
//!
//! Deterministic and resumable: the lists mined at the start of epoch `e` are written to
//! `remined-e<e>.parquet` in the run folder (a neighbours file stamped with the run hash and
//! the epoch) before that epoch trains, and a resumed run reads them back instead of mining
//! from later weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::store::META_DATASET_FINGERPRINT;
use crate::{
    augment::AugRecipe,
    dataset::DataSource,
    eval::encode_features,
    knn::{label_purity, Metric, NeighbourBuilder, NeighbourLists, Purity},
    progress::Progress,
    ssl::ResNet,
    store::NeighbourTable,
    Error, Result,
};

/// Default [`RemineConfig::mix`]: every partner from the re-mined lists.
pub const DEFAULT_REMINE_MIX: f64 = 1.0;
/// Metadata key of a re-mined lists file: the epoch at whose start the lists were mined.
pub const META_REMINE_EPOCH: &str = "gps.remine.epoch";
/// Metadata key of a re-mined lists file: the run hash of the run that mined them.
pub const META_REMINE_RUN_HASH: &str = "gps.remine.run_hash";
/// Metadata key prefix of a re-mined lists file: label purity at `@k` (when labels are known).
pub const META_REMINE_PURITY_PREFIX: &str = "gps.remine.purity@";

/// How a run re-mines its neighbour lists (part of the run's identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemineConfig {
    /// Re-mine at the start of every epoch that is a multiple of `every` (≥ 1), from the
    /// weights at the end of the epoch before.
    pub every: usize,
    /// Fraction of partners drawn from the re-mined lists, in `[0, 1]`; the rest come from the
    /// loader's sampler. Default [`DEFAULT_REMINE_MIX`].
    pub mix: f64,
    /// Neighbours per re-mined list (the partner is drawn uniformly from them).
    pub k: usize,
}

impl RemineConfig {
    /// Re-mine `k` neighbours every `every` epochs, all partners from the re-mined lists.
    pub fn new(every: usize, k: usize) -> Self {
        RemineConfig {
            every,
            mix: DEFAULT_REMINE_MIX,
            k,
        }
    }

    /// The same, drawing a fraction `mix` of partners from the re-mined lists.
    pub fn with_mix(mut self, mix: f64) -> Self {
        self.mix = mix;
        self
    }

    /// Checks `every ≥ 1`, `k ≥ 1` and `mix` in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if self.every == 0 {
            return Err(Error::invalid(
                "remine every",
                "0 (must be at least 1 epoch)",
            ));
        }
        if self.k == 0 {
            return Err(Error::invalid("remine k", "0 (must be at least 1)"));
        }
        if !(0.0..=1.0).contains(&self.mix) {
            return Err(Error::invalid(
                "remine mix",
                format!(
                    "{} (the fraction of re-mined partners must be in [0, 1])",
                    self.mix
                ),
            ));
        }
        Ok(())
    }

    /// The epoch at whose start the lists used in `epoch` were mined; 0 means the loader's own
    /// sampler (nothing re-mined yet).
    pub fn mined_at(&self, epoch: usize) -> usize {
        epoch / self.every.max(1) * self.every.max(1)
    }
}

/// `dir/remined-e<epoch>.parquet`: where a run keeps the lists mined at the start of `epoch`.
pub fn remined_file(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("remined-e{epoch}.parquet"))
}

/// Lists mined from a backbone's features, with their label purity.
#[derive(Debug, Clone)]
pub struct MinedLists {
    /// One row per sample, `k` neighbour ids each (self excluded).
    pub lists: NeighbourLists,
    /// Label purity at 1 and `k` (`None` when the dataset has unlabelled samples).
    pub purity: Option<Vec<Purity>>,
}

/// The `k` nearest neighbours (cosine, self excluded) of every sample of `dataset` among the
/// features of `backbone` ([`encode_features`] with `recipe`'s geometry and normalisation, no
/// augmentation), and their label purity at 1 and `k`.
pub fn mine_lists(
    backbone: &ResNet,
    dataset: Arc<dyn DataSource>,
    recipe: &AugRecipe,
    k: usize,
    device: &Device,
    progress: &dyn Progress,
) -> Result<MinedLists> {
    let n = dataset.len();
    let features = encode_features(backbone, dataset.clone(), recipe, device, progress)?;
    let run = NeighbourBuilder::new(&features, backbone.feature_dim())
        .k(k)
        .metric(Metric::Cosine)
        .include_self(false)
        .build()?
        .run_with(progress)?;
    let labels = (0..n)
        .map(|i| dataset.label(i))
        .collect::<Result<Vec<_>>>()?;
    let mut ks = vec![1, k];
    ks.dedup();
    let purity = label_purity(&run.lists, &labels, &ks)?;
    Ok(MinedLists {
        lists: run.lists,
        purity,
    })
}

/// Writes `mined` to [`remined_file`]`(dir, epoch)`, stamped with the run, epoch, dataset and
/// purity (through a temporary file and a rename).
pub(crate) fn save_remined(
    dir: &Path,
    epoch: usize,
    run_hash: &str,
    fingerprint: &str,
    mined: &MinedLists,
) -> Result<()> {
    let mut meta = BTreeMap::new();
    meta.insert(META_REMINE_EPOCH.to_string(), epoch.to_string());
    meta.insert(META_REMINE_RUN_HASH.to_string(), run_hash.to_string());
    meta.insert(
        META_DATASET_FINGERPRINT.to_string(),
        fingerprint.to_string(),
    );
    meta.insert("gps.knn.metric".into(), Metric::Cosine.name().into());
    meta.insert("gps.knn.include_self".into(), "false".into());
    meta.insert("gps.version".into(), env!("CARGO_PKG_VERSION").into());
    for p in mined.purity.iter().flatten() {
        meta.insert(
            format!("{META_REMINE_PURITY_PREFIX}{}", p.k),
            format!("{:.6}", p.purity),
        );
    }
    NeighbourTable::new(mined.lists.clone(), meta).write(remined_file(dir, epoch))
}

/// Reads the lists a run saved with [`save_remined`], checking that they belong to this run
/// (`run_hash`), epoch and dataset.
pub(crate) fn load_remined(
    dir: &Path,
    epoch: usize,
    run_hash: &str,
    fingerprint: &str,
    samples: usize,
) -> Result<NeighbourLists> {
    let path = remined_file(dir, epoch);
    let table = NeighbourTable::read(&path)?;
    let meta = |key: &str| table.metadata.get(key).map(String::as_str).unwrap_or("");
    if meta(META_REMINE_RUN_HASH) != run_hash {
        return Err(Error::mismatch(
            format!("{}: {META_REMINE_RUN_HASH}", path.display()),
            run_hash,
            meta(META_REMINE_RUN_HASH),
        ));
    }
    if meta(META_REMINE_EPOCH) != epoch.to_string() {
        return Err(Error::mismatch(
            format!("{}: {META_REMINE_EPOCH}", path.display()),
            epoch,
            meta(META_REMINE_EPOCH),
        ));
    }
    table
        .check_dataset(fingerprint, samples)
        .map_err(|e| Error::format(&path, e.to_string()))?;
    if !table.is_dense() || table.lists.len() != samples {
        return Err(Error::format(
            &path,
            format!(
                "expected one row per sample ({samples}), found {}",
                table.lists.len()
            ),
        ));
    }
    Ok(table.lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_force_change_only_at_multiples_of_every() {
        let r = RemineConfig::new(2, 5);
        let mined: Vec<usize> = (0..6).map(|e| r.mined_at(e)).collect();
        assert_eq!(mined, [0, 0, 2, 2, 4, 4]);
        assert_eq!(RemineConfig::new(1, 5).mined_at(3), 3);
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(RemineConfig::new(0, 5).validate().is_err());
        assert!(RemineConfig::new(1, 0).validate().is_err());
        let err = RemineConfig::new(1, 5)
            .with_mix(1.5)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("mix"), "{err}");
        RemineConfig::new(1, 5).with_mix(0.5).validate().unwrap();
    }
}

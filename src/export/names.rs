//! Parameter names: this crate's module paths ↔ torchvision's ResNet state-dict keys.
//!
//! | burn path (this crate) | torchvision key |
//! |---|---|
//! | `stem_conv.weight` | `conv1.weight` |
//! | `stem_bn.{gamma,beta,running_mean,running_var}` | `bn1.{weight,bias,running_mean,running_var}` |
//! | `blocks.<b>.convs.<j>.weight` | `layer<s+1>.<i>.conv<j+1>.weight` |
//! | `blocks.<b>.norms.<j>.*` | `layer<s+1>.<i>.bn<j+1>.*` |
//! | `blocks.<b>.shortcut.weight` | `layer<s+1>.<i>.downsample.0.weight` |
//! | `blocks.<b>.shortcut_norm.*` | `layer<s+1>.<i>.downsample.1.*` |
//! | `linears.<j>.{weight,bias}` (projector) | `projector.layers.<j>.linear.{weight,bias}` |
//! | `norms.<j>.*` (projector) | `projector.layers.<j>.bn.*` |
//!
//! where block `b` is block `i` of stage `s` (blocks are numbered through the stages in
//! order). The `gamma`/`beta` ↔ `weight`/`bias` renaming and the transposition of linear weights
//! are burn-store's [`BurnToPyTorchAdapter`](burn::store::BurnToPyTorchAdapter) /
//! [`PyTorchToBurnAdapter`](burn::store::PyTorchToBurnAdapter); the path renaming is the
//! [`KeyRemapper`] built here.

use burn::store::KeyRemapper;

use crate::ssl::ResNetConfig;
use crate::{Error, Result};

/// `(burn prefix, torchvision prefix)` of every module of a backbone with `config`, stem first.
pub(crate) fn backbone_prefixes(config: &ResNetConfig) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("stem_conv.".to_string(), "conv1.".to_string()),
        ("stem_bn.".to_string(), "bn1.".to_string()),
    ];
    let convs = match config.block {
        crate::ssl::BlockKind::Basic => 2,
        crate::ssl::BlockKind::Bottleneck => 3,
    };
    let mut b = 0;
    for (stage, &n) in config.layers.iter().enumerate() {
        for i in 0..n {
            let torch = format!("layer{}.{i}.", stage + 1);
            for j in 0..convs {
                pairs.push((
                    format!("blocks.{b}.convs.{j}."),
                    format!("{torch}conv{}.", j + 1),
                ));
                pairs.push((
                    format!("blocks.{b}.norms.{j}."),
                    format!("{torch}bn{}.", j + 1),
                ));
            }
            pairs.push((
                format!("blocks.{b}.shortcut."),
                format!("{torch}downsample.0."),
            ));
            pairs.push((
                format!("blocks.{b}.shortcut_norm."),
                format!("{torch}downsample.1."),
            ));
            b += 1;
        }
    }
    pairs
}

/// `(burn prefix, exported prefix)` of the projector's layers (`layers` linear layers).
pub(crate) fn projector_prefixes(layers: usize) -> Vec<(String, String)> {
    (0..layers)
        .flat_map(|j| {
            [
                (
                    format!("linears.{j}."),
                    format!("projector.layers.{j}.linear."),
                ),
                (format!("norms.{j}."), format!("projector.layers.{j}.bn.")),
            ]
        })
        .collect()
}

/// A remapper renaming paths that start with the first of each pair to start with the second
/// (`to_torch`), or back (`!to_torch`).
pub(crate) fn remapper(pairs: &[(String, String)], to_torch: bool) -> Result<KeyRemapper> {
    let mut remapper = KeyRemapper::new();
    for (burn, torch) in pairs {
        let (from, to) = if to_torch {
            (burn, torch)
        } else {
            (torch, burn)
        };
        // Anchored on the whole prefix: a renamed path never matches another pattern's source
        // (burn paths start with `stem_`/`blocks.`/`linears.`/`norms.`, torchvision keys with
        // `conv1.`/`bn1.`/`layer`/`projector.`).
        remapper = remapper
            .add_pattern(format!("^{}(.*)$", regex_escape(from)), format!("{to}$1"))
            .map_err(|e| Error::invalid("parameter name pattern", e.to_string()))?;
    }
    Ok(remapper)
}

/// `text` with the regex metacharacters it can contain (`.`) escaped.
fn regex_escape(text: &str) -> String {
    text.replace('.', r"\.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssl::Stem;

    #[test]
    fn resnet18_blocks_map_onto_torchvision_layers() {
        let pairs = backbone_prefixes(&ResNetConfig::resnet18(3, Stem::ImageNet));
        let find = |burn: &str| {
            pairs
                .iter()
                .find(|(b, _)| b == burn)
                .map(|(_, t)| t.as_str())
        };
        assert_eq!(find("stem_conv."), Some("conv1."));
        assert_eq!(find("blocks.0.convs.1."), Some("layer1.0.conv2."));
        assert_eq!(find("blocks.3.norms.0."), Some("layer2.1.bn1."));
        assert_eq!(find("blocks.2.shortcut."), Some("layer2.0.downsample.0."));
        assert_eq!(
            find("blocks.7.shortcut_norm."),
            Some("layer4.1.downsample.1.")
        );
        assert_eq!(find("blocks.8.convs.0."), None);
    }

    #[test]
    fn bottleneck_blocks_have_three_convolutions() {
        let pairs = backbone_prefixes(&ResNetConfig::resnet50(3, Stem::ImageNet));
        assert!(pairs.contains(&("blocks.15.convs.2.".into(), "layer4.2.conv3.".into())));
        assert!(pairs.contains(&("blocks.3.norms.2.".into(), "layer2.0.bn3.".into())));
    }
}

//! The encoder as an ONNX graph (opset 17): BatchNorm folded into the convolutions (and into
//! the projector's linear layers), symbolic batch and spatial dimensions.
//!
//! Input `input`: `[batch, 3, height, width]` f32, normalised as in training. A 1-channel
//! (grey) encoder also takes 3 channels, as every prior does (`gps-ssl embed` replicates grey
//! images): its first convolution's weights are split equally over the three channels, so three
//! equal planes give exactly the grey network's input. Output `features`: `[batch,
//! feature_dim]`, the global-average-pooled backbone features; with the projector also
//! `projection`: `[batch, proj_dim]`.

use super::proto::{self, Dim, Message};
use super::state::StateDict;
use crate::ssl::{BlockKind, MlpConfig, ResNetConfig, Stem, TensorBlob};
use crate::{Error, Result};

/// ONNX opset of the graph.
pub const ONNX_OPSET: i64 = 17;
/// ONNX IR version written (IR 8 goes with opset 17).
const IR_VERSION: i64 = 8;
/// Epsilon of every batch norm of the backbone and heads (burn's and PyTorch's default).
const BN_EPSILON: f64 = 1e-5;
/// Name of the graph's input.
pub const ONNX_INPUT: &str = "input";
/// Name of the backbone-features output.
pub const ONNX_FEATURES: &str = "features";
/// Name of the projector output (with `--projector`).
pub const ONNX_PROJECTION: &str = "projection";

/// Builds the graph being written: nodes, initialisers and fresh value names.
struct Graph<'a> {
    state: &'a StateDict,
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    counter: usize,
}

impl<'a> Graph<'a> {
    fn tensor(&self, name: &str) -> Result<&'a TensorBlob> {
        self.state
            .get(name)
            .ok_or_else(|| Error::invalid("encoder weights", format!("no tensor `{name}`")))
    }

    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}_{}", self.counter)
    }

    fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        self.initializers.push(proto::tensor(name, dims, values));
        name.to_string()
    }

    fn op(&mut self, op: &str, inputs: &[&str], attributes: Vec<Message>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.nodes
            .push(proto::node(op, &out, inputs, &[out.as_str()], attributes));
        out
    }

    /// `bn(conv(x))` as one convolution with bias (+ ReLU); `conv` / `bn` are name prefixes.
    /// `replicate_grey` spreads a 1-channel kernel over 3 input channels.
    fn conv_bn(
        &mut self,
        x: &str,
        conv: &str,
        bn: &str,
        stride: usize,
        relu: bool,
        replicate_grey: bool,
    ) -> Result<String> {
        let w = self.tensor(&format!("{conv}weight"))?;
        let [out_ch, in_ch, kh, kw] = <[usize; 4]>::try_from(w.shape.as_slice()).map_err(|_| {
            Error::invalid(
                "encoder weights",
                format!("{conv}weight: shape {:?}", w.shape),
            )
        })?;
        let (scale, shift) = self.fold(bn, out_ch)?;
        let per_out = in_ch * kh * kw;
        let (in_ch, weights) = if replicate_grey {
            let plane = kh * kw;
            let mut v = Vec::with_capacity(out_ch * 3 * plane);
            for (k, &s) in w.values.chunks_exact(plane).zip(&scale) {
                for _ in 0..3 {
                    v.extend(k.iter().map(|&x| (f64::from(x) * s / 3.0) as f32));
                }
            }
            (3, v)
        } else {
            let v = w
                .values
                .chunks_exact(per_out)
                .zip(&scale)
                .flat_map(|(k, &s)| k.iter().map(move |&x| (f64::from(x) * s) as f32))
                .collect();
            (in_ch, v)
        };
        let shift: Vec<f32> = shift.iter().map(|&b| b as f32).collect();
        let wn = self.constant(&format!("{conv}weight"), &[out_ch, in_ch, kh, kw], &weights);
        let bn_name = self.constant(&format!("{conv}bias"), &[out_ch], &shift);
        let (ph, pw) = ((kh - 1) / 2, (kw - 1) / 2);
        let s = stride as i64;
        let y = self.op(
            "Conv",
            &[x, &wn, &bn_name],
            vec![
                proto::ints("kernel_shape", &[kh as i64, kw as i64]),
                proto::ints("strides", &[s, s]),
                proto::ints("pads", &[ph as i64, pw as i64, ph as i64, pw as i64]),
            ],
        );
        Ok(if relu {
            self.op("Relu", &[&y], vec![])
        } else {
            y
        })
    }

    /// Per-channel `(scale, shift)` of the batch norm at prefix `bn` in inference mode:
    /// `y = x * scale + shift`, `scale = γ / sqrt(var + ε)`, `shift = β − mean · scale`.
    fn fold(&self, bn: &str, channels: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let get = |p: &str| -> Result<&TensorBlob> {
            let t = self.tensor(&format!("{bn}{p}"))?;
            if t.values.len() != channels {
                return Err(Error::mismatch(
                    format!("length of {bn}{p}"),
                    channels,
                    t.values.len(),
                ));
            }
            Ok(t)
        };
        let (gamma, beta) = (get("weight")?, get("bias")?);
        let (mean, var) = (get("running_mean")?, get("running_var")?);
        let scale: Vec<f64> = (0..channels)
            .map(|c| f64::from(gamma.values[c]) / (f64::from(var.values[c]) + BN_EPSILON).sqrt())
            .collect();
        let shift = (0..channels)
            .map(|c| f64::from(beta.values[c]) - f64::from(mean.values[c]) * scale[c])
            .collect();
        Ok((scale, shift))
    }
}

/// The ONNX model bytes of a backbone with `config` and torchvision-named `state` (from
/// [`super::state::state_dict`]), plus the projector (`projector.layers.<j>.*` names in
/// `projector_state`) when given. `metadata` goes into the model's `metadata_props`.
pub(crate) fn encoder_model(
    config: &ResNetConfig,
    state: &StateDict,
    projector: Option<(&MlpConfig, &StateDict)>,
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    let replicate_grey = match config.in_channels {
        1 => true,
        3 => false,
        other => {
            return Err(Error::invalid(
                "encoder for ONNX export",
                format!(
                    "{other} input channels; the ONNX prior export takes 1- or 3-channel encoders"
                ),
            ))
        }
    };
    let mut g = Graph {
        state,
        nodes: Vec::new(),
        initializers: Vec::new(),
        counter: 0,
    };
    let stem_stride = match config.stem {
        Stem::ImageNet => 2,
        Stem::Small => 1,
    };
    let mut h = g.conv_bn(
        ONNX_INPUT,
        "conv1.",
        "bn1.",
        stem_stride,
        true,
        replicate_grey,
    )?;
    if config.stem == Stem::ImageNet {
        h = g.op(
            "MaxPool",
            &[&h],
            vec![
                proto::ints("kernel_shape", &[3, 3]),
                proto::ints("strides", &[2, 2]),
                proto::ints("pads", &[1, 1, 1, 1]),
            ],
        );
    }
    for (stage, &n) in config.layers.iter().enumerate() {
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let p = format!("layer{}.{i}.", stage + 1);
            let identity = if state.contains_key(&format!("{p}downsample.0.weight")) {
                let (c, b) = (format!("{p}downsample.0."), format!("{p}downsample.1."));
                g.conv_bn(&h, &c, &b, stride, false, false)?
            } else {
                h.clone()
            };
            // (conv, bn, stride, relu) of each convolution: the stride sits on the 3×3 one.
            let convs: Vec<(usize, bool)> = match config.block {
                BlockKind::Basic => vec![(stride, true), (1, false)],
                BlockKind::Bottleneck => vec![(1, true), (stride, true), (1, false)],
            };
            let mut x = h.clone();
            for (j, (s, relu)) in convs.into_iter().enumerate() {
                let (c, b) = (format!("{p}conv{}.", j + 1), format!("{p}bn{}.", j + 1));
                x = g.conv_bn(&x, &c, &b, s, relu, false)?;
            }
            let sum = g.op("Add", &[&x, &identity], vec![]);
            h = g.op("Relu", &[&sum], vec![]);
        }
    }
    let pooled = g.op("GlobalAveragePool", &[&h], vec![]);
    g.nodes.push(proto::node(
        "Flatten",
        "flatten_features",
        &[&pooled],
        &[ONNX_FEATURES],
        vec![proto::int("axis", 1)],
    ));
    let mut outputs = vec![proto::value_info(
        ONNX_FEATURES,
        &[Dim::Named("batch"), Dim::Fixed(config.feature_dim())],
    )];
    if let Some((mlp, pstate)) = projector {
        let out_dim = projector_graph(&mut g, mlp, pstate)?;
        outputs.push(proto::value_info(
            ONNX_PROJECTION,
            &[Dim::Named("batch"), Dim::Fixed(out_dim)],
        ));
    }

    let input = proto::value_info(
        ONNX_INPUT,
        &[
            Dim::Named("batch"),
            Dim::Fixed(3),
            Dim::Named("height"),
            Dim::Named("width"),
        ],
    );
    let mut graph = Message::new();
    for n in g.nodes {
        graph = graph.message(1, n);
    }
    graph = graph.string(2, "gps_ssl_encoder");
    for t in g.initializers {
        graph = graph.message(5, t);
    }
    graph = graph.message(11, input);
    for o in outputs {
        graph = graph.message(12, o);
    }
    let mut model = Message::new()
        .int(1, IR_VERSION)
        .string(2, "gps-ssl")
        .string(3, env!("CARGO_PKG_VERSION"))
        .message(7, graph)
        .message(8, Message::new().string(1, "").int(2, ONNX_OPSET));
    for (k, v) in metadata {
        model = model.message(14, Message::new().string(1, k).string(2, v));
    }
    Ok(model.into_bytes())
}

/// Appends the projector (linear layers with their batch norms folded in, ReLU between) on
/// [`ONNX_FEATURES`]; returns its output width.
fn projector_graph<'a>(g: &mut Graph<'a>, mlp: &MlpConfig, state: &'a StateDict) -> Result<usize> {
    let backbone_state = g.state;
    g.state = state;
    let n = mlp.dims.len() - 1;
    let mut x = ONNX_FEATURES.to_string();
    for j in 0..n {
        let (din, dout) = (mlp.dims[j], mlp.dims[j + 1]);
        let p = format!("projector.layers.{j}.");
        let w = g.tensor(&format!("{p}linear.weight"))?; // [out, in] (PyTorch layout)
        if w.values.len() != din * dout {
            return Err(Error::mismatch(
                format!("size of {p}linear.weight"),
                din * dout,
                w.values.len(),
            ));
        }
        let bias: Vec<f64> = match state.get(&format!("{p}linear.bias")) {
            Some(b) => b.values.iter().map(|&v| f64::from(v)).collect(),
            None => vec![0.0; dout],
        };
        let (scale, shift) = if state.contains_key(&format!("{p}bn.weight")) {
            let (s, t) = g.fold(&format!("{p}bn."), dout)?;
            let shift = (0..dout).map(|o| t[o] + bias[o] * s[o]).collect();
            (s, shift)
        } else {
            (vec![1.0; dout], bias)
        };
        let weights: Vec<f32> = w
            .values
            .chunks_exact(din)
            .zip(&scale)
            .flat_map(|(row, &s)| row.iter().map(move |&v| (f64::from(v) * s) as f32))
            .collect();
        let shift: Vec<f32> = shift.iter().map(|&v| v as f32).collect();
        let wn = g.constant(&format!("{p}weight"), &[dout, din], &weights);
        let bn = g.constant(&format!("{p}bias"), &[dout], &shift);
        let last = j + 1 == n;
        let attributes = vec![proto::int("transB", 1)];
        if last {
            g.nodes.push(proto::node(
                "Gemm",
                "projection_gemm",
                &[&x, &wn, &bn],
                &[ONNX_PROJECTION],
                attributes,
            ));
        } else {
            let y = g.op("Gemm", &[&x, &wn, &bn], attributes);
            x = g.op("Relu", &[&y], vec![]);
        }
    }
    g.state = backbone_state;
    Ok(mlp.output_dim())
}

//! The embed stage: run an ONNX prior over images and datasets.
//!
//! Running a prior ([`Embedder`], [`EmbedJob`]) needs the `embed` feature (ONNX Runtime, loaded
//! at run time). The prior's data contracts need nothing: [`PriorManifest`] (the TOML that names
//! a prior's ONNX file, input and normalisation) and [`Preprocess`] (what the prior's input
//! must be), which `export` writes for a trained encoder.
//!
//! An [`Embedder`] owns the ONNX Runtime sessions of a prior ([`PriorManifest`]) and its
//! [`Preprocess`]ing. [`Embedder::embed_images`] embeds a slice of images; [`EmbedJob`] runs the
//! embedder over a whole [`DataSource`](crate::dataset::DataSource) with decoding on worker threads,
//! overlapped with inference, and writes `embeddings.parquet` (resumable, shardable).
//!
//! On the CPU, an embedder holds [replicas](EmbedderBuilder::replicas): sessions of the same
//! model that run whole batches side by side, each on its share of the threads. Each image's
//! embedding is computed by one session alone, so the output does not depend on which replica
//! ran it (`tests/embed.rs` checks replicas against a single session).
//!
//! ```no_run
//! # #[cfg(feature = "embed")]
//! # fn main() -> gps_ssl::Result<()> {
//! use gps_ssl::embed::{Embedder, PriorManifest};
//! let prior = PriorManifest::load("models/efficientnet_lite0.toml")?;
//! let mut embedder = Embedder::builder(prior).resolution(112).batch_size(64).build()?;
//! let img = gps_ssl::dataset::Image::new(28, 28, 1, vec![0; 28 * 28]);
//! let v = embedder.embed_images(&[img])?; // [1, 1280], L2-normalised
//! assert_eq!(v.len(), embedder.dim());
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "embed"))]
//! # fn main() {}
//! ```

#[cfg(feature = "embed")]
mod job;
#[cfg(feature = "embed")]
mod pipeline;
mod preprocess;
mod prior;
mod resize;
#[cfg(feature = "embed")]
mod runtime;

#[cfg(feature = "embed")]
pub use job::{EmbedJob, EmbedSummary, ShardSpec, JPEG_DECODER_KEY};
pub use preprocess::Preprocess;
pub use prior::PriorManifest;
#[cfg(feature = "embed")]
pub use runtime::{find_onnx_runtime, init_onnx_runtime, missing_provider, ORT_DYLIB_ENV};

/// Default rows per chunk of `embeddings.parquet` (= per Parquet row group, = the unit of an
/// embedding job's resumption).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 4096;

#[cfg(feature = "embed")]
use crate::{dataset::Image, Error, Result};
#[cfg(feature = "embed")]
use ort::session::Session;
#[cfg(feature = "embed")]
use ort::value::TensorRef;

#[cfg(feature = "embed")]
/// Default number of images per batch: the unit of decoding, ordering and output, run through
/// the network in calls of [`EmbedderBuilder::inference_batch`] images.
pub const DEFAULT_BATCH_SIZE: usize = 64;

#[cfg(feature = "embed")]
/// Default number of CPU [replicas](EmbedderBuilder::replicas), capped at the thread count.
pub const DEFAULT_CPU_REPLICAS: usize = 2;

#[cfg(feature = "embed")]
/// Default images per ONNX Runtime call on the CPU ([`EmbedderBuilder::inference_batch`]).
pub const DEFAULT_CPU_INFERENCE_BATCH: usize = 8;

#[cfg(feature = "embed")]
/// Where ONNX Runtime executes the prior. Displays as `cpu` or `cuda:<device>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider on the given device. Needs the `onnxruntime-gpu`
    /// library (`GPS_SSL_ORT=gpu scripts/setup.sh`), not a cargo feature. A provider that
    /// cannot register is an error naming what is missing, never a silent CPU fallback.
    Cuda(i32),
}

#[cfg(feature = "embed")]
impl ExecutionProvider {
    /// The names [`FromStr`](std::str::FromStr) accepts.
    pub const NAMES: &'static str = "cpu | cuda[:N]";
}

#[cfg(feature = "embed")]
impl std::fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecutionProvider::Cpu => f.write_str("cpu"),
            ExecutionProvider::Cuda(d) => write!(f, "cuda:{d}"),
        }
    }
}

#[cfg(feature = "embed")]
/// `cpu`, `cuda` (device 0) or `cuda:N`.
///
/// ```
/// use gps_ssl::embed::ExecutionProvider;
/// assert_eq!("cuda:1".parse::<ExecutionProvider>()?, ExecutionProvider::Cuda(1));
/// assert_eq!("cuda".parse::<ExecutionProvider>()?.to_string(), "cuda:0");
/// assert!("tensorrt".parse::<ExecutionProvider>().is_err());
/// # Ok::<(), gps_ssl::Error>(())
/// ```
impl std::str::FromStr for ExecutionProvider {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "execution provider",
                format!("`{s}`; expected {}", Self::NAMES),
            )
        };
        match s.split_once(':') {
            None if s == "cpu" => Ok(ExecutionProvider::Cpu),
            None if s == "cuda" => Ok(ExecutionProvider::Cuda(0)),
            Some(("cuda", n)) => n
                .parse::<u16>()
                .map(|n| ExecutionProvider::Cuda(i32::from(n)))
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

#[cfg(feature = "embed")]
/// Builds an [`Embedder`]. Obtain one with [`Embedder::builder`].
#[derive(Debug, Clone)]
pub struct EmbedderBuilder {
    prior: PriorManifest,
    provider: ExecutionProvider,
    batch_size: usize,
    threads: Option<usize>,
    replicas: Option<usize>,
    inference_batch: Option<usize>,
    resolution: Option<u32>,
    output_name: Option<String>,
    normalize: bool,
}

#[cfg(feature = "embed")]
impl EmbedderBuilder {
    /// The execution provider. Defaults to [`ExecutionProvider::Cpu`].
    pub fn execution_provider(mut self, provider: ExecutionProvider) -> Self {
        self.provider = provider;
        self
    }

    /// Images per batch (decoded together, written in order; part of a job's identity), run in
    /// calls of [`inference_batch`](Self::inference_batch) images. Defaults to
    /// [`DEFAULT_BATCH_SIZE`].
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// ONNX Runtime threads in all, shared out among the [replicas](Self::replicas). Defaults
    /// to the number of available CPU cores.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Sessions that run batches side by side. Each gets `threads / replicas` intra-op threads
    /// (the first `threads % replicas` one more), so `replicas == threads` runs one
    /// single-threaded session a core, with no intra-op synchronisation on small layers, at the
    /// price of one copy of the weights and of the activation
    /// memory per replica. [`EmbedJob`] feeds all of them; [`Embedder::embed_images`] and
    /// [`Embedder::run_batch`] use the first.
    ///
    /// Defaults to [`DEFAULT_CPU_REPLICAS`] capped at `threads` on the CPU, and to 1 on a GPU.
    /// Must be between 1 and `threads`.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = Some(replicas);
        self
    }

    /// Images per ONNX Runtime call: each batch runs through the network in slices of this
    /// many images. A small slice keeps a layer's activations in cache; Lite0 on this
    /// project's 2-core VM ran 164 images/s at 224 px in calls of 8 against 137 in calls of 64
    /// (2 threads; 1 thread: 100 against 85, and at 112 px 352 against 282). An image's
    /// embedding does not depend on the slices (`tests/embed.rs`).
    ///
    /// Defaults to [`DEFAULT_CPU_INFERENCE_BATCH`] on the CPU and to the batch size on a GPU,
    /// where large calls are what keeps the device busy. Must be at least 1.
    pub fn inference_batch(mut self, images: usize) -> Self {
        self.inference_batch = Some(images);
        self
    }

    /// Square input resolution in pixels. Defaults to the manifest's `input_size`.
    pub fn resolution(mut self, size: u32) -> Self {
        self.resolution = Some(size);
        self
    }

    /// The model output to read (e.g. `"logits"`). Defaults to the manifest's `output_name`.
    pub fn output_name(mut self, name: impl Into<String>) -> Self {
        self.output_name = Some(name.into());
        self
    }

    /// Whether each embedding is scaled to unit L2 norm. Defaults to `true`.
    pub fn normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// Loads ONNX Runtime (once per process), creates the session and checks the model's input
    /// and output names against the configuration.
    ///
    /// # Errors
    /// [`Error::OrtNotFound`] without a usable ONNX Runtime, [`Error::InvalidInput`] for a zero
    /// batch size / thread count / resolution or an unknown input/output name, [`Error::Ort`]
    /// when ONNX Runtime rejects the model or the execution provider cannot be registered.
    pub fn build(self) -> Result<Embedder> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batch size", "must be at least 1"));
        }
        if self.threads == Some(0) {
            return Err(Error::invalid("threads", "must be at least 1"));
        }
        if self.resolution == Some(0) {
            return Err(Error::invalid("resolution", "must be at least 1 pixel"));
        }
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let replicas = match (self.replicas, self.provider) {
            (Some(r), _) => r,
            (None, ExecutionProvider::Cpu) => DEFAULT_CPU_REPLICAS.min(threads),
            (None, ExecutionProvider::Cuda(_)) => 1,
        };
        let inference_batch = match (self.inference_batch, self.provider) {
            (Some(b), _) => b,
            (None, ExecutionProvider::Cpu) => DEFAULT_CPU_INFERENCE_BATCH,
            (None, ExecutionProvider::Cuda(_)) => self.batch_size,
        };
        if inference_batch == 0 {
            return Err(Error::invalid("inference batch", "must be at least 1"));
        }
        if replicas == 0 || replicas > threads {
            return Err(Error::invalid(
                "replicas",
                format!("must be between 1 and the thread count ({threads}), got {replicas}"),
            ));
        }
        let sessions = (0..replicas)
            .map(|r| self.session(threads / replicas + usize::from(r < threads % replicas)))
            .collect::<Result<Vec<_>>>()?;
        let output_name = self
            .output_name
            .unwrap_or_else(|| self.prior.output_name.clone());
        let names = |outlets: &[ort::value::Outlet]| -> Vec<String> {
            outlets.iter().map(|o| o.name().to_string()).collect()
        };
        let session = &sessions[0];
        let inputs = names(session.inputs());
        if !inputs.contains(&self.prior.input_name) {
            return Err(Error::invalid(
                "input name",
                format!(
                    "{} has no input `{}` (inputs: {inputs:?})",
                    self.prior.onnx.display(),
                    self.prior.input_name
                ),
            ));
        }
        let outputs = names(session.outputs());
        if !outputs.contains(&output_name) {
            return Err(Error::invalid(
                "output name",
                format!(
                    "{} has no output `{output_name}` (outputs: {outputs:?})",
                    self.prior.onnx.display()
                ),
            ));
        }
        let preprocess = Preprocess::from_manifest(&self.prior, self.resolution);
        tracing::debug!(prior = %self.prior.name, threads, replicas, size = preprocess.size, "embedder ready");
        Ok(Embedder {
            sessions,
            preprocess,
            batch_size: self.batch_size,
            inference_batch,
            output_name,
            normalize: self.normalize,
            dim: None,
            prior: self.prior,
            provider: self.provider,
        })
    }

    /// One session of the prior with `threads` intra-op threads.
    fn session(&self, threads: usize) -> Result<Session> {
        let env = runtime::environment()?;
        let ort_err = |e: ort::Error<ort::session::builder::SessionBuilder>| {
            Error::Ort(format!("{}: {e}", self.prior.onnx.display()))
        };
        let builder = Session::builder(env)
            .map_err(|e| Error::Ort(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(ort_err)?
            .with_inter_threads(1)
            .map_err(ort_err)?
            // The decode workers share the cores: an intra-op thread spinning while it waits
            // for work would take their time (measured: 1.32x -> 1.42x Python with one
            // replica, 1.45x -> 1.58x with two, docs/performance.md, "embed").
            .with_intra_op_spinning(false)
            .map_err(ort_err)?;
        let mut builder = match self.provider {
            ExecutionProvider::Cpu => builder,
            ExecutionProvider::Cuda(device) => {
                runtime::check_provider_library("cuda", "onnxruntime-gpu")?;
                builder
                    .with_execution_providers([ort::ep::CUDA::default()
                        .with_device_id(device)
                        .build()
                        .error_on_failure()])
                    .map_err(|e| {
                        Error::Ort(format!(
                            "ONNX Runtime's CUDA execution provider (device {device}) could not \
                             be registered: {e}\n(it needs the NVIDIA driver's libcuda.so.1, a visible \
                             GPU, and the CUDA libraries onnxruntime-gpu was built for on the \
                             loader's path, LD_LIBRARY_PATH: for onnxruntime-gpu 1.31 the CUDA 13 \
                             runtime, cuBLAS, cuRAND and cuDNN 9, e.g. the nvidia-*-cu13 Python \
                             packages PyTorch installs; docs/gpu.md)"
                        ))
                    })?
            }
        };
        builder.commit_from_file(&self.prior.onnx).map_err(|e| {
            Error::Ort(format!(
                "cannot load prior {}: {e}",
                self.prior.onnx.display()
            ))
        })
    }
}

#[cfg(feature = "embed")]
/// Runs an ONNX prior on images: preprocessing, inference, optional L2 normalisation.
pub struct Embedder {
    /// The replicas; the first serves [`Embedder::run_batch`].
    sessions: Vec<Session>,
    prior: PriorManifest,
    preprocess: Preprocess,
    batch_size: usize,
    /// Images per ONNX Runtime call.
    inference_batch: usize,
    output_name: String,
    normalize: bool,
    /// Output width seen on the first run (`prior.dim` is only checked for its own output).
    dim: Option<usize>,
    provider: ExecutionProvider,
}

#[cfg(feature = "embed")]
impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("prior", &self.prior.name)
            .field("preprocess", &self.preprocess)
            .field("batch_size", &self.batch_size)
            .field("replicas", &self.sessions.len())
            .field("inference_batch", &self.inference_batch)
            .field("output_name", &self.output_name)
            .field("normalize", &self.normalize)
            .finish()
    }
}

#[cfg(feature = "embed")]
impl Embedder {
    /// Starts a builder for `prior`.
    pub fn builder(prior: PriorManifest) -> EmbedderBuilder {
        EmbedderBuilder {
            prior,
            provider: ExecutionProvider::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            threads: None,
            replicas: None,
            inference_batch: None,
            resolution: None,
            output_name: None,
            normalize: true,
        }
    }

    /// The prior's manifest.
    pub fn prior(&self) -> &PriorManifest {
        &self.prior
    }

    /// The preprocessing applied to every image.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// Images per batch (see [`EmbedderBuilder::batch_size`]).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sessions that run batches side by side ([`EmbedderBuilder::replicas`]).
    pub fn replicas(&self) -> usize {
        self.sessions.len()
    }

    /// The execution provider the sessions run on.
    pub fn execution_provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// The loaded ONNX Runtime library's build: `ort::info()`, e.g. `ORT Build Info:
    /// git-branch=rel-1.22.0, git-commit-id=…, build type=Release, …`. Two wheels of one version
    /// built differently differ here too.
    pub fn runtime_build(&self) -> String {
        ort::info().to_string()
    }

    /// Whether outputs are L2-normalised.
    pub fn normalized(&self) -> bool {
        self.normalize
    }

    /// The name of the output read.
    pub fn output_name(&self) -> &str {
        &self.output_name
    }

    /// Embedding width: the manifest's `dim` for its own output, else the width seen on the
    /// first run (or the manifest's `dim` before any run).
    pub fn dim(&self) -> usize {
        self.dim.unwrap_or(self.prior.dim)
    }

    /// Preprocesses and embeds `images` (in batches of [`Embedder::batch_size`]).
    ///
    /// Returns `[images.len(), dim]` row-major. Keys in errors are the images' positions.
    pub fn embed_images(&mut self, images: &[Image]) -> Result<Vec<f32>> {
        let len = self.preprocess.sample_len();
        let mut out = Vec::with_capacity(images.len() * self.dim());
        for (b, chunk) in images.chunks(self.batch_size).enumerate() {
            let mut input = vec![0.0f32; chunk.len() * len];
            for (i, (img, slot)) in chunk.iter().zip(input.chunks_exact_mut(len)).enumerate() {
                self.preprocess
                    .apply(img, &(b * self.batch_size + i).to_string(), slot)?;
            }
            let first = (b * self.batch_size) as u64;
            out.extend(self.run_batch(&input, chunk.len(), |i| first + i as u64)?);
        }
        Ok(out)
    }

    /// Runs the network on a preprocessed `[n, 3, size, size]` batch and returns `[n, dim]`,
    /// L2-normalised when configured. `row_id(i)` names row `i` in a non-finite error.
    pub fn run_batch(
        &mut self,
        input: &[f32],
        n: usize,
        row_id: impl Fn(usize) -> u64,
    ) -> Result<Vec<f32>> {
        let (sessions, spec) = self.parts();
        let out = spec.run(&mut sessions[0], input, n, row_id)?;
        if let Some(dim) = out.len().checked_div(n) {
            self.dim = Some(dim);
        }
        Ok(out)
    }

    /// The sessions, and what a run needs besides a session.
    pub(crate) fn parts(&mut self) -> (&mut [Session], RunSpec<'_>) {
        (
            &mut self.sessions,
            RunSpec {
                prior: &self.prior,
                size: self.preprocess.size as usize,
                inference_batch: self.inference_batch,
                output_name: &self.output_name,
                normalize: self.normalize,
            },
        )
    }

    /// Records the output width seen by a run outside [`Embedder::run_batch`].
    pub(crate) fn saw_dim(&mut self, dim: usize) {
        self.dim = Some(dim);
    }
}

#[cfg(feature = "embed")]
/// What one inference run needs besides its session, shared by the replicas.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSpec<'a> {
    prior: &'a PriorManifest,
    size: usize,
    inference_batch: usize,
    output_name: &'a str,
    normalize: bool,
}

#[cfg(feature = "embed")]
impl RunSpec<'_> {
    /// [`Embedder::run_batch`] on `session`, in calls of at most `inference_batch` images.
    pub(crate) fn run(
        &self,
        session: &mut Session,
        input: &[f32],
        n: usize,
        row_id: impl Fn(usize) -> u64,
    ) -> Result<Vec<f32>> {
        let size = self.size;
        let len = 3 * size * size;
        if input.len() != n * len {
            return Err(Error::invalid(
                "batch",
                format!("{} values for {n} images of 3x{size}x{size}", input.len()),
            ));
        }
        let mut out = Vec::new();
        for (s, slice) in input.chunks(self.inference_batch * len).enumerate() {
            let first = s * self.inference_batch;
            out.extend(self.call(session, slice, slice.len() / len, |i| row_id(first + i))?);
        }
        Ok(out)
    }

    /// One ONNX Runtime call on `n ≥ 1` preprocessed images ([`RunSpec::run`] never passes an
    /// empty slice).
    fn call(
        &self,
        session: &mut Session,
        input: &[f32],
        n: usize,
        row_id: impl Fn(usize) -> u64,
    ) -> Result<Vec<f32>> {
        let size = self.size;
        let tensor = TensorRef::from_array_view(([n, 3, size, size], input))
            .map_err(|e| Error::Ort(e.to_string()))?;
        let outputs = session
            .run(ort::inputs![self.prior.input_name.as_str() => tensor])
            .map_err(|e| Error::Ort(format!("{}: {e}", self.prior.onnx.display())))?;
        let value = outputs
            .get(self.output_name)
            .ok_or_else(|| Error::Ort(format!("no output `{}`", self.output_name)))?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| {
            Error::Ort(format!(
                "output `{}` is not an f32 tensor: {e}",
                self.output_name
            ))
        })?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let dim = if dims.first() == Some(&(n as i64)) && !data.is_empty() {
            data.len() / n
        } else {
            0
        };
        if dim == 0 || dims.iter().skip(2).any(|&d| d != 1) {
            return Err(Error::mismatch(
                format!("shape of output `{}`", self.output_name),
                format!("[{n}, dim] (or [{n}, dim, 1, 1])"),
                format!("{dims:?}"),
            ));
        }
        if self.output_name == self.prior.output_name && dim != self.prior.dim {
            return Err(Error::mismatch(
                format!("width of output `{}` vs manifest dim", self.output_name),
                self.prior.dim,
                dim,
            ));
        }
        let mut out = data.to_vec();
        for (i, row) in out.chunks_exact_mut(dim).enumerate() {
            if row.iter().any(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    context: format!("prior `{}` output `{}`", self.prior.name, self.output_name),
                    row: row_id(i),
                });
            }
            if self.normalize {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|v| *v /= norm);
                }
            }
        }
        Ok(out)
    }
}

//! Where the networks run: a [`DeviceChoice`] names a device and opens it.
//!
//! | name | backend | cargo feature |
//! |---|---|---|
//! | `cpu` | burn's Flex (this crate's GEMM convolution and batch-norm kernels) | always |
//! | `wgpu`, `wgpu:N` | burn-wgpu: WGSL kernels on Vulkan / Metal / DX12 | `wgpu` |
//! | `vulkan`, `vulkan:N` | burn-wgpu pinned to Vulkan, with cubecl's SPIR-V compiler | `vulkan` |
//! | `cuda`, `cuda:N` | burn-cuda (CUDA 13 driver API, kernels compiled to PTX by LLVM) | `cuda` (links LLVM 23: `GPS_SSL_CUDA=1 scripts/setup.sh` installs it) |
//!
//! Without an index, `wgpu` and `vulkan` take the adapter wgpu prefers (a high-power GPU
//! first; `CUBECL_WGPU_DEFAULT_DEVICE` overrides it); `wgpu:N` is the N-th adapter of
//! [`DeviceChoice::adapters`]. A device that was asked for and is not there is an
//! [`Error::DeviceUnavailable`] listing what was found: never a silent fall back to the CPU.
//!
//! Every device trains from the same initial weights and the same batches for a seed: the
//! trainer draws the weights on the host ([`crate::train::Trainer::new`]) and moves them, so a
//! CPU run and a GPU run can be compared step by step, and a checkpoint from one resumes on
//! the other.
//!
//! ```
//! use gps_ssl::device::DeviceChoice;
//! let cpu: DeviceChoice = "cpu".parse()?;
//! assert_eq!(cpu, DeviceChoice::Cpu);
//! assert_eq!("wgpu:1".parse::<DeviceChoice>()?, DeviceChoice::Wgpu(Some(1)));
//! assert_eq!(DeviceChoice::Wgpu(Some(1)).to_string(), "wgpu:1");
//! assert!("tpu".parse::<DeviceChoice>().is_err());
//! let device = cpu.open()?; // burn's Flex device; `.autodiff()` for training
//! # let _ = device;
//! # Ok::<(), gps_ssl::Error>(())
//! ```

use crate::{Error, Result};
use burn::tensor::Device;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A device by name: `cpu`, `wgpu[:N]`, `vulkan[:N]` or `cuda[:N]` (see the [module](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DeviceChoice {
    /// burn's Flex CPU backend (the default).
    #[default]
    Cpu,
    /// burn-wgpu on the graphics API wgpu settles on; `Some(n)`: the n-th adapter.
    Wgpu(Option<usize>),
    /// burn-wgpu pinned to Vulkan; `Some(n)`: the n-th Vulkan adapter.
    Vulkan(Option<usize>),
    /// burn-cuda, device `n`.
    Cuda(usize),
}

impl DeviceChoice {
    /// The names [`FromStr`] accepts, for error messages and `--help`.
    pub const NAMES: &'static str = "cpu | wgpu[:N] | vulkan[:N] | cuda[:N]";

    /// Whether this is the CPU backend.
    pub fn is_cpu(&self) -> bool {
        matches!(self, DeviceChoice::Cpu)
    }

    /// Opens the device (without autodiff; call `.autodiff()` on it for training).
    ///
    /// # Errors
    /// [`Error::DeviceUnavailable`] when this build lacks the backend's cargo feature, when the
    /// backend finds no adapter, or when the index is past the adapters found (all listed).
    pub fn open(&self) -> Result<Device> {
        match *self {
            DeviceChoice::Cpu => Ok(Device::flex()),
            DeviceChoice::Wgpu(index) => self.open_wgpu(index),
            DeviceChoice::Vulkan(index) => self.open_vulkan(index),
            DeviceChoice::Cuda(index) => self.open_cuda(index),
        }
    }

    /// The adapters this choice's backend finds on this machine, by index, as
    /// `"<index>: <name> (<burn device>)"` (empty for `cpu`, and for a backend this build lacks).
    /// Opens every adapter listed.
    pub fn adapters(&self) -> Vec<String> {
        describe(&self.enumerate())
    }

    fn enumerate(&self) -> Vec<Device> {
        #[allow(unused_imports)]
        use burn::tensor::DeviceType;
        match self {
            DeviceChoice::Cpu => Vec::new(),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu(_) => Device::enumerate(DeviceType::Wgpu).into_vec(),
            #[cfg(feature = "vulkan")]
            DeviceChoice::Vulkan(_) => Device::enumerate(DeviceType::Vulkan).into_vec(),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(_) => Device::enumerate(DeviceType::Cuda).into_vec(),
            #[allow(unreachable_patterns)]
            _ => Vec::new(),
        }
    }

    fn unavailable(&self, detail: impl Into<String>) -> Error {
        Error::DeviceUnavailable {
            asked: self.to_string(),
            detail: detail.into(),
        }
    }

    #[allow(dead_code)] // unused when every backend is built
    fn not_built(&self, feature: &str) -> Error {
        self.unavailable(format!(
            "this build has no `{feature}` backend (rebuild with `--features {feature}`)"
        ))
    }

    /// The `index`-th adapter found, or, without an index, the backend's preferred one (made by
    /// `preferred`) after checking that there is at least one.
    #[allow(dead_code)]
    fn pick(&self, index: Option<usize>, preferred: impl FnOnce() -> Device) -> Result<Device> {
        let found = self.enumerate();
        let listing = || {
            if found.is_empty() {
                self.none_found()
            } else {
                format!("adapters found: {}", describe(&found).join("; "))
            }
        };
        if found.is_empty() {
            return Err(self.unavailable(listing()));
        }
        match index {
            None => Ok(preferred()),
            Some(i) => match found.get(i) {
                Some(d) => Ok(d.clone()),
                None => Err(self.unavailable(format!("no adapter {i}; {}", listing()))),
            },
        }
    }

    /// Why this backend found no adapter, and what to do about it.
    #[allow(dead_code)]
    fn none_found(&self) -> String {
        match self {
            DeviceChoice::Cuda(_) => match cuda_driver_library() {
                None => format!(
                    "no CUDA driver found: the NVIDIA driver's {CUDA_DRIVER_LIBRARY} is not in \
                     LD_LIBRARY_PATH or the system library folders (a machine without an NVIDIA \
                     GPU has none; on one with a GPU, install the NVIDIA driver, 580 or newer \
                     for CUDA 13)"
                ),
                Some(path) => format!(
                    "the NVIDIA driver ({}) reports no usable CUDA device (see `nvidia-smi`, \
                     and CUDA_VISIBLE_DEVICES)",
                    path.display()
                ),
            },
            _ => "no adapter found (for Vulkan on a machine without a GPU, install Mesa's \
                  lavapipe: `apt-get install mesa-vulkan-drivers libvulkan1`)"
                .to_string(),
        }
    }

    fn open_wgpu(&self, index: Option<usize>) -> Result<Device> {
        #[cfg(feature = "wgpu")]
        return self.pick(index, || {
            Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
        });
        #[cfg(not(feature = "wgpu"))]
        {
            let _ = index;
            Err(self.not_built("wgpu"))
        }
    }

    fn open_vulkan(&self, index: Option<usize>) -> Result<Device> {
        #[cfg(feature = "vulkan")]
        return self.pick(index, || {
            Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)
        });
        #[cfg(not(feature = "vulkan"))]
        {
            let _ = index;
            Err(self.not_built("vulkan"))
        }
    }

    fn open_cuda(&self, index: usize) -> Result<Device> {
        #[cfg(feature = "cuda")]
        return self.pick(Some(index), || Device::cuda(index));
        #[cfg(not(feature = "cuda"))]
        {
            let _ = index;
            Err(self.not_built("cuda"))
        }
    }
}

/// The CUDA driver library burn-cuda loads at run time (through cudarc).
pub const CUDA_DRIVER_LIBRARY: &str = "libcuda.so.1";

/// Where the dynamic loader would find [`CUDA_DRIVER_LIBRARY`]: the first folder of
/// `LD_LIBRARY_PATH`, then of the usual system library folders, that holds it; `None` when none
/// does. Looks for the file only (loads nothing), so it tells "no driver installed" from "a
/// driver that sees no GPU" without touching the driver.
pub fn cuda_driver_library() -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect::<Vec<_>>())
        .unwrap_or_default();
    let system = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/local/nvidia/lib64",
        "/usr/lib/wsl/lib",
    ];
    from_env
        .into_iter()
        .chain(system.iter().map(std::path::PathBuf::from))
        .map(|dir| dir.join(CUDA_DRIVER_LIBRARY))
        .find(|p| p.exists())
}

/// `"<index>: <name> (<burn device>)"` per device of `found` (opens each, to read its name).
fn describe(found: &[Device]) -> Vec<String> {
    found
        .iter()
        .enumerate()
        .map(|(i, d)| {
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            let name = d
                .identity()
                .map(|id| id.name)
                .unwrap_or_else(|| "unnamed".to_string());
            #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
            let name = "cpu";
            format!("{i}: {name} ({d:?})")
        })
        .collect()
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let indexed = |f: &mut fmt::Formatter<'_>, name: &str, i: Option<usize>| match i {
            Some(i) => write!(f, "{name}:{i}"),
            None => f.write_str(name),
        };
        match *self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Wgpu(i) => indexed(f, "wgpu", i),
            DeviceChoice::Vulkan(i) => indexed(f, "vulkan", i),
            DeviceChoice::Cuda(i) => indexed(f, "cuda", Some(i)),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("device", format!("`{s}`; expected {}", Self::NAMES));
        let (name, index) = match s.split_once(':') {
            Some((name, i)) => (name, Some(i.parse::<usize>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match name {
            "cpu" if index.is_none() => Ok(DeviceChoice::Cpu),
            "wgpu" => Ok(DeviceChoice::Wgpu(index)),
            "vulkan" => Ok(DeviceChoice::Vulkan(index)),
            "cuda" => Ok(DeviceChoice::Cuda(index.unwrap_or(0))),
            _ => Err(bad()),
        }
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_are_refused() {
        for name in ["cpu", "wgpu", "wgpu:2", "vulkan", "vulkan:0", "cuda:1"] {
            let d: DeviceChoice = name.parse().unwrap();
            assert_eq!(d.to_string(), name);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<DeviceChoice>(&json).unwrap(), d);
        }
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        for bad in ["", "gpu", "cpu:0", "wgpu:", "wgpu:x", "cuda:-1"] {
            let err = bad.parse::<DeviceChoice>().unwrap_err().to_string();
            assert!(err.contains("expected cpu | wgpu"), "{bad}: {err}");
        }
        assert!(serde_json::from_str::<DeviceChoice>("\"tpu\"").is_err());
    }

    #[test]
    fn a_backend_this_build_lacks_is_an_error_not_the_cpu() {
        #[cfg(not(feature = "cuda"))]
        {
            let err = DeviceChoice::Cuda(0).open().unwrap_err().to_string();
            assert!(err.contains("`cuda:0` is not available"), "{err}");
            assert!(err.contains("--features cuda"), "{err}");
        }
        // Built with `cuda` on a machine without the NVIDIA driver (CI): the error says so.
        #[cfg(feature = "cuda")]
        if cuda_driver_library().is_none() {
            let err = DeviceChoice::Cuda(0).open().unwrap_err().to_string();
            assert!(err.contains("`cuda:0` is not available"), "{err}");
            assert!(err.contains("no CUDA driver found"), "{err}");
            assert!(err.contains(CUDA_DRIVER_LIBRARY), "{err}");
        }
        #[cfg(not(feature = "vulkan"))]
        {
            let err = DeviceChoice::Vulkan(None).open().unwrap_err().to_string();
            assert!(err.contains("--features vulkan"), "{err}");
        }
        #[cfg(feature = "wgpu")]
        {
            let n = DeviceChoice::Wgpu(None).adapters().len();
            let err = DeviceChoice::Wgpu(Some(n)).open().unwrap_err().to_string();
            assert!(err.contains(&format!("no adapter {n}")), "{err}");
        }
    }
}

//! ONNX Runtime discovery and the process-wide ORT environment.
//!
//! `ort` is built with `load-dynamic`: the ONNX Runtime shared library is loaded at run time, and
//! only one ORT environment may exist per process. [`init_onnx_runtime`] finds the library, loads
//! it and creates that environment exactly once (a [`OnceLock`]); every later call — from any
//! thread, e.g. many tests running in parallel — gets the same environment or the same error.
//!
//! The library is looked up, in order:
//! 1. the file named by the `ORT_DYLIB_PATH` environment variable (an error if it does not exist);
//! 2. `./.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*` (the venv that
//!    `scripts/setup.sh` creates), relative to the current directory;
//! 3. the same path under the crate's source directory (`CARGO_MANIFEST_DIR` at compile time);
//! 4. the `onnxruntime` package of whatever `python3` is on the `PATH`.

use crate::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming the ONNX Runtime shared library explicitly.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// How to get a usable ONNX Runtime, appended to every discovery error.
const FIX_HINT: &str = "To fix it, do one of:\n  \
     - run `scripts/setup.sh` (creates ./.venv with onnxruntime==1.32.0), or\n  \
     - `pip install onnxruntime==1.32.0` (CPU) or `pip install onnxruntime-gpu==1.31.1` (CUDA) \
     into the python3 on your PATH, or\n  \
     - set ORT_DYLIB_PATH=/path/to/libonnxruntime.so.<version> \
     (ONNX Runtime 1.24 or newer).";

/// The initialised runtime: the loaded library and the process's one ORT environment.
struct Runtime {
    library: PathBuf,
    environment: ort::environment::Environment,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// Finds and loads ONNX Runtime and creates the process's ORT environment (once).
///
/// Returns the path of the loaded shared library. Safe to call from many threads; every call
/// after the first returns the first call's result.
///
/// # Errors
/// [`Error::OrtNotFound`] when no library is found or it cannot be loaded, with instructions on
/// how to install one.
pub fn init_onnx_runtime() -> Result<&'static Path> {
    runtime().map(|r| r.library.as_path())
}

/// The process's ORT environment, initialising the runtime on first use.
pub(crate) fn environment() -> Result<&'static ort::environment::Environment> {
    runtime().map(|r| &r.environment)
}

fn runtime() -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(init)
        .as_ref()
        .map_err(|msg| Error::OrtNotFound(msg.clone()))
}

fn init() -> std::result::Result<Runtime, String> {
    let cwd = std::env::current_dir().ok();
    let mut roots: Vec<PathBuf> = cwd.into_iter().collect();
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let library = find_onnx_runtime(std::env::var_os(ORT_DYLIB_ENV), &roots, python_package_dir)
        .map_err(|e| e.to_string())?;
    tracing::debug!(library = %library.display(), "loading ONNX Runtime");
    let builder = ort::init_from(&library).map_err(|e| {
        format!(
            "ONNX Runtime library {} could not be loaded: {e}\n{FIX_HINT}",
            library.display()
        )
    })?;
    let environment = builder
        .with_name("gps-ssl")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("ONNX Runtime environment could not be created: {e}"))?;
    tracing::info!(library = %library.display(), "ONNX Runtime loaded");
    Ok(Runtime {
        library,
        environment,
    })
}

/// Checks that the loaded ONNX Runtime has the execution provider `ep` (see
/// [`missing_provider`]).
///
/// # Errors
/// [`Error::OrtNotFound`] when no ONNX Runtime loads; [`Error::Ort`] naming the library that
/// lacks the provider and how to install `package`.
pub(crate) fn check_provider_library(ep: &str, package: &str) -> Result<()> {
    match missing_provider(init_onnx_runtime()?, ep, package) {
        None => Ok(()),
        Some(msg) => Err(Error::Ort(msg)),
    }
}

/// Why the ONNX Runtime `library` cannot run execution provider `ep`, or `None` when it can:
/// every ONNX Runtime package ships its CUDA, TensorRT and ROCm providers as
/// `libonnxruntime_providers_<ep>.so` beside the main library, and the CPU package has none.
/// `package` names the package that has it.
pub fn missing_provider(library: &Path, ep: &str, package: &str) -> Option<String> {
    let provider = format!("libonnxruntime_providers_{ep}.so");
    let dir = library.parent().unwrap_or(Path::new("."));
    if dir.join(&provider).is_file() {
        return None;
    }
    Some(format!(
        "the ONNX Runtime in use ({}) has no {} execution provider: {provider} is not beside it \
         (the `onnxruntime` package is CPU-only). Install `{package}` instead: \
         `GPS_SSL_ORT=gpu bash scripts/setup.sh` puts it in ./.venv, or set {ORT_DYLIB_ENV} to \
         the libonnxruntime.so.* of a `{package}` install",
        library.display(),
        ep.to_uppercase()
    ))
}

/// Asks `python3` where its `onnxruntime` package lives.
fn python_package_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Resolves the ONNX Runtime shared library from explicit inputs (no global state).
///
/// `dylib_env` is the value of `ORT_DYLIB_PATH`; `roots` are directories that may contain a
/// `.venv`; `python_dir` is asked last for the directory of an installed `onnxruntime` package.
///
/// # Errors
/// [`Error::OrtNotFound`] naming every place searched and how to install ONNX Runtime.
pub fn find_onnx_runtime(
    dylib_env: Option<OsString>,
    roots: &[PathBuf],
    python_dir: impl FnOnce() -> Option<PathBuf>,
) -> Result<PathBuf> {
    if let Some(path) = dylib_env.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::OrtNotFound(format!(
                "ONNX Runtime not found: {ORT_DYLIB_ENV}={} does not name an existing file.\n{FIX_HINT}",
                path.display()
            )))
        };
    }
    let mut searched = Vec::new();
    for root in roots {
        let lib = root.join(".venv").join("lib");
        searched.push(format!(
            "{}/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*",
            lib.display()
        ));
        if let Some(found) = find_in_venv_lib(&lib) {
            return Ok(found);
        }
    }
    match python_dir() {
        Some(pkg) => {
            let capi = pkg.join("capi");
            if let Some(found) = find_in_capi(&capi) {
                return Ok(found);
            }
            searched.push(format!(
                "{}/libonnxruntime.so.* (python3's onnxruntime)",
                capi.display()
            ));
        }
        None => searched.push("python3 -c 'import onnxruntime' (not installed)".to_string()),
    }
    Err(Error::OrtNotFound(format!(
        "ONNX Runtime shared library not found. {ORT_DYLIB_ENV} is not set and none of these \
         exist:\n  {}\n{FIX_HINT}",
        searched.join("\n  ")
    )))
}

/// `lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*` under a venv's `lib`.
fn find_in_venv_lib(lib: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path())
        .collect();
    pythons.sort();
    pythons
        .iter()
        .rev()
        .find_map(|py| find_in_capi(&py.join("site-packages").join("onnxruntime").join("capi")))
}

/// The newest `libonnxruntime.so.*` (or `.dylib`) in an `onnxruntime/capi` directory.
fn find_in_capi(capi: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(capi)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name.starts_with("libonnxruntime.so.")
                || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
                || name == "onnxruntime.dll")
                && e.path().is_file()
        })
        .map(|e| e.path())
        .collect();
    libs.sort();
    libs.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_package_lacks_the_cuda_provider_and_a_gpu_package_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libonnxruntime.so.1.32.0");
        std::fs::write(&lib, b"").unwrap();
        // The CPU wheel's capi folder: the library and libonnxruntime_providers_shared.so.
        std::fs::write(dir.path().join("libonnxruntime_providers_shared.so"), b"").unwrap();
        let msg = missing_provider(&lib, "cuda", "onnxruntime-gpu").unwrap();
        assert!(msg.contains("has no CUDA execution provider"), "{msg}");
        assert!(msg.contains("libonnxruntime_providers_cuda.so"), "{msg}");
        assert!(
            msg.contains("GPS_SSL_ORT=gpu bash scripts/setup.sh"),
            "{msg}"
        );
        assert!(msg.contains(&lib.display().to_string()), "{msg}");
        // onnxruntime-gpu's capi folder has it beside the library.
        std::fs::write(dir.path().join("libonnxruntime_providers_cuda.so"), b"").unwrap();
        assert_eq!(missing_provider(&lib, "cuda", "onnxruntime-gpu"), None);
    }

    #[test]
    fn missing_library_error_says_how_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let err = find_onnx_runtime(None, &[empty.path().to_path_buf()], || None).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::OrtNotFound(_)));
        assert!(msg.contains("scripts/setup.sh"), "{msg}");
        assert!(msg.contains("pip install onnxruntime==1.32.0"), "{msg}");
        assert!(msg.contains("onnxruntime-gpu"), "{msg}");
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
        assert!(msg.contains(&empty.path().display().to_string()), "{msg}");
    }

    #[test]
    fn dylib_env_naming_a_missing_file_is_an_error() {
        let empty = tempfile::tempdir().unwrap();
        let missing = empty.path().join("libonnxruntime.so.1.32.0");
        let err =
            find_onnx_runtime(Some(missing.clone().into()), &[], || unreachable!()).unwrap_err();
        assert!(err.to_string().contains(&missing.display().to_string()));
    }

    #[test]
    fn finds_library_in_a_venv_layout() {
        let root = tempfile::tempdir().unwrap();
        let capi = root
            .path()
            .join(".venv/lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join("libonnxruntime.so.1.32.0"), b"").unwrap();
        std::fs::write(capi.join("onnxruntime_pybind11_state.so"), b"").unwrap();
        let found = find_onnx_runtime(None, &[root.path().to_path_buf()], || None).unwrap();
        assert_eq!(found, capi.join("libonnxruntime.so.1.32.0"));
    }

    #[test]
    fn falls_back_to_python_package() {
        let pkg = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(pkg.path().join("capi")).unwrap();
        std::fs::write(pkg.path().join("capi/libonnxruntime.so.1.31.1"), b"").unwrap();
        let found = find_onnx_runtime(None, &[], || Some(pkg.path().to_path_buf())).unwrap();
        assert_eq!(found, pkg.path().join("capi/libonnxruntime.so.1.31.1"));
    }
}

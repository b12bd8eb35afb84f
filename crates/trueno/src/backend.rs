//! Run-time CPU dispatch: which instruction set the kernels use.
//!
//! The choice is made once and cached in an atomic, so a kernel pays one
//! relaxed load to find its implementation. The default is the widest backend
//! the CPU supports; `TRUENO_BACKEND=scalar|avx2|avx512|neon` overrides it at
//! first use and [`set_backend`] overrides it at any time.
//!
//! A backend is only ever selected after the CPU was checked for every feature
//! its code paths are compiled with; that check is what makes calling the
//! `#[target_feature]` functions sound. Asking for a backend the CPU (or the
//! build target) lacks is an [`Error::UnsupportedBackend`], never undefined
//! behaviour. An unusable `TRUENO_BACKEND` value makes every kernel return that
//! error (and the Python module refuse to import), rather than being ignored.

use crate::Error;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set family the kernels are implemented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// Portable Rust; the reference every SIMD path is tested against.
    Scalar,
    /// x86-64 AVX2 + FMA, 8 f32 lanes.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ (+ AVX2/FMA), 16 f32 lanes, masked tails.
    Avx512,
    /// AArch64 Advanced SIMD, 4 f32 lanes.
    Neon,
}

/// Name of the environment variable that overrides the detected backend.
pub const ENV_VAR: &str = "TRUENO_BACKEND";

impl Backend {
    /// Every backend this crate knows, widest last.
    pub const ALL: [Backend; 4] = [
        Backend::Scalar,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Neon,
    ];

    /// Lower-case name, as accepted by [`str::parse`] and `TRUENO_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        }
    }

    /// The CPU features this backend needs that the running CPU lacks
    /// (empty when it is usable).
    pub fn missing_features(self) -> Vec<&'static str> {
        match self {
            Backend::Scalar => Vec::new(),
            Backend::Avx2 => x86_missing(&["avx2", "fma"]),
            Backend::Avx512 => {
                x86_missing(&["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma"])
            }
            Backend::Neon => neon_missing(),
        }
    }

    /// Whether this backend can run on this CPU.
    pub fn is_supported(self) -> bool {
        self.missing_features().is_empty()
    }

    fn to_u8(self) -> u8 {
        match self {
            Backend::Scalar => 1,
            Backend::Avx2 => 2,
            Backend::Avx512 => 3,
            Backend::Neon => 4,
        }
    }

    fn from_u8(v: u8) -> Option<Backend> {
        match v {
            1 => Some(Backend::Scalar),
            2 => Some(Backend::Avx2),
            3 => Some(Backend::Avx512),
            4 => Some(Backend::Neon),
            _ => None,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == wanted)
            .ok_or_else(|| Error::UnknownBackend(s.to_owned()))
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn x86_missing(features: &[&'static str]) -> Vec<&'static str> {
    features
        .iter()
        .copied()
        .filter(|f| {
            let present = match *f {
                "avx2" => std::arch::is_x86_feature_detected!("avx2"),
                "fma" => std::arch::is_x86_feature_detected!("fma"),
                "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
                "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
                "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
                "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
                _ => false,
            };
            !present
        })
        .collect()
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn x86_missing(features: &[&'static str]) -> Vec<&'static str> {
    // Not an x86 build: the code paths are not even compiled in.
    let _ = features;
    vec!["x86-64 target"]
}

#[cfg(target_arch = "aarch64")]
fn neon_missing() -> Vec<&'static str> {
    if std::arch::is_aarch64_feature_detected!("neon") {
        Vec::new()
    } else {
        vec!["neon"]
    }
}

#[cfg(not(target_arch = "aarch64"))]
fn neon_missing() -> Vec<&'static str> {
    vec!["aarch64 target"]
}

/// Every backend usable on this CPU, narrowest first.
pub fn supported() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_supported())
        .collect()
}

/// The widest backend this CPU supports (what is used without an override).
pub fn detect() -> Backend {
    [Backend::Avx512, Backend::Avx2, Backend::Neon]
        .into_iter()
        .find(|b| b.is_supported())
        .unwrap_or(Backend::Scalar)
}

const UNINIT: u8 = 0;
const ENV_ERROR: u8 = 0xff;

/// The cached choice: `UNINIT`, a `Backend::to_u8` value, or `ENV_ERROR`.
static ACTIVE: AtomicU8 = AtomicU8::new(UNINIT);

/// Resolve the backend `TRUENO_BACKEND` asks for (or the detected one when it
/// is unset or empty).
pub fn from_env() -> Result<Backend, Error> {
    match std::env::var(ENV_VAR) {
        Ok(v) if !v.trim().is_empty() => {
            let b: Backend = v.parse()?;
            check(b)?;
            Ok(b)
        }
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(detect()),
        Err(std::env::VarError::NotUnicode(v)) => {
            Err(Error::UnknownBackend(v.to_string_lossy().into_owned()))
        }
    }
}

fn check(b: Backend) -> Result<(), Error> {
    let missing = b.missing_features();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsupportedBackend {
            backend: b.name(),
            missing: missing.join(", "),
        })
    }
}

/// The backend kernels dispatch to.
///
/// The first call resolves `TRUENO_BACKEND` (see [`from_env`]) and caches the
/// result; an unusable value is returned as an error on every call until
/// [`set_backend`] picks a valid one.
#[inline]
pub fn active() -> Result<Backend, Error> {
    match Backend::from_u8(ACTIVE.load(Ordering::Relaxed)) {
        Some(b) => Ok(b),
        None => init_slow(),
    }
}

#[cold]
fn init_slow() -> Result<Backend, Error> {
    let state = ACTIVE.load(Ordering::Relaxed);
    if state == ENV_ERROR {
        // Re-derive the message; this path only runs while misconfigured.
        return from_env();
    }
    match from_env() {
        Ok(b) => {
            // A concurrent `set_backend` wins over the environment.
            let _ =
                ACTIVE.compare_exchange(UNINIT, b.to_u8(), Ordering::Relaxed, Ordering::Relaxed);
            Ok(Backend::from_u8(ACTIVE.load(Ordering::Relaxed)).unwrap_or(b))
        }
        Err(e) => {
            let _ =
                ACTIVE.compare_exchange(UNINIT, ENV_ERROR, Ordering::Relaxed, Ordering::Relaxed);
            match Backend::from_u8(ACTIVE.load(Ordering::Relaxed)) {
                Some(b) => Ok(b),
                None => Err(e),
            }
        }
    }
}

/// Select the backend every kernel uses from now on (process-wide).
///
/// Fails with [`Error::UnsupportedBackend`] if the CPU lacks a feature the
/// backend is compiled with; the previous choice then stays in effect.
pub fn set_backend(b: Backend) -> Result<(), Error> {
    check(b)?;
    ACTIVE.store(b.to_u8(), Ordering::Relaxed);
    Ok(())
}

/// Forget any override and re-resolve from `TRUENO_BACKEND` / detection on
/// the next kernel call.
pub fn reset() {
    ACTIVE.store(UNINIT, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>(), Ok(b));
            assert_eq!(b.name().to_uppercase().parse::<Backend>(), Ok(b));
        }
        assert_eq!(
            "sse9".parse::<Backend>(),
            Err(Error::UnknownBackend("sse9".into()))
        );
    }

    #[test]
    fn scalar_is_always_supported_and_detected_is_supported() {
        assert!(Backend::Scalar.is_supported());
        assert!(detect().is_supported());
        assert!(supported().contains(&detect()));
    }

    #[test]
    fn unsupported_backend_is_refused_with_the_missing_features() {
        for b in Backend::ALL {
            let res = check(b);
            if b.is_supported() {
                assert_eq!(res, Ok(()));
            } else {
                match res {
                    Err(Error::UnsupportedBackend { backend, missing }) => {
                        assert_eq!(backend, b.name());
                        assert!(!missing.is_empty());
                    }
                    other => panic!("{b}: {other:?}"),
                }
            }
        }
        // x86 and aarch64 are exclusive: one of them is always unsupported.
        assert!(!(Backend::Neon.is_supported() && Backend::Avx2.is_supported()));
    }
}

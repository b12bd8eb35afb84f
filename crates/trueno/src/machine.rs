//! The machine, measured: what the kernels and the benchmark know about the CPU they
//! run on.
//!
//! This file teaches the first step of any performance work: know the ceilings before
//! judging a kernel. A roofline needs three kinds of fact, and each has one honest
//! source here:
//!
//! - **Cache sizes** come from the operating system (Linux sysfs,
//!   `/sys/devices/system/cpu/cpu0/cache/index*/`), falling back to the CPU itself
//!   (`cpuid` leaf 4 on Intel, `0x8000001D` on AMD). They are instant to read, so the
//!   GEMM blocking ([`crate::matmul`]) and the streaming-store threshold of the
//!   element-wise maps use them on every machine without a probe.
//! - **Features** come from `cpuid` (what the kernels may use, and what a reader of a
//!   benchmark needs to know: AVX-512 flavours, VNNI, BF16, FP16, AMX).
//! - **Peak FLOP/s and bandwidth per cache level** come from a short probe ([`probe`]):
//!   independent FMA chains per backend, and reads (and a `c = a + b` read-write mix)
//!   over working sets sized by the cache levels above. Each figure is the best of many
//!   short samples timed on the thread's CPU clock, so a shared machine that deschedules
//!   the probe does not lower it (the benchmark's one-thread rows use CPU time too).
//!
//! The probe takes about a second, so [`machine`] caches it per machine in a small JSON
//! file (`$TRUENO_CACHE_DIR`, else `$XDG_CACHE_HOME/trueno`, else `~/.cache/trueno`,
//! named `machine-<fingerprint>.json`; the fingerprint hashes the CPU model, features,
//! caches and probe version, so a different CPU never reads another's figures) and
//! re-measures when asked (`refresh`) or when the file is missing, stale or invalid. A
//! file from outside is validated before it is trusted: size-limited, schema and
//! fingerprint checked, every figure finite and positive.
//!
//! If a kernel ever measures faster than the probe's ceiling, the probe is wrong (it
//! missed a way the hardware can go faster), not the kernel right: the read probe tries
//! one, two and four concurrent streams and the write probe both cached and
//! non-temporal stores for that reason.

use crate::backend::{self, Backend};
use crate::simd::{Simd, multiversion};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

/// Schema tag of the cached JSON.
pub const SCHEMA: &str = "trueno-machine/1";
/// Bumped whenever the probe changes what it measures: old cache files are then
/// ignored (the version is part of the fingerprint).
pub const PROBE_VERSION: u32 = 4;
/// A cached file larger than this is refused unread.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// One cache as the OS (or cpuid) describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheLevel {
    pub level: u8,
    /// `data`, `instruction` or `unified`.
    pub kind: String,
    pub size_bytes: u64,
    pub line_bytes: u32,
    pub ways: u32,
    /// Logical CPUs sharing this cache.
    pub shared_by: u32,
}

/// The data-cache hierarchy of one core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caches {
    pub l1d_bytes: u64,
    pub l2_bytes: u64,
    /// 0 when the CPU reports no L3.
    pub l3_bytes: u64,
    /// Logical CPUs the L3 is shared with (1 when private or absent).
    pub l3_shared_by: u32,
    pub line_bytes: u32,
    /// `sysfs`, `cpuid` or `assumed` (neither source answered).
    pub source: String,
    pub levels: Vec<CacheLevel>,
}

impl Caches {
    /// The largest cache a working set of `bytes` fits in (`L1`, `L2`, `L3`), or `DRAM`.
    pub fn level_of(&self, bytes: u64) -> &'static str {
        if bytes <= self.l1d_bytes {
            "L1"
        } else if bytes <= self.l2_bytes {
            "L2"
        } else if bytes <= self.l3_bytes {
            "L3"
        } else {
            "DRAM"
        }
    }

    /// The last level before DRAM (L3, or L2 on a CPU without one).
    pub fn last_level_bytes(&self) -> u64 {
        self.l3_bytes.max(self.l2_bytes)
    }
}

/// What the CPU says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub arch: String,
    pub vendor: String,
    pub brand: String,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    pub logical_cpus: u32,
    /// Feature names as Linux spells them in `/proc/cpuinfo` (`avx512f`, `amx_tile`, ...).
    pub features: Vec<String>,
    /// The trueno backends usable here, narrowest first.
    pub backends: Vec<String>,
}

/// Peak arithmetic of one backend on one core, from independent FMA chains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    pub backend: String,
    /// f32 FLOP/s (an FMA counts 2).
    pub f32_flops: f64,
    /// f64 FLOP/s: the same instruction rate at half the lanes (derived, not probed).
    pub f64_flops: f64,
}

/// Bandwidth of one core at one level of the hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// `L1`, `L2`, `L3` or `DRAM`.
    pub level: String,
    /// Working set the probe used.
    pub bytes: u64,
    /// Read bandwidth, bytes/s: the best of 1, 2 and 4 concurrent streams.
    pub read: f64,
    /// Read bandwidth per stream count tried, `(streams, bytes/s)`.
    pub read_by_streams: Vec<(u32, f64)>,
    /// `c = a + b` in f32, bytes read plus written per second: the best of cached and
    /// non-temporal stores.
    pub add: f64,
    /// Whether the `add` figure came from non-temporal stores.
    pub add_streaming: bool,
}

/// The probe's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub peaks: Vec<Peak>,
    pub bandwidth: Vec<Bandwidth>,
    /// Wall time the probe took.
    pub seconds: f64,
    /// Unix time of the measurement.
    pub measured_at: u64,
    /// `/proc/loadavg` when the probe started (a busy machine gives low ceilings).
    pub loadavg: Option<[f64; 3]>,
}

impl Probe {
    /// The f32 peak of `backend`, if it was probed.
    pub fn peak(&self, backend: Backend) -> Option<&Peak> {
        self.peaks.iter().find(|p| p.backend == backend.name())
    }

    /// The bandwidth entry of `level` (`L1`, `L2`, `L3`, `DRAM`).
    pub fn bandwidth(&self, level: &str) -> Option<&Bandwidth> {
        self.bandwidth.iter().find(|b| b.level == level)
    }
}

/// Everything known about this machine: identity, caches and (when probed) ceilings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub schema: String,
    pub fingerprint: String,
    pub cpu: Cpu,
    pub caches: Caches,
    pub probe: Option<Probe>,
}

impl Machine {
    /// The machine as serialised into its cache file.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parse and validate a cached machine file: the schema must match, and every
    /// probed figure must be finite and positive.
    pub fn from_json(text: &str) -> Result<Machine, crate::Error> {
        let m: Machine = serde_json::from_str(text)
            .map_err(|e| crate::Error::InvalidMachineFile(format!("not a machine file: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), crate::Error> {
        let bad = |what: String| Err(crate::Error::InvalidMachineFile(what));
        if self.schema != SCHEMA {
            return bad(format!("schema {:?}, expected {SCHEMA:?}", self.schema));
        }
        if self.caches.l1d_bytes == 0 || self.caches.l2_bytes == 0 {
            return bad("cache sizes must be positive".into());
        }
        if let Some(p) = &self.probe {
            let positive = |x: f64| x.is_finite() && x > 0.0;
            for pk in &p.peaks {
                if !positive(pk.f32_flops) || !positive(pk.f64_flops) {
                    return bad(format!("peak of {} is not a positive number", pk.backend));
                }
            }
            for bw in &p.bandwidth {
                let streams_ok = bw
                    .read_by_streams
                    .iter()
                    .all(|&(s, v)| s > 0 && positive(v));
                if !positive(bw.read) || !positive(bw.add) || !streams_ok || bw.bytes == 0 {
                    return bad(format!(
                        "bandwidth of {} is not a positive number",
                        bw.level
                    ));
                }
            }
            if p.peaks.is_empty() || p.bandwidth.is_empty() || !p.seconds.is_finite() {
                return bad("the probe section is incomplete".into());
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Identity: cpuid and the cache hierarchy.
// ---------------------------------------------------------------------------

/// The CPU's identity and features (read once).
pub fn cpu() -> &'static Cpu {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    CPU.get_or_init(read_cpu)
}

/// This core's caches (read once): sysfs, else cpuid, else a conservative guess.
pub fn caches() -> &'static Caches {
    static CACHES: OnceLock<Caches> = OnceLock::new();
    CACHES.get_or_init(|| {
        sysfs_caches(Path::new("/sys/devices/system/cpu/cpu0/cache"))
            .or_else(cpuid_caches)
            .unwrap_or_else(assumed_caches)
    })
}

/// The machine without the probe: identity and caches (instant).
pub fn describe() -> Machine {
    Machine {
        schema: SCHEMA.to_owned(),
        fingerprint: fingerprint(),
        cpu: cpu().clone(),
        caches: caches().clone(),
        probe: None,
    }
}

fn logical_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

fn backends() -> Vec<String> {
    backend::supported()
        .into_iter()
        .map(|b| b.name().to_owned())
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn read_cpu() -> Cpu {
    use std::arch::x86_64::__cpuid_count;
    let leaf0 = __cpuid_count(0, 0);
    let max_leaf = leaf0.eax;
    let vendor: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    let vendor = String::from_utf8_lossy(&vendor).trim().to_owned();
    let max_ext = __cpuid_count(0x8000_0000, 0).eax;
    let brand = if max_ext >= 0x8000_0004 {
        let bytes: Vec<u8> = (0x8000_0002..=0x8000_0004u32)
            .flat_map(|leaf| {
                let r = __cpuid_count(leaf, 0);
                [r.eax, r.ebx, r.ecx, r.edx]
            })
            .flat_map(u32::to_le_bytes)
            .collect();
        String::from_utf8_lossy(&bytes)
            .trim_matches(char::from(0))
            .trim()
            .to_owned()
    } else {
        String::new()
    };
    let sig = __cpuid_count(1, 0).eax;
    let base_family = (sig >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((sig >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        ((sig >> 4) & 0xf) | (((sig >> 16) & 0xf) << 4)
    } else {
        (sig >> 4) & 0xf
    };
    Cpu {
        arch: "x86_64".into(),
        vendor,
        brand,
        family,
        model,
        stepping: sig & 0xf,
        logical_cpus: logical_cpus(),
        features: x86_features(max_leaf),
        backends: backends(),
    }
}

/// Features from cpuid, spelled as Linux's `/proc/cpuinfo` does. Those std can detect
/// (it also checks that the OS saves the wider registers) come from std; the rest
/// (BF16, FP16, AMX, AVX-VNNI) from the raw cpuid bits.
#[cfg(target_arch = "x86_64")]
fn x86_features(max_leaf: u32) -> Vec<String> {
    use std::arch::{is_x86_feature_detected as has, x86_64::__cpuid_count};
    let mut out: Vec<&str> = Vec::new();
    let std_detected = [
        ("sse4_2", has!("sse4.2")),
        ("avx", has!("avx")),
        ("avx2", has!("avx2")),
        ("fma", has!("fma")),
        ("f16c", has!("f16c")),
        ("avx512f", has!("avx512f")),
        ("avx512dq", has!("avx512dq")),
        ("avx512bw", has!("avx512bw")),
        ("avx512vl", has!("avx512vl")),
        ("avx512_vnni", has!("avx512vnni")),
        ("avx512vbmi", has!("avx512vbmi")),
    ];
    out.extend(std_detected.iter().filter(|f| f.1).map(|f| f.0));
    if max_leaf >= 7 {
        let l7 = __cpuid_count(7, 0);
        let l7_1 = __cpuid_count(7, 1);
        let os_avx512 = has!("avx512f");
        let raw = [
            ("avx512_bf16", l7_1.eax & (1 << 5) != 0 && os_avx512),
            ("avx512_fp16", l7.edx & (1 << 23) != 0 && os_avx512),
            ("avx_vnni", l7_1.eax & (1 << 4) != 0 && has!("avx2")),
            ("amx_bf16", l7.edx & (1 << 22) != 0),
            ("amx_tile", l7.edx & (1 << 24) != 0),
            ("amx_int8", l7.edx & (1 << 25) != 0),
        ];
        out.extend(raw.iter().filter(|f| f.1).map(|f| f.0));
    }
    out.into_iter().map(str::to_owned).collect()
}

#[cfg(target_arch = "aarch64")]
fn read_cpu() -> Cpu {
    use std::arch::is_aarch64_feature_detected as has;
    let features = [
        ("asimd", has!("neon")),
        ("fphp", has!("fp16")),
        ("asimddp", has!("dotprod")),
        ("i8mm", has!("i8mm")),
        ("bf16", has!("bf16")),
        ("sve", has!("sve")),
        ("sve2", has!("sve2")),
    ];
    Cpu {
        arch: "aarch64".into(),
        vendor: String::new(),
        brand: proc_cpuinfo_model().unwrap_or_default(),
        family: 0,
        model: 0,
        stepping: 0,
        logical_cpus: logical_cpus(),
        features: features
            .iter()
            .filter(|f| f.1)
            .map(|f| f.0.to_owned())
            .collect(),
        backends: backends(),
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn read_cpu() -> Cpu {
    Cpu {
        arch: std::env::consts::ARCH.into(),
        vendor: String::new(),
        brand: proc_cpuinfo_model().unwrap_or_default(),
        family: 0,
        model: 0,
        stepping: 0,
        logical_cpus: logical_cpus(),
        features: Vec::new(),
        backends: backends(),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn proc_cpuinfo_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        matches!(k.trim(), "model name" | "Model" | "CPU part").then(|| v.trim().to_owned())
    })
}

/// Parse a sysfs size (`48K`, `2048K`, `32M`, or plain bytes).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mul) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1u64 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// Count the CPUs in a sysfs list such as `0-1,4,6-7`.
fn count_cpu_list(text: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                b.checked_sub(a)? + 1
            }
            None => {
                part.trim().parse::<u32>().ok()?;
                1
            }
        };
    }
    Some(n.max(1))
}

/// The caches under a sysfs `cpuN/cache` directory; `None` when it is absent or
/// describes no L1 data cache and L2.
fn sysfs_caches(dir: &Path) -> Option<Caches> {
    let mut levels = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("index") {
            continue;
        }
        let p = entry.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).ok();
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            continue;
        };
        let Ok(level) = level.trim().parse::<u8>() else {
            continue;
        };
        let Some(size_bytes) = parse_size(&size) else {
            continue;
        };
        let num = |f: &str| read(f).and_then(|s| s.trim().parse::<u32>().ok());
        levels.push(CacheLevel {
            level,
            kind: kind.trim().to_ascii_lowercase(),
            size_bytes,
            line_bytes: num("coherency_line_size").unwrap_or(64),
            ways: num("ways_of_associativity").unwrap_or(0),
            shared_by: read("shared_cpu_list")
                .and_then(|s| count_cpu_list(&s))
                .unwrap_or(1),
        });
    }
    levels.sort_by_key(|l| (l.level, l.kind.clone()));
    from_levels(levels, "sysfs")
}

fn from_levels(levels: Vec<CacheLevel>, source: &str) -> Option<Caches> {
    let data = |lv: u8| {
        levels
            .iter()
            .find(|l| l.level == lv && l.kind != "instruction")
    };
    let (l1, l2) = (data(1)?, data(2)?);
    let (l1d_bytes, line_bytes, l2_bytes) = (l1.size_bytes, l1.line_bytes, l2.size_bytes);
    let (l3_bytes, l3_shared_by) = data(3).map_or((0, 1), |l| (l.size_bytes, l.shared_by));
    Some(Caches {
        l1d_bytes,
        l2_bytes,
        l3_bytes,
        l3_shared_by,
        line_bytes,
        source: source.to_owned(),
        levels,
    })
}

/// cpuid's deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD, with
/// topology extensions); both use the same register layout.
#[cfg(target_arch = "x86_64")]
fn cpuid_caches() -> Option<Caches> {
    use std::arch::x86_64::__cpuid_count;
    let max_leaf = __cpuid_count(0, 0).eax;
    let max_ext = __cpuid_count(0x8000_0000, 0).eax;
    let mut leaves = Vec::new();
    if max_leaf >= 4 {
        leaves.push(4u32);
    }
    if max_ext >= 0x8000_001D {
        leaves.push(0x8000_001D);
    }
    for leaf in leaves {
        let mut levels = Vec::new();
        for sub in 0..16 {
            let r = __cpuid_count(leaf, sub);
            let kind = match r.eax & 0x1f {
                0 => break,
                1 => "data",
                2 => "instruction",
                _ => "unified",
            };
            let ways = (r.ebx >> 22) + 1;
            let partitions = ((r.ebx >> 12) & 0x3ff) + 1;
            let line = (r.ebx & 0xfff) + 1;
            let sets = r.ecx + 1;
            levels.push(CacheLevel {
                level: ((r.eax >> 5) & 0x7) as u8,
                kind: kind.to_owned(),
                size_bytes: u64::from(ways)
                    * u64::from(partitions)
                    * u64::from(line)
                    * u64::from(sets),
                line_bytes: line,
                ways,
                shared_by: ((r.eax >> 14) & 0xfff) + 1,
            });
        }
        if let Some(c) = from_levels(levels, "cpuid") {
            return Some(c);
        }
    }
    None
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_caches() -> Option<Caches> {
    None
}

/// Neither the OS nor the CPU answered: small, common sizes, so blocking stays safe.
fn assumed_caches() -> Caches {
    Caches {
        l1d_bytes: 32 << 10,
        l2_bytes: 512 << 10,
        l3_bytes: 8 << 20,
        l3_shared_by: 1,
        line_bytes: 64,
        source: "assumed".into(),
        levels: Vec::new(),
    }
}

/// FNV-1a of everything that makes two machines different for the probe.
pub fn fingerprint() -> String {
    let c = cpu();
    let k = caches();
    let key = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        c.arch,
        c.vendor,
        c.brand,
        c.family,
        c.model,
        c.stepping,
        c.logical_cpus,
        c.features.join(","),
        k.l1d_bytes,
        k.l2_bytes,
        k.l3_bytes,
        PROBE_VERSION
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

// ---------------------------------------------------------------------------
// The probe.
// ---------------------------------------------------------------------------

/// Independent FMA chains per accumulator set: 12 vectors cover a 4-cycle latency on
/// two pipes (8 needed) with room for a slower FMA, and fit AVX2's 16 registers with
/// the two constants.
const CHAINS: usize = 12;

#[inline(always)]
fn fma_chains<S: Simd>(s: S, iters: usize, seed: f32) -> f32 {
    // acc = acc * m + c converges to c / (1 - m): bounded, never denormal.
    let m = s.splat(std::hint::black_box(0.999_9));
    let c = s.splat(std::hint::black_box(1e-4));
    let mut acc = [s.splat(seed); CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = s.fma(*a, m, c);
        }
    }
    let mut total = s.splat(0.0);
    for a in acc {
        total = s.add(total, a);
    }
    let mut lanes = vec![0.0f32; S::LANES];
    s.store(&mut lanes, total);
    lanes.iter().sum()
}

multiversion! {
    fn fma_chains_on(iters: usize, seed: f32) -> f32 = fma_chains;
}

/// One read block: 8 vectors per stream per step, 8 independent add chains. With two
/// or four streams each block is also prefetched ahead as the reductions do past L2
/// (`reduce::prefetch_ahead`), so the probe's best way to read includes theirs and no
/// kernel reads faster than the ceiling it is judged by.
#[inline(always)]
fn read_streams<S: Simd>(s: S, x: &[f32], streams: usize) -> f32 {
    let block = 8 * S::LANES;
    let streams = if streams >= 4 { 4 } else { streams.max(1) };
    let per = x.len() / streams / block * block;
    let mut acc = [s.splat(0.0); 8];
    let prefetch = streams > 1;
    let mut step = |blk: &[f32]| {
        if prefetch {
            crate::reduce::prefetch_ahead(blk);
        }
        for (a, v) in acc.iter_mut().zip(blk.chunks_exact(S::LANES)) {
            *a = s.add(*a, s.load(v));
        }
    };
    // Each stream count is its own straight loop (zipped chunks, like the two-stream
    // dot kernel), so the loop itself never limits the bandwidth it measures.
    let part = |i: usize| x[i * per..(i + 1) * per].chunks_exact(block);
    if per > 0 {
        match streams {
            1 => part(0).for_each(&mut step),
            2 => {
                for (b0, b1) in part(0).zip(part(1)) {
                    step(b0);
                    step(b1);
                }
            }
            _ => {
                for ((b0, b1), (b2, b3)) in part(0).zip(part(1)).zip(part(2).zip(part(3))) {
                    step(b0);
                    step(b1);
                    step(b2);
                    step(b3);
                }
            }
        }
    }
    let mut total = s.splat(0.0);
    for a in acc {
        total = s.add(total, a);
    }
    let mut lanes = vec![0.0f32; S::LANES];
    s.store(&mut lanes, total);
    lanes.iter().sum()
}

multiversion! {
    fn read_streams_on(x: &[f32], streams: usize) -> f32 = read_streams;
}

/// `c = a + b` with cached or (64-byte-aligned `c`) non-temporal stores.
#[inline(always)]
fn add_arrays<S: Simd>(s: S, a: &[f32], b: &[f32], c: &mut [f32], stream: bool) -> f32 {
    let l = S::LANES;
    let chunks = a
        .chunks_exact(l)
        .zip(b.chunks_exact(l))
        .zip(c.chunks_exact_mut(l));
    if stream {
        for ((x, y), z) in chunks {
            s.store_stream(z, s.add(s.load(x), s.load(y)));
        }
        s.stream_fence();
    } else {
        for ((x, y), z) in chunks {
            s.store(z, s.add(s.load(x), s.load(y)));
        }
    }
    c.first().copied().unwrap_or(0.0)
}

multiversion! {
    fn add_arrays_on(a: &[f32], b: &[f32], c: &mut [f32], stream: bool) -> f32 = add_arrays;
}

/// 64 bytes, so a `Vec<Line>` is a cache-line-aligned f32 buffer (non-temporal stores
/// need the alignment).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A cache-line-aligned, initialised f32 buffer of at least `len` floats; `None` when
/// the allocation fails (the probe then skips that level rather than aborting).
fn aligned(len: usize, value: f32) -> Option<Vec<Line>> {
    let lines = len.div_ceil(16);
    let mut v: Vec<Line> = Vec::new();
    v.try_reserve_exact(lines).ok()?;
    advise_huge_pages(v.as_mut_ptr().cast(), lines * 64);
    v.resize(lines, Line([value; 16]));
    Some(v)
}

/// Buffers of 4 MiB and more ask for transparent huge pages before they are first
/// touched, as NumPy does for its large arrays: the arrays the kernels are timed on then
/// sit on the same kind of pages as the probe's, and one core's DRAM read rate depends
/// on it (2026-12-03 Xeon: 13.7 GB/s on 4 KiB pages, 16.4 on 2 MiB pages, one stream).
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    if bytes >= 4 << 20 {
        crate::buffers::advise_huge_pages(ptr, bytes);
    }
}

fn floats(v: &[Line]) -> &[f32] {
    // SAFETY: `Line` is 16 f32s with no padding (`repr(C)`, size 64), so a slice of
    // `n` lines is `16 n` contiguous, initialised f32s.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len() * 16) }
}

fn floats_mut(v: &mut [Line]) -> &mut [f32] {
    // SAFETY: as in `floats`; the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<f32>(), v.len() * 16) }
}

/// Seconds on the calling thread's CPU clock, where the OS has one: time the thread
/// actually ran, so a sample during which a busy machine descheduled the probe is not
/// slower for it (the benchmark judges one-thread rows on CPU time too). Wall time
/// elsewhere.
#[cfg(unix)]
fn thread_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        wall_seconds()
    }
}

#[cfg(not(unix))]
fn thread_seconds() -> f64 {
    wall_seconds()
}

fn wall_seconds() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// The best rate `work / seconds` over samples of `f`, each repeated until it lasts at
/// least `min_sample` seconds, sampling for about `budget` seconds of wall time in all
/// (at least `min_samples` samples), timed on the thread's CPU clock. Best, not median:
/// interference (descheduling, other processes' memory traffic) only slows a sample.
pub(crate) fn best_rate(
    work: f64,
    min_sample: f64,
    budget: f64,
    min_samples: u32,
    mut f: impl FnMut(),
) -> f64 {
    f(); // warm-up: page faults, caches, frequency
    let mut reps = 1u32;
    loop {
        let t = thread_seconds();
        for _ in 0..reps {
            f();
        }
        let dt = thread_seconds() - t;
        if dt >= min_sample || reps >= 1 << 24 {
            break;
        }
        reps = reps.saturating_mul(2);
    }
    let start = Instant::now();
    let mut best = 0.0f64;
    let mut samples = 0;
    while samples < min_samples || start.elapsed().as_secs_f64() < budget {
        let t = thread_seconds();
        for _ in 0..reps {
            f();
        }
        let dt = (thread_seconds() - t).max(1e-9);
        best = best.max(work * f64::from(reps) / dt);
        samples += 1;
    }
    best
}

/// Peak FLOP/s of each usable backend (one core).
pub fn probe_peaks() -> Vec<Peak> {
    const ITERS: usize = 4096;
    backend::supported()
        .into_iter()
        .map(|b| {
            let lanes = match b {
                Backend::Avx512 => 16,
                Backend::Avx2 => 8,
                Backend::Neon => 4,
                Backend::Scalar => 1,
            };
            let flops_per_call = (2 * lanes * CHAINS * ITERS) as f64;
            let f32_flops = best_rate(flops_per_call, 1e-3, 0.04, 8, || {
                std::hint::black_box(fma_chains_on(b, ITERS, std::hint::black_box(1.0)));
            });
            Peak {
                backend: b.name().to_owned(),
                f32_flops,
                f64_flops: f32_flops / 2.0,
            }
        })
        .collect()
}

/// Working set the probe uses for each level: half of L1, half of L2 (but past L1), a
/// quarter of L3 but at most 8x L2 (and at least 2x L2), and DRAM at 4x the last level
/// (256 MiB to 2 GiB).
///
/// The 8x L2 cap: an L3 the OS reports for a whole socket is shared with every other
/// core (and, in a VM, other guests) and is not one core's to fill. On the 2026-12-03
/// Xeon (2 MiB L2, 480 MiB L3) a quarter of L3, 120 MiB, read at 27.5 GB/s: neither L3
/// (the 4 MiB and 8 MiB benchmark rows read at 29-30 GB/s, 106-111 % of that "roofline")
/// nor DRAM (17.5). On Zen 4 and Zen 5 (1 MiB L2, 32 MiB L3) the cap changes nothing.
pub fn probe_sizes(c: &Caches) -> Vec<(&'static str, u64)> {
    let mut out = vec![
        ("L1", c.l1d_bytes / 2),
        ("L2", (c.l2_bytes / 2).max(2 * c.l1d_bytes)),
    ];
    if c.l3_bytes > 0 {
        out.push((
            "L3",
            (c.l3_bytes / 4).min(8 * c.l2_bytes).max(2 * c.l2_bytes),
        ));
    }
    out.push(("DRAM", (4 * c.last_level_bytes()).clamp(256 << 20, 2 << 30)));
    out
}

/// Read and read-write bandwidth at one level (working set `bytes`) with backend `b`.
fn probe_level(b: Backend, level: &'static str, bytes: u64) -> Option<Bandwidth> {
    let dram = level == "DRAM";
    // DRAM: one pass is a sample (~10 ms); 0.4 s of them, at least 8.
    let (sample, budget, samples) = if dram { (0.0, 0.4, 8) } else { (2e-3, 0.03, 8) };
    let n = usize::try_from(bytes / 4).ok()?;
    let buf = aligned(n, 1.0)?;
    let x = floats(&buf);
    let stream_counts: &[u32] = if dram || level == "L3" {
        &[1, 2, 4]
    } else {
        &[1]
    };
    let read_by_streams: Vec<(u32, f64)> = stream_counts
        .iter()
        .map(|&s| {
            let rate = best_rate(x.len() as f64 * 4.0, sample, budget, samples, || {
                std::hint::black_box(read_streams_on(b, x, s as usize));
            });
            (s, rate)
        })
        .collect();
    drop(buf);
    let third = n / 3 / 16 * 16;
    let (a, bb, mut c) = (
        aligned(third, 1.0)?,
        aligned(third, 2.0)?,
        aligned(third, 0.0)?,
    );
    let mut add_rate = |stream: bool| {
        let (a, bb, c) = (floats(&a), floats(&bb), floats_mut(&mut c));
        best_rate(c.len() as f64 * 12.0, sample, budget, samples, || {
            std::hint::black_box(add_arrays_on(b, a, bb, &mut *c, stream));
        })
    };
    let cached = add_rate(false);
    let (add, add_streaming) = if dram || level == "L3" {
        let nt = add_rate(true);
        if nt > cached {
            (nt, true)
        } else {
            (cached, false)
        }
    } else {
        (cached, false)
    };
    Some(Bandwidth {
        level: level.to_owned(),
        bytes,
        read: read_by_streams.iter().map(|r| r.1).fold(0.0, f64::max),
        read_by_streams,
        add,
        add_streaming,
    })
}

fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Measure this core: peak FLOP/s per backend, bandwidth per level (about a second
/// on an idle machine; the DRAM level allocates up to 2 GiB, and is skipped if that fails).
pub fn probe() -> Probe {
    let start = Instant::now();
    let load = loadavg();
    let peaks = probe_peaks();
    let widest = backend::detect();
    let bandwidth = probe_sizes(caches())
        .into_iter()
        .filter_map(|(level, bytes)| probe_level(widest, level, bytes))
        .collect();
    Probe {
        peaks,
        bandwidth,
        seconds: start.elapsed().as_secs_f64(),
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        loadavg: load,
    }
}

// ---------------------------------------------------------------------------
// The per-machine cache file.
// ---------------------------------------------------------------------------

/// Directory of the cache file: `$TRUENO_CACHE_DIR`, `$XDG_CACHE_HOME/trueno`,
/// `$HOME/.cache/trueno`; `None` when none is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("TRUENO_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("trueno")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("trueno")))
}

/// Where this machine's probe is cached.
pub fn cache_path() -> Option<PathBuf> {
    cache_dir().map(|d| d.join(format!("machine-{}.json", fingerprint())))
}

/// Read and validate a cached machine file for this fingerprint.
pub fn load(path: &Path) -> Result<Machine, crate::Error> {
    let err = |e: String| crate::Error::InvalidMachineFile(format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "{} bytes, more than {MAX_FILE_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let m = Machine::from_json(&text)?;
    if m.fingerprint != fingerprint() {
        return Err(err(format!(
            "fingerprint {} is not this machine's ({})",
            m.fingerprint,
            fingerprint()
        )));
    }
    if m.probe.is_none() {
        return Err(err("no probe section".into()));
    }
    Ok(m)
}

/// Write `m` to `path` atomically (a temporary file renamed over it).
pub fn store(m: &Machine, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&tmp, m.to_json())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// How [`machine`] obtained the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Read from the cache file at this path.
    Cached(PathBuf),
    /// Measured now and written to this path.
    Measured(PathBuf),
    /// Measured now; not cached (no cache directory, or writing failed: the reason).
    MeasuredUncached(String),
}

/// The machine with its probe: from the cache file when it is valid and `refresh` is
/// false, else measured now (and cached). A missing, invalid or foreign file is
/// replaced, never trusted.
pub fn machine(refresh: bool) -> (Machine, Origin) {
    if refresh && let Some(dir) = cache_dir() {
        // Measuring again covers GEMM's feed too: the next process that needs it times it
        // anew (one measured on a busy machine can pick the slower blocking).
        let _ = std::fs::remove_file(feed_path(&dir));
    }
    let path = cache_path();
    if !refresh
        && let Some(p) = &path
        && let Ok(m) = load(p)
    {
        return (m, Origin::Cached(p.clone()));
    }
    let mut m = describe();
    m.probe = Some(probe());
    let origin = match path {
        Some(p) => match store(&m, &p) {
            Ok(()) => Origin::Measured(p),
            Err(e) => Origin::MeasuredUncached(format!("could not write {}: {e}", p.display())),
        },
        None => Origin::MeasuredUncached("no cache directory (HOME unset)".into()),
    };
    (m, origin)
}

/// What GEMM's cache blocking needs to know about this core beyond its cache sizes:
/// whether its L3 can stream the packed B block to the micro-kernel as fast as the
/// kernel consumes it ([`crate::matmul::Blocking::l2_resident`] explains the choice).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GemmFeed {
    /// Read bandwidth of one core at the probe's L3 working set, bytes/s (0 without L3).
    pub l3_read: f64,
    /// f32 FMA peak of the widest backend, FLOP/s.
    pub peak_f32: f64,
}

impl GemmFeed {
    /// Whether L3 delivers at least what an `mr`-row register tile needs from a
    /// streamed B sliver at peak: per k step the tile reads `NR` values of B for
    /// `mr * NR` FMAs, `elem / (2 mr)` bytes per FLOP, and the FLOP rate scales as
    /// `4 / elem` of the f32 peak, so the need is `2 peak_f32 / mr` bytes/s whatever the
    /// type.
    ///
    /// The threshold is the need itself, set between the two machines measured on
    /// either side of it: the 2026-12-03 Xeon's L3 delivers 0.75x its need (30 of 40
    /// GB/s) and the L2-resident blocking ran its 1024^3 product 1.28-1.30x faster;
    /// Zen 3's delivers 1.9-2.1x (60-66 of 31 GB/s, 6-row AVX2 tile) and the L3 blocking
    /// ran 1024^3 1.2-1.4x faster than the L2-resident one (2026-12-03, interleaved).
    /// Twice the need (the rule before) put Zen 3 on the boundary, so the blocking
    /// flipped between processes with the probe's noise.
    pub fn l3_feeds(&self, mr: usize) -> bool {
        self.l3_read >= 2.0 * self.peak_f32 / mr.max(1) as f64
    }
}

/// Schema tag of the cached [`GemmFeed`] file.
const FEED_SCHEMA: &str = "trueno-gemm-feed/1";

/// [`GemmFeed`] of this core: measured once per machine (about 20 ms: a short FMA peak
/// and a best-of-5 read of the L3 working set of [`probe_sizes`]) and cached beside the
/// machine file as `gemm-feed-<fingerprint>.json`; read from there by every later
/// process. Called only by products whose B block would not fit in L2, so small
/// products never pay for it.
///
/// Per machine, not per process, because the choice it makes sets GEMM's `KC`, and with
/// it the order in which each output element's sum is rounded. A core near the
/// threshold (the 2026-12-06 Xeon, model 207: L3 read 28.0-30.1 GB/s against a need of
/// 29.6, six processes in a row) would otherwise give processes different blockings,
/// and the same product would differ in its last bits between a server and the client
/// that checks it. The measurement runs under an exclusive lock on
/// `gemm-feed-<fingerprint>.lock`, so processes that start together on a fresh machine
/// wait for the first one's figures instead of each measuring its own. Without a cache
/// directory, or when it cannot be written, each process measures for itself.
/// [`machine`]`(true)` (the benchmark's `--remeasure`) forgets it with the probe.
pub fn gemm_feed() -> &'static GemmFeed {
    static FEED: OnceLock<GemmFeed> = OnceLock::new();
    FEED.get_or_init(|| match cache_dir() {
        Some(dir) => feed_cached(&dir, measure_gemm_feed),
        None => measure_gemm_feed(),
    })
}

/// The feed cached in `dir` for this machine, else `measure()` under the directory's
/// lock, stored for the next process. A missing, foreign or invalid file is measured
/// again and replaced, never trusted.
fn feed_cached(dir: &Path, measure: impl FnOnce() -> GemmFeed) -> GemmFeed {
    let path = feed_path(dir);
    if let Some(feed) = read_feed(&path) {
        return feed;
    }
    let lock = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("lock"))
    });
    // std's exclusive file lock (flock on Unix), waited for and held by the open file
    // until this function returns. Where the OS has none, the measurement goes unlocked.
    let _held = lock.as_ref().ok().filter(|f| f.lock().is_ok());
    if let Some(feed) = read_feed(&path) {
        return feed; // measured by the process that held the lock before us
    }
    let feed = measure();
    let text = serde_json::json!({
        "schema": FEED_SCHEMA,
        "fingerprint": fingerprint(),
        "feed": feed,
    });
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    if std::fs::write(&tmp, text.to_string()).is_ok() && std::fs::rename(&tmp, &path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    feed
}

/// This machine's cached [`GemmFeed`] file in `dir`.
fn feed_path(dir: &Path) -> PathBuf {
    dir.join(format!("gemm-feed-{}.json", fingerprint()))
}

/// A cached feed file, if it is this machine's and valid: at most 4 KiB, the schema and
/// fingerprint match, both figures finite and not negative (0 is "no L3").
fn read_feed(path: &Path) -> Option<GemmFeed> {
    #[derive(Deserialize)]
    struct File {
        schema: String,
        fingerprint: String,
        feed: GemmFeed,
    }
    if std::fs::metadata(path).ok()?.len() > 4096 {
        return None;
    }
    let f: File = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    (f.schema == FEED_SCHEMA
        && f.fingerprint == fingerprint()
        && ok(f.feed.l3_read)
        && ok(f.feed.peak_f32)
        && f.feed.peak_f32 > 0.0)
        .then_some(f.feed)
}

/// One measurement of this core's [`GemmFeed`].
fn measure_gemm_feed() -> GemmFeed {
    let b = backend::detect();
    let lanes = match b {
        Backend::Avx512 => 16,
        Backend::Avx2 => 8,
        Backend::Neon => 4,
        Backend::Scalar => 1,
    };
    const ITERS: usize = 1024;
    let flops = (2 * lanes * CHAINS * ITERS) as f64;
    let peak_f32 = best_rate(flops, 2e-4, 0.004, 5, || {
        std::hint::black_box(fma_chains_on(b, ITERS, std::hint::black_box(1.0)));
    });
    let l3 = probe_sizes(caches()).into_iter().find(|l| l.0 == "L3");
    let l3_read = l3
        .and_then(|(_, bytes)| {
            let buf = aligned(usize::try_from(bytes / 4).ok()?, 1.0)?;
            let x = floats(&buf);
            Some(best_rate(x.len() as f64 * 4.0, 1e-3, 0.012, 5, || {
                std::hint::black_box(read_streams_on(b, x, 2));
            }))
        })
        .unwrap_or(0.0);
    GemmFeed { l3_read, peak_f32 }
}

/// Cap of the streaming threshold: a socket-wide L3 far larger than one core's share
/// (480 MiB on the 2026-12-01 Xeon) does not keep a 64 MiB output cached for one core.
const STREAM_MAX_BYTES: u64 = 64 << 20;

/// Lengths (f32 elements) from which element-wise outputs are written with
/// non-temporal stores: half the last-level cache (at most 64 MiB), where an output
/// would not stay cached anyway (16 MiB on a 32 MiB L3).
pub(crate) fn stream_min_elements() -> usize {
    static MIN: OnceLock<usize> = OnceLock::new();
    *MIN.get_or_init(|| {
        let bytes = (caches().last_level_bytes() / 2).min(STREAM_MAX_BYTES);
        usize::try_from(bytes / 4).unwrap_or(usize::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("trueno-machine-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn feed(l3_read: f64) -> GemmFeed {
        GemmFeed {
            l3_read,
            peak_f32: 100e9,
        }
    }

    #[test]
    fn gemm_feed_is_measured_once_per_machine_and_read_back_exactly() {
        let dir = tmpdir("feed-once");
        let first = feed_cached(&dir, || feed(29.612_345_678_9e9));
        let again = feed_cached(&dir, || panic!("a cached feed must not be measured again"));
        assert_eq!(first, again);
        assert_eq!(again.l3_read, 29.612_345_678_9e9);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn processes_starting_together_share_the_first_measurement() {
        // Threads open the lock file separately, so flock serialises them as it does
        // processes: one measures (slowly), the others wait and read its figures.
        let dir = tmpdir("feed-race");
        let measured = std::sync::atomic::AtomicUsize::new(0);
        let feeds: Vec<GemmFeed> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let (dir, measured) = (&dir, &measured);
                    s.spawn(move || {
                        feed_cached(dir, || {
                            measured.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            feed(f64::from(i + 1) * 1e9)
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(measured.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(feeds.iter().all(|f| *f == feeds[0]), "{feeds:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_feed_file_is_measured_again_and_replaced() {
        let dir = tmpdir("feed-bad");
        let path = feed_path(&dir);
        let good = serde_json::json!({
            "schema": FEED_SCHEMA, "fingerprint": fingerprint(), "feed": feed(5e9)
        });
        let mut foreign = good.clone();
        foreign["fingerprint"] = "0123456789abcdef".into();
        let mut old = good.clone();
        old["schema"] = "trueno-gemm-feed/0".into();
        let mut negative = good.clone();
        negative["feed"]["l3_read"] = (-1.0).into();
        let mut zero_peak = good.clone();
        zero_peak["feed"]["peak_f32"] = 0.0.into();
        let huge = format!("{{\"pad\": \"{}\"}}", " ".repeat(5000));
        let bad = [
            String::new(),
            "{".into(),
            "null".into(),
            foreign.to_string(),
            old.to_string(),
            negative.to_string(),
            zero_peak.to_string(),
            huge,
        ];
        for text in bad {
            std::fs::write(&path, &text).unwrap();
            let got = feed_cached(&dir, || feed(7e9));
            assert_eq!(got, feed(7e9), "{text:.60}");
            assert_eq!(
                read_feed(&path),
                Some(feed(7e9)),
                "not replaced: {text:.60}"
            );
        }
        std::fs::write(&path, good.to_string()).unwrap();
        assert_eq!(feed_cached(&dir, || panic!("valid file")), feed(5e9));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_cache_still_gives_a_measurement() {
        let dir = tmpdir("feed-ro");
        let blocker = dir.join("not-a-dir");
        std::fs::write(&blocker, "a file where the directory should be").unwrap();
        assert_eq!(feed_cached(&blocker, || feed(3e9)), feed(3e9));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sysfs_sizes_and_cpu_lists_parse() {
        assert_eq!(parse_size("48K\n"), Some(48 << 10));
        assert_eq!(parse_size("2048K"), Some(2 << 20));
        assert_eq!(parse_size("480M"), Some(480 << 20));
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("a-b"), None);
    }

    /// A fake sysfs tree shaped like the 2026-12-01 Xeon's (48 KiB L1d, 2 MiB L2,
    /// 480 MiB L3), with an instruction cache and a malformed entry to skip.
    #[test]
    fn sysfs_tree_is_read_like_the_kernel_writes_it() {
        let root = tmpdir("sysfs");
        let entries = [
            ("index0", "1", "Data", "48K", "0"),
            ("index1", "1", "Instruction", "32K", "0"),
            ("index2", "2", "Unified", "2048K", "0"),
            ("index3", "3", "Unified", "491520K", "0-1"),
        ];
        for (name, level, kind, size, shared) in entries {
            let d = root.join(name);
            std::fs::create_dir_all(&d).unwrap();
            write(&d, "level", level);
            write(&d, "type", kind);
            write(&d, "size", size);
            write(&d, "shared_cpu_list", shared);
            write(&d, "coherency_line_size", "64");
        }
        let bad = root.join("index4");
        std::fs::create_dir_all(&bad).unwrap();
        write(&bad, "level", "four");
        let c = sysfs_caches(&root).unwrap();
        assert_eq!(c.l1d_bytes, 48 << 10);
        assert_eq!(c.l2_bytes, 2 << 20);
        assert_eq!(c.l3_bytes, 480 << 20);
        assert_eq!(c.l3_shared_by, 2);
        assert_eq!(c.source, "sysfs");
        assert_eq!(c.levels.len(), 4);
        assert_eq!(c.level_of(4000), "L1");
        assert_eq!(c.level_of(1 << 20), "L2");
        assert_eq!(c.level_of(256 << 20), "L3");
        assert_eq!(c.level_of(512 << 20), "DRAM");
        assert!(sysfs_caches(&root.join("missing")).is_none());
        // Only an instruction cache: not a usable hierarchy.
        let only_i = tmpdir("sysfs-i");
        let d = only_i.join("index0");
        std::fs::create_dir_all(&d).unwrap();
        write(&d, "level", "1");
        write(&d, "type", "Instruction");
        write(&d, "size", "32K");
        assert!(sysfs_caches(&only_i).is_none());
    }

    /// The OS and the CPU describe the same caches: sysfs against cpuid, as an
    /// independent check of both readers (skipped where either is unavailable).
    #[test]
    fn cpuid_agrees_with_sysfs() {
        let (Some(s), Some(c)) = (
            sysfs_caches(Path::new("/sys/devices/system/cpu/cpu0/cache")),
            cpuid_caches(),
        ) else {
            return;
        };
        assert_eq!(s.l1d_bytes, c.l1d_bytes);
        assert_eq!(s.l2_bytes, c.l2_bytes);
        assert_eq!(s.l3_bytes, c.l3_bytes);
    }

    #[test]
    fn identity_matches_proc_cpuinfo() {
        let c = cpu();
        assert!(c.logical_cpus >= 1);
        assert!(c.backends.contains(&"scalar".to_owned()));
        let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let flags: Vec<&str> = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("flags")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']))
            })
            .map(|f| f.split_whitespace().collect())
            .unwrap_or_default();
        if flags.is_empty() {
            return;
        }
        for f in &c.features {
            assert!(
                flags.contains(&f.as_str()),
                "cpuid says {f}, /proc/cpuinfo does not"
            );
        }
        for f in [
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "amx_tile",
            "avx512_bf16",
        ] {
            assert_eq!(
                flags.contains(&f),
                c.features.iter().any(|x| x == f),
                "{f} disagrees with /proc/cpuinfo"
            );
        }
        if c.arch == "x86_64" {
            let model = text
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|r| r.trim_start_matches([' ', '\t', ':']).trim().to_owned())
                .unwrap_or_default();
            assert_eq!(c.brand, model);
        }
    }

    #[test]
    fn probe_sizes_sit_inside_their_levels() {
        for c in [caches().clone(), assumed_caches()] {
            for (level, bytes) in probe_sizes(&c) {
                assert_eq!(c.level_of(bytes), level, "{c:?}");
            }
        }
        let no_l3 = Caches {
            l3_bytes: 0,
            ..assumed_caches()
        };
        let levels: Vec<_> = probe_sizes(&no_l3).into_iter().map(|l| l.0).collect();
        assert_eq!(levels, ["L1", "L2", "DRAM"]);
    }

    /// The probe kernels compute what they claim (each backend against plain Rust).
    #[test]
    fn probe_kernels_are_correct_on_every_backend() {
        let x: Vec<f32> = (0..4096).map(|i| (i % 7) as f32).collect();
        let want: f32 = x.iter().sum();
        let a: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..1000).map(|i| 0.5 * i as f32).collect();
        for bk in backend::supported() {
            for streams in [1, 2, 4] {
                assert_eq!(read_streams_on(bk, &x, streams), want, "{bk} {streams}");
            }
            let mut c = aligned(1000, f32::NAN).unwrap();
            let cf = &mut floats_mut(&mut c)[..1000];
            for stream in [false, true] {
                add_arrays_on(bk, &a, &b, cf, stream);
                let lanes = match bk {
                    Backend::Avx512 => 16,
                    Backend::Avx2 => 8,
                    Backend::Neon => 4,
                    Backend::Scalar => 1,
                };
                let full = 1000 / lanes * lanes;
                for i in 0..full {
                    assert_eq!(cf[i], a[i] + b[i]);
                }
            }
            // The chains converge to c / (1 - m) = 1 from any start: 12 chains x lanes.
            let lanes = match bk {
                Backend::Avx512 => 16.0,
                Backend::Avx2 => 8.0,
                Backend::Neon => 4.0,
                Backend::Scalar => 1.0,
            };
            let got = fma_chains_on(bk, 200_000, 3.0);
            assert!((got - 12.0 * lanes).abs() < 1e-2 * lanes, "{bk}: {got}");
        }
    }

    fn probed() -> Machine {
        let mut m = describe();
        m.probe = Some(Probe {
            peaks: vec![Peak {
                backend: "scalar".into(),
                f32_flops: 4e9,
                f64_flops: 2e9,
            }],
            bandwidth: vec![Bandwidth {
                level: "L1".into(),
                bytes: 16384,
                read: 1e11,
                read_by_streams: vec![(1, 1e11)],
                add: 9e10,
                add_streaming: false,
            }],
            seconds: 0.5,
            measured_at: 1,
            loadavg: Some([0.1, 0.2, 0.3]),
        });
        m
    }

    #[test]
    fn json_round_trips_and_bad_files_are_refused() {
        let m = probed();
        assert_eq!(Machine::from_json(&m.to_json()).unwrap(), m);
        assert!(Machine::from_json("").is_err());
        assert!(Machine::from_json("[1, 2]").is_err());
        assert!(Machine::from_json("{\"schema\": \"trueno-machine/1\"}").is_err());
        let swap = |from: &str, to: &str| m.to_json().replacen(from, to, 1);
        for (from, to) in [
            ("trueno-machine/1", "trueno-machine/0"),
            ("4000000000.0", "-1.0"),
            ("100000000000.0", "0.0"),
            ("90000000000.0", "1e999"),
        ] {
            let text = swap(from, to);
            assert_ne!(text, m.to_json(), "{from} not in the JSON");
            assert!(
                matches!(
                    Machine::from_json(&text),
                    Err(crate::Error::InvalidMachineFile(_))
                ),
                "{from} -> {to} accepted"
            );
        }
    }

    #[test]
    fn cache_file_is_validated_before_it_is_trusted() {
        let dir = tmpdir("cache");
        let path = dir.join("m.json");
        let m = probed();
        store(&m, &path).unwrap();
        assert_eq!(load(&path).unwrap(), m);
        // Another machine's file (same schema, other fingerprint) is refused.
        let mut other = m.clone();
        other.fingerprint = "0000000000000000".into();
        store(&other, &path).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("fingerprint"));
        // Truncated, oversized and missing files are refused, not parsed.
        std::fs::write(&path, &m.to_json()[..40]).unwrap();
        assert!(load(&path).is_err());
        std::fs::write(&path, vec![b' '; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("more than"));
        assert!(load(&dir.join("absent.json")).is_err());
        // No probe section: describe() alone is not a cached probe.
        store(&describe(), &path).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("probe"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stream_threshold_is_half_the_last_level() {
        let want = (caches().last_level_bytes() / 2).min(STREAM_MAX_BYTES) / 4;
        assert_eq!(stream_min_elements() as u64, want);
        assert!(stream_min_elements() >= 1 << 16);
    }
}

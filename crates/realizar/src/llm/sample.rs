//! Choosing the next token from the logits.
//!
//! The order is Hugging Face's (and OpenAI's documented behaviour):
//! repetition penalty, then temperature, then top-k, then top-p (nucleus),
//! then one draw from the renormalised distribution. Temperature 0 is greedy:
//! the first index of the largest logit, exactly `argmax`, with no draw.
//!
//! The repetition penalty is llama.cpp's (`penalty_repeat`, last 64 tokens):
//! a logit `l` of a token seen recently becomes `l / p` if positive and
//! `l * p` otherwise, so `p > 1` always makes it less likely.
//!
//! The generator is xoshiro256** seeded through SplitMix64: small, fast and
//! reproducible across platforms, so the same seed gives the same tokens.

/// The tokens the repetition penalty looks back over (llama.cpp's default).
pub const PENALTY_WINDOW: usize = 64;

/// The stack's one seeded generator (xoshiro256**): same seed, same tokens.
pub use trueno::rng::Rng;

/// The sampling knobs (validated by `GenerateOptions::validate`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub repetition_penalty: f32,
}

/// Buffers reused from token to token.
#[derive(Debug, Default)]
pub struct Scratch {
    cand: Vec<(f32, u32)>,
    seen: Vec<u32>,
}

/// Index of the largest value (the first, on ties); NaN never wins.
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut bv = f32::NEG_INFINITY;
    for (i, &v) in x.iter().enumerate() {
        if v > bv {
            bv = v;
            best = i;
        }
    }
    best as u32
}

/// Apply the penalty to `logits` in place (each recent token once).
pub fn apply_repetition_penalty(logits: &mut [f32], history: &[u32], p: f32, seen: &mut Vec<u32>) {
    if p == 1.0 {
        return;
    }
    seen.clear();
    let from = history.len().saturating_sub(PENALTY_WINDOW);
    for &t in &history[from..] {
        if (t as usize) < logits.len() && !seen.contains(&t) {
            seen.push(t);
            let l = &mut logits[t as usize];
            *l = if *l > 0.0 { *l / p } else { *l * p };
        }
    }
}

/// Pick the next token. `logits` is modified (penalty applied).
pub fn sample(
    logits: &mut [f32],
    history: &[u32],
    p: &SamplingParams,
    rng: &mut Rng,
    scratch: &mut Scratch,
) -> u32 {
    apply_repetition_penalty(logits, history, p.repetition_penalty, &mut scratch.seen);
    if p.temperature == 0.0 || p.top_k == 1 {
        return argmax(logits);
    }
    let max = logits[argmax(logits) as usize];
    if !max.is_finite() {
        return argmax(logits);
    }
    let inv_t = 1.0 / p.temperature;
    let cand = &mut scratch.cand;
    cand.clear();
    // Unnormalised probabilities e^((l - max) / T); NaN logits get zero.
    cand.extend(logits.iter().enumerate().map(|(i, &l)| {
        let w = ((l - max) * inv_t).exp();
        (if w.is_nan() { 0.0 } else { w }, i as u32)
    }));
    let desc = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if p.top_k > 0 && p.top_k < cand.len() {
        cand.select_nth_unstable_by(p.top_k - 1, desc);
        cand.truncate(p.top_k);
    }
    if p.top_p < 1.0 {
        let total: f64 = cand.iter().map(|c| f64::from(c.0)).sum();
        // The nucleus lies inside any set of top tokens whose mass reaches
        // top_p: sort only the tokens above a small threshold when they do.
        let floor = (total * 1e-4) as f32;
        let big: f64 = cand
            .iter()
            .filter(|c| c.0 >= floor)
            .map(|c| f64::from(c.0))
            .sum();
        if big >= f64::from(p.top_p) * total {
            cand.retain(|c| c.0 >= floor);
        }
        cand.sort_unstable_by(desc);
        let want = f64::from(p.top_p) * total;
        let mut acc = 0f64;
        let mut keep = cand.len();
        for (i, c) in cand.iter().enumerate() {
            acc += f64::from(c.0);
            if acc >= want {
                keep = i + 1;
                break;
            }
        }
        cand.truncate(keep.max(1));
    }
    let total: f64 = cand.iter().map(|c| f64::from(c.0)).sum();
    let mut r = rng.uniform() * total;
    for c in cand.iter() {
        r -= f64::from(c.0);
        if r < 0.0 {
            return c.1;
        }
    }
    // Rounding left r >= 0 after the last one: the last candidate with mass.
    cand.iter()
        .rev()
        .find(|c| c.0 > 0.0)
        .map_or(argmax(logits), |c| c.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_k: usize, top_p: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            repetition_penalty: 1.0,
        }
    }

    #[test]
    fn greedy_is_argmax_and_nan_never_wins() {
        let mut l = vec![0.5, f32::NAN, 2.0, 2.0, -1.0];
        let mut rng = Rng::new(1);
        let mut s = Scratch::default();
        assert_eq!(
            sample(&mut l, &[], &params(0.0, 0, 1.0), &mut rng, &mut s),
            2
        );
        assert_eq!(
            sample(&mut l, &[], &params(1.0, 1, 1.0), &mut rng, &mut s),
            2
        );
    }

    #[test]
    fn top_k_and_top_p_restrict_the_support() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32) * 0.05).collect();
        let mut s = Scratch::default();
        let mut rng = Rng::new(7);
        for _ in 0..500 {
            let t = sample(
                &mut logits.clone(),
                &[],
                &params(1.0, 3, 1.0),
                &mut rng,
                &mut s,
            );
            assert!(t >= 97);
        }
        // Nucleus of a peaked distribution: two tokens hold > 90%.
        let mut peaked = vec![-10.0f32; 50];
        peaked[10] = 5.0;
        peaked[20] = 4.5;
        for _ in 0..500 {
            let t = sample(
                &mut peaked.clone(),
                &[],
                &params(1.0, 0, 0.9),
                &mut rng,
                &mut s,
            );
            assert!(t == 10 || t == 20, "{t}");
        }
    }

    #[test]
    fn frequencies_follow_the_softmax() {
        let logits = [0.0f32, 1.0, 2.0];
        let mut rng = Rng::new(42);
        let mut s = Scratch::default();
        let mut counts = [0usize; 3];
        let n = 30_000;
        for _ in 0..n {
            counts[sample(
                &mut logits.clone(),
                &[],
                &params(1.0, 0, 1.0),
                &mut rng,
                &mut s,
            ) as usize] += 1;
        }
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        for (i, &c) in counts.iter().enumerate() {
            let p = f64::from(logits[i]).exp() / z;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((c as f64 / n as f64 - p).abs() < 5.0 * se, "{i}: {c}");
        }
    }

    #[test]
    fn penalty_divides_positive_and_multiplies_negative() {
        let mut l = vec![2.0, -2.0, 1.0];
        apply_repetition_penalty(&mut l, &[0, 1, 0], 2.0, &mut Vec::new());
        assert_eq!(l, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        let mut c = Rng::new(4);
        let va: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(va, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(va, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
    }
}

//! NumPy's `np.random.default_rng(seed)` stream, to the bit: `SeedSequence` hashing,
//! the PCG64 (XSL-RR 128/64) bit generator, `standard_normal` (256-layer ziggurat) and
//! bounded integers (Lemire's method on 32-bit draws).
//!
//! Hand-written because no maintained crate reproduces NumPy's draws (`rand_pcg` has the
//! same PCG64 core but neither NumPy's seeding nor its distributions), and MUVERA vectors
//! only compare across fastembed and embedkit if both draw the same random matrices.

use super::ziggurat::{FI, KI, NOR_INV_R, NOR_R, WI};

const MULTIPLIER: u128 = (2549297995355413924u128 << 64) | 4865540595714422341u128;

// SeedSequence's hash constants.
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const POOL_SIZE: usize = 4;

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut value = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    value = value.wrapping_mul(*hash_const);
    value ^ (value >> 16)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> 16)
}

/// `SeedSequence(seed).generate_state(n_words, np.uint64)`.
fn seed_sequence_state(seed: u64, n_words: usize) -> Vec<u64> {
    // A non-negative integer becomes its 32-bit words, lowest first (0 is one word).
    let entropy: Vec<u32> = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };
    let mut pool = [0u32; POOL_SIZE];
    let mut hash_const = INIT_A;
    for (i, slot) in pool.iter_mut().enumerate() {
        *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                pool[dst] = mix(pool[dst], hashmix(pool[src], &mut hash_const));
            }
        }
    }
    let mut hash_const = INIT_B;
    let words: Vec<u32> = (0..n_words * 2)
        .map(|i| {
            let mut v = pool[i % POOL_SIZE] ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_B);
            v = v.wrapping_mul(hash_const);
            v ^ (v >> 16)
        })
        .collect();
    // Pairs of little-endian 32-bit words make each 64-bit word.
    words
        .chunks_exact(2)
        .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
        .collect()
}

/// NumPy's `Generator(PCG64(seed))`.
pub struct NumpyRng {
    state: u128,
    inc: u128,
    /// The upper half of a 64-bit draw, kept for the next 32-bit draw.
    spare_u32: Option<u32>,
}

impl NumpyRng {
    /// `np.random.default_rng(seed)`.
    pub fn new(seed: u64) -> Self {
        let s = seed_sequence_state(seed, 4);
        let initstate = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let initseq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        let mut rng = NumpyRng {
            state: 0,
            inc: (initseq << 1) | 1,
            spare_u32: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(MULTIPLIER).wrapping_add(self.inc);
    }

    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let s = self.state;
        (((s >> 64) as u64) ^ (s as u64)).rotate_right((s >> 122) as u32)
    }

    pub fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.spare_u32.take() {
            return v;
        }
        let next = self.next_u64();
        self.spare_u32 = Some((next >> 32) as u32);
        next as u32
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `standard_normal()`.
    pub fn standard_normal(&mut self) -> f64 {
        loop {
            let r = self.next_u64();
            let idx = (r & 0xff) as usize;
            let r = r >> 8;
            let rabs = (r >> 1) & 0x000f_ffff_ffff_ffff;
            let mut x = rabs as f64 * WI[idx];
            if r & 1 == 1 {
                x = -x;
            }
            if rabs < KI[idx] {
                return x;
            }
            if idx == 0 {
                // The tail beyond NOR_R.
                loop {
                    let xx = -NOR_INV_R * (-self.next_f64()).ln_1p();
                    let yy = -(-self.next_f64()).ln_1p();
                    if yy + yy > xx * xx {
                        return if (rabs >> 8) & 1 == 1 {
                            -(NOR_R + xx)
                        } else {
                            NOR_R + xx
                        };
                    }
                }
            } else if (FI[idx - 1] - FI[idx]) * self.next_f64() + FI[idx] < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }

    /// `integers(0, n)` for `1 <= n <= 2^32 - 1`: Lemire's method on 32-bit draws.
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n >= 1);
        let rng = n - 1; // NumPy's inclusive range
        if rng == 0 {
            return 0;
        }
        let excl = u64::from(n);
        let mut m = u64::from(self.next_u32()) * excl;
        let mut leftover = m as u32;
        if u64::from(leftover) < excl {
            let threshold = (u32::MAX - rng) % n;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * excl;
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values printed by NumPy 2.4.6.
    #[test]
    fn seed_sequence_matches_numpy() {
        // SeedSequence(seed).generate_state(4, np.uint64)
        assert_eq!(
            seed_sequence_state(42, 4),
            vec![
                0x9f1e_2e6d_cd54_0ab7,
                0xd578_73dc_79fb_94b6,
                0x7d28_2a1b_64d4_20b7,
                0x3365_7971_4692_d5ff
            ]
        );
        assert_eq!(
            seed_sequence_state((1 << 40) + 5, 4),
            vec![
                0xdae4_1755_e08a_170b,
                0x8415_abe8_7ecd_cb2c,
                0x2525_c5b4_4b91_18d0,
                0x42c2_793f_3392_bed3
            ]
        );
    }

    #[test]
    fn draws_match_numpy() {
        // default_rng(42).bit_generator.random_raw(3)
        let mut g = NumpyRng::new(42);
        let raw: Vec<u64> = (0..3).map(|_| g.next_u64()).collect();
        assert_eq!(
            raw,
            vec![
                0xc621_fbcd_16d9_2688,
                0x705a_5661_a791_ffc1,
                0xdbcd_12c2_6eda_1624
            ]
        );
        // default_rng(7).normal(size=5)
        let mut g = NumpyRng::new(7);
        let normals: Vec<f64> = (0..5).map(|_| g.standard_normal()).collect();
        assert_eq!(
            normals,
            vec![
                0.0012301533574825742,
                0.2987455375084699,
                -0.2741378553622176,
                -0.8905918387572742,
                -0.45467078517172255
            ]
        );
        // default_rng(7).choice([-1, 1], size=12), then .integers(0, 5, size=6)
        let mut g = NumpyRng::new(7);
        let signs: Vec<i32> = (0..12).map(|_| [-1, 1][g.below(2) as usize]).collect();
        assert_eq!(signs, vec![1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, 1]);
        let ints: Vec<u32> = (0..6).map(|_| g.below(5)).collect();
        assert_eq!(ints, vec![4, 0, 2, 4, 0, 3]);
    }
}

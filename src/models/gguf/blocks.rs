//! The quantized block formats smallmind reads, one type per format laid out byte for byte as
//! a GGUF file stores it (a size assertion beside each), and their dequantization to f32: the
//! naive twin of any future kernel for that format. [`dequantize`] turns a whole tensor's bytes
//! into f32 values; it knows nothing of files or models.
//!
//! Layouts and arithmetic follow llama.cpp's `ggml-common.h` block structs and the `gguf`
//! Python package's `quants.py` (`dequantize_blocks` of each class), whose outputs
//! `tests/fixtures/gguf/` records on random blocks; the unit tests at the bottom check every
//! format against them. Every product is computed in f32 in the reference's order, so the
//! values agree bit for bit.
//!
//! Element order within a block: for the 32-element formats, byte `j` of `qs` holds element
//! `j` in its low nibble and element `j + 16` in its high nibble. The 256-element "K" formats
//! are sub-blocks of 16 or 32 elements, each with its own scale; their bit planes are spelled
//! out on each type.

use super::types::GgmlType;
use half::{bf16, f16};

/// One block format: its type, its size, how it is read from the file's bytes and turned into
/// f32 values.
pub trait Block: Sized {
    const TYPE: GgmlType;
    /// Elements per block.
    const ELEMENTS: usize;
    /// Bytes per block in the file (`size_of::<Self>()`, asserted per type).
    const BYTES: usize;
    /// The block from exactly [`Block::BYTES`] bytes of the file.
    fn from_bytes(b: &[u8]) -> Self;
    /// The block's [`Block::ELEMENTS`] values, written into `out`.
    fn dequantize(&self, out: &mut [f32]);
}

fn f16_at(b: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([b[at], b[at + 1]])
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N].try_into().expect("a slice of N bytes")
}

/// Q4_0: 32 weights `d * (q - 8)`, `q` 4 bits. 18 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Nibbles: byte `j` holds element `j` (low) and `j + 16` (high).
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ4_0>() == 18);

impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const ELEMENTS: usize = 32;
    const BYTES: usize = 18;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ4_0 { d: f16_at(b, 0), qs: array(b, 2) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = d * ((q & 0x0F) as i32 - 8) as f32;
            out[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
        }
    }
}

/// Q4_1: 32 weights `d * q + m`, `q` 4 bits. 20 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum (the value of `q = 0`).
    pub m: f16,
    /// Nibbles, as [`BlockQ4_0::qs`].
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ4_1>() == 20);

impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const ELEMENTS: usize = 32;
    const BYTES: usize = 20;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ4_1 { d: f16_at(b, 0), m: f16_at(b, 2), qs: array(b, 4) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = d * (q & 0x0F) as f32 + m;
            out[j + 16] = d * (q >> 4) as f32 + m;
        }
    }
}

/// Q5_0: 32 weights `d * (q - 16)`, `q` 5 bits: 4 in `qs` as Q4_0, the fifth bit of element
/// `i` is bit `i` of `qh` (little-endian). 22 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// The fifth bits, bit `i` for element `i`.
    pub qh: [u8; 4],
    /// The low four bits, as [`BlockQ4_0::qs`].
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ5_0>() == 22);

/// The 5-bit values of a Q5_0 or Q5_1 block, 0..=31.
fn five_bit(qh: [u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let high = u32::from_le_bytes(qh);
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0F) | ((((high >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((high >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const ELEMENTS: usize = 32;
    const BYTES: usize = 22;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ5_0 { d: f16_at(b, 0), qh: array(b, 2), qs: array(b, 6) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (o, q) in out.iter_mut().zip(five_bit(self.qh, &self.qs)) {
            *o = d * (q as i32 - 16) as f32;
        }
    }
}

/// Q5_1: 32 weights `d * q + m`, `q` 5 bits laid out as in Q5_0. 24 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// The fifth bits, bit `i` for element `i`.
    pub qh: [u8; 4],
    /// The low four bits, as [`BlockQ4_0::qs`].
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ5_1>() == 24);

impl Block for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const ELEMENTS: usize = 32;
    const BYTES: usize = 24;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ5_1 { d: f16_at(b, 0), m: f16_at(b, 2), qh: array(b, 4), qs: array(b, 8) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        for (o, q) in out.iter_mut().zip(five_bit(self.qh, &self.qs)) {
            *o = d * q as f32 + m;
        }
    }
}

/// Q8_0: 32 weights `d * q`, `q` a signed byte. 34 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// The weights, in order.
    pub qs: [i8; 32],
}
const _: () = assert!(size_of::<BlockQ8_0>() == 34);

impl Block for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const ELEMENTS: usize = 32;
    const BYTES: usize = 34;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ8_0 { d: f16_at(b, 0), qs: array::<32>(b, 2).map(|q| q as i8) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = q as f32 * d;
        }
    }
}

/// Q2_K: 256 weights in 16 sub-blocks of 16, `d * sc * q - dmin * m`, `q` 2 bits; `sc` and
/// `m` are the low and high nibbles of `scales[sub-block]`. Element `128 h + 32 s + l`
/// (`h` < 2, `s` < 4, `l` < 32) is bits `2s..2s+2` of `qs[32 h + l]`. 84 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ2K {
    /// Per sub-block: scale (low nibble) and minimum (high nibble).
    pub scales: [u8; 16],
    /// The 2-bit weights.
    pub qs: [u8; 64],
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
}
const _: () = assert!(size_of::<BlockQ2K>() == 84);

impl Block for BlockQ2K {
    const TYPE: GgmlType = GgmlType::Q2K;
    const ELEMENTS: usize = 256;
    const BYTES: usize = 84;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ2K { scales: array(b, 0), qs: array(b, 16), d: f16_at(b, 80), dmin: f16_at(b, 82) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        for (e, o) in out.iter_mut().enumerate() {
            let (h, s, l) = (e / 128, e % 128 / 32, e % 32);
            let q = (self.qs[32 * h + l] >> (2 * s)) & 3;
            let sc = self.scales[e / 16];
            let (dl, ml) = (d * (sc & 0x0F) as f32, dmin * (sc >> 4) as f32);
            *o = dl * q as f32 - ml;
        }
    }
}

/// Q3_K: 256 weights in 16 sub-blocks of 16, `d * (sc - 32) * q`, `q` 3 bits signed (-4..=3).
/// The low two bits of element `128 h + 32 s + l` are bits `2s..2s+2` of `qs[32 h + l]`; its
/// high bit is bit `e / 32` of `hmask[e % 32]`, and a *clear* bit subtracts 4. The 6-bit scales:
/// scale `k` has its low nibble in `scales[k % 8]` (low nibble for `k` < 8, high otherwise) and
/// its top two bits at bits `2 (k / 4)` of `scales[8 + k % 4]`. 110 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ3K {
    /// The high bits of the weights.
    pub hmask: [u8; 32],
    /// The low two bits of the weights.
    pub qs: [u8; 64],
    /// The 16 packed 6-bit scales.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(size_of::<BlockQ3K>() == 110);

impl BlockQ3K {
    /// Sub-block `k`'s scale, -32..=31.
    fn scale(&self, k: usize) -> i32 {
        let low = if k < 8 { self.scales[k] & 0x0F } else { self.scales[k - 8] >> 4 };
        let high = (self.scales[8 + k % 4] >> (2 * (k / 4))) & 3;
        (low | (high << 4)) as i32 - 32
    }
}

impl Block for BlockQ3K {
    const TYPE: GgmlType = GgmlType::Q3K;
    const ELEMENTS: usize = 256;
    const BYTES: usize = 110;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ3K { hmask: array(b, 0), qs: array(b, 32), scales: array(b, 96), d: f16_at(b, 108) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (e, o) in out.iter_mut().enumerate() {
            let (h, s, l) = (e / 128, e % 128 / 32, e % 32);
            let low = ((self.qs[32 * h + l] >> (2 * s)) & 3) as i32;
            let high_clear = ((self.hmask[l] >> (e / 32)) & 1) ^ 1;
            let q = low - 4 * high_clear as i32;
            let dl = d * self.scale(e / 16) as f32;
            *o = dl * q as f32;
        }
    }
}

/// The 6-bit scale and minimum of sub-block `j` (< 8) of a Q4_K or Q5_K block: `j` < 4 in the
/// low six bits of bytes `j` and `4 + j`; `j` >= 4 in the nibbles of byte `8 + j - 4`, with the
/// top two bits in the top bits of bytes `j - 4` and `j`.
fn k_scale_min(scales: &[u8; 12], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 0x3F, scales[j + 4] & 0x3F)
    } else {
        let packed = scales[j + 4];
        ((packed & 0x0F) | ((scales[j - 4] >> 2) & 0x30), (packed >> 4) | ((scales[j] >> 2) & 0x30))
    }
}

/// Q4_K: 256 weights in 8 sub-blocks of 32, `d * sc * q - dmin * m`, `q` 4 bits. Sub-block
/// `2c + n` is the low (`n` = 0) or high nibbles of `qs[32 c..32 c + 32]`; scales and minimums
/// as [`k_scale_min`]. 144 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit minimums, packed.
    pub scales: [u8; 12],
    /// The 4-bit weights.
    pub qs: [u8; 128],
}
const _: () = assert!(size_of::<BlockQ4K>() == 144);

impl Block for BlockQ4K {
    const TYPE: GgmlType = GgmlType::Q4K;
    const ELEMENTS: usize = 256;
    const BYTES: usize = 144;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ4K { d: f16_at(b, 0), dmin: f16_at(b, 2), scales: array(b, 4), qs: array(b, 16) }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        for (sub, chunk) in out.chunks_exact_mut(32).enumerate() {
            let (sc, m) = k_scale_min(&self.scales, sub);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            let (c, shift) = (sub / 2, 4 * (sub % 2));
            for (l, o) in chunk.iter_mut().enumerate() {
                let q = (self.qs[32 * c + l] >> shift) & 0x0F;
                *o = dl * q as f32 - ml;
            }
        }
    }
}

/// Q5_K: Q4_K with a fifth bit per weight: bit `sub` of `qh[l]` for element `l` of sub-block
/// `sub`. 176 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ5K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// As [`BlockQ4K::scales`].
    pub scales: [u8; 12],
    /// The fifth bits.
    pub qh: [u8; 32],
    /// The low four bits, as [`BlockQ4K::qs`].
    pub qs: [u8; 128],
}
const _: () = assert!(size_of::<BlockQ5K>() == 176);

impl Block for BlockQ5K {
    const TYPE: GgmlType = GgmlType::Q5K;
    const ELEMENTS: usize = 256;
    const BYTES: usize = 176;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ5K {
            d: f16_at(b, 0),
            dmin: f16_at(b, 2),
            scales: array(b, 4),
            qh: array(b, 16),
            qs: array(b, 48),
        }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        for (sub, chunk) in out.chunks_exact_mut(32).enumerate() {
            let (sc, m) = k_scale_min(&self.scales, sub);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            let (c, shift) = (sub / 2, 4 * (sub % 2));
            for (l, o) in chunk.iter_mut().enumerate() {
                let q = ((self.qs[32 * c + l] >> shift) & 0x0F) | (((self.qh[l] >> sub) & 1) << 4);
                *o = dl * q as f32 - ml;
            }
        }
    }
}

/// Q6_K: 256 weights in 16 sub-blocks of 16, `d * scale * (q - 32)`, `q` 6 bits. Element
/// `128 h + 64 n + k` (`h`, `n` < 2, `k` < 64) has its low four bits in the low (`n` = 0) or
/// high nibble of `ql[64 h + k]`; element `128 h + 32 s + l` its top two bits at bits `2s` of
/// `qh[32 h + l]`. 210 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ6K {
    /// The low four bits.
    pub ql: [u8; 128],
    /// The top two bits.
    pub qh: [u8; 64],
    /// Signed 8-bit scale per sub-block of 16.
    pub scales: [i8; 16],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(size_of::<BlockQ6K>() == 210);

impl Block for BlockQ6K {
    const TYPE: GgmlType = GgmlType::Q6K;
    const ELEMENTS: usize = 256;
    const BYTES: usize = 210;
    fn from_bytes(b: &[u8]) -> Self {
        BlockQ6K {
            ql: array(b, 0),
            qh: array(b, 128),
            scales: array::<16>(b, 192).map(|s| s as i8),
            d: f16_at(b, 208),
        }
    }
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (e, o) in out.iter_mut().enumerate() {
            let (h, within) = (e / 128, e % 128);
            let low = (self.ql[64 * h + within % 64] >> (4 * (within / 64))) & 0x0F;
            let high = (self.qh[32 * h + within % 32] >> (2 * (within / 32))) & 3;
            let q = (low | (high << 4)) as i32 - 32;
            let dl = d * self.scales[e / 16] as f32;
            *o = dl * q as f32;
        }
    }
}

/// Dequantizes a tensor of `ty` from its bytes into `out` (`out.len()` elements).
///
/// # Panics
/// When `ty` is not supported ([`GgmlType::is_supported`]) or `bytes` is not exactly
/// [`GgmlType::bytes_for`]`(out.len())`: the reader checks both before calling.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    assert_eq!(Some(bytes.len()), ty.bytes_for(out.len()), "{ty}: bytes for {} elements", out.len());
    fn blocks<B: Block>(bytes: &[u8], out: &mut [f32]) {
        for (b, o) in bytes.chunks_exact(B::BYTES).zip(out.chunks_exact_mut(B::ELEMENTS)) {
            B::from_bytes(b).dequantize(o);
        }
    }
    match ty {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::Bf16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::Q4_0 => blocks::<BlockQ4_0>(bytes, out),
        GgmlType::Q4_1 => blocks::<BlockQ4_1>(bytes, out),
        GgmlType::Q5_0 => blocks::<BlockQ5_0>(bytes, out),
        GgmlType::Q5_1 => blocks::<BlockQ5_1>(bytes, out),
        GgmlType::Q8_0 => blocks::<BlockQ8_0>(bytes, out),
        GgmlType::Q2K => blocks::<BlockQ2K>(bytes, out),
        GgmlType::Q3K => blocks::<BlockQ3K>(bytes, out),
        GgmlType::Q4K => blocks::<BlockQ4K>(bytes, out),
        GgmlType::Q5K => blocks::<BlockQ5K>(bytes, out),
        GgmlType::Q6K => blocks::<BlockQ6K>(bytes, out),
        other => panic!("dequantize: {other} is not a supported type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks and the reference's values of `tests/fixtures/gguf/NAME.{blocks,f32}`.
    macro_rules! fixture {
        ($name:literal) => {
            (
                &include_bytes!(concat!("../../../tests/fixtures/gguf/", $name, ".blocks"))[..],
                &include_bytes!(concat!("../../../tests/fixtures/gguf/", $name, ".f32"))[..],
            )
        };
    }

    fn check(ty: GgmlType, (blocks, expected): (&[u8], &[u8])) {
        let expected: Vec<f32> =
            expected.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let mut out = vec![f32::NAN; expected.len()];
        dequantize(ty, blocks, &mut out);
        for (i, (o, e)) in out.iter().zip(&expected).enumerate() {
            assert_eq!(o.to_bits(), e.to_bits(), "{ty} element {i}: {o} vs the reference's {e}");
        }
    }

    #[test]
    fn every_format_dequantizes_as_the_gguf_package_does_bit_for_bit() {
        check(GgmlType::F16, fixture!("f16"));
        check(GgmlType::Bf16, fixture!("bf16"));
        check(GgmlType::Q4_0, fixture!("q4_0"));
        check(GgmlType::Q4_1, fixture!("q4_1"));
        check(GgmlType::Q5_0, fixture!("q5_0"));
        check(GgmlType::Q5_1, fixture!("q5_1"));
        check(GgmlType::Q8_0, fixture!("q8_0"));
        check(GgmlType::Q2K, fixture!("q2_k"));
        check(GgmlType::Q3K, fixture!("q3_k"));
        check(GgmlType::Q4K, fixture!("q4_k"));
        check(GgmlType::Q5K, fixture!("q5_k"));
        check(GgmlType::Q6K, fixture!("q6_k"));
    }

    #[test]
    fn block_sizes_agree_with_the_type_table() {
        fn agree<B: Block>() {
            assert_eq!(
                (B::ELEMENTS, B::BYTES),
                (B::TYPE.block_elements(), B::TYPE.block_bytes()),
                "{}",
                B::TYPE
            );
        }
        agree::<BlockQ4_0>();
        agree::<BlockQ4_1>();
        agree::<BlockQ5_0>();
        agree::<BlockQ5_1>();
        agree::<BlockQ8_0>();
        agree::<BlockQ2K>();
        agree::<BlockQ3K>();
        agree::<BlockQ4K>();
        agree::<BlockQ5K>();
        agree::<BlockQ6K>();
    }
}

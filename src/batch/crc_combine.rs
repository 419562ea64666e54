//! CRC32C of a concatenation from the CRCs of its parts.
//!
//! Patching a batch changes only its header, so the patched CRC is the header's CRC
//! extended over the payload's length and joined with the payload's CRC, which was
//! computed once when the batch was verified. Extending a CRC by `n` zero bytes is a
//! multiplication by x^(8n) modulo the CRC32C polynomial; with the powers x^(2^k)
//! precomputed that takes one polynomial product per set bit of `n`, a few hundred
//! nanoseconds, where the crc32c crate's operator-matrix squaring costs tens of
//! microseconds for a kilobyte (more than computing the CRC of the kilobyte itself).

/// The Castagnoli polynomial, bit-reversed (bit 31 holds x^0, as CRC32C registers do).
const POLYNOMIAL: u32 = 0x82F6_3B78;

/// x^0 in the bit-reversed representation.
const ONE: u32 = 1 << 31;

/// `POWERS[k]` is x^(2^k) modulo the polynomial; a usize length in bytes needs up to
/// 2^(64 + 3) bits.
const POWERS: [u32; 67] = powers_of_x();

/// The product of two polynomials modulo the CRC32C polynomial, bit-reversed.
const fn multiply(a: u32, b: u32) -> u32 {
    let mut product = 0;
    let mut shifted = b; // b * x^i as i runs over a's bits from x^0 upwards
    let mut bit = ONE;
    while bit != 0 {
        if a & bit != 0 {
            product ^= shifted;
        }
        shifted = if shifted & 1 != 0 {
            (shifted >> 1) ^ POLYNOMIAL
        } else {
            shifted >> 1
        };
        bit >>= 1;
    }
    product
}

const fn powers_of_x() -> [u32; 67] {
    let mut powers = [0u32; 67];
    powers[0] = ONE >> 1; // x^1
    let mut k = 1;
    while k < powers.len() {
        powers[k] = multiply(powers[k - 1], powers[k - 1]);
        k += 1;
    }
    powers
}

/// x^(8 * bytes) modulo the polynomial.
fn x_to_the_bits_of(bytes: usize) -> u32 {
    let mut result = ONE;
    let mut remaining = bytes as u64;
    let mut k = 3; // 8 * bytes = bytes << 3
    while remaining != 0 {
        if remaining & 1 != 0 {
            result = multiply(result, POWERS[k]);
        }
        remaining >>= 1;
        k += 1;
    }
    result
}

/// The CRC32C of `a || b` from `crc32c(a)`, `crc32c(b)` and `b.len()`.
pub fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    multiply(crc_a, x_to_the_bits_of(len_b)) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic byte stream, so that failures repeat.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn joins_the_crcs_of_two_parts_into_the_crc_of_the_whole() {
        for (seed, (len_a, len_b)) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (61, 0),
            (49, 12),
            (49, 1000),
            (49, 1 << 14),
            (7, 65_537),
            (49, 1 << 20),
            (3, 3_000_001),
        ]
        .into_iter()
        .enumerate()
        {
            let data = bytes(seed as u64 + 1, len_a + len_b);
            let (a, b) = data.split_at(len_a);
            assert_eq!(
                crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len()),
                crc32c::crc32c(&data),
                "parts of {len_a} and {len_b} bytes"
            );
        }
    }

    #[test]
    fn agrees_with_the_crc32c_crate_on_arbitrary_crcs_and_lengths() {
        // From 1: for an empty second part the crate returns the first CRC whatever the
        // second, which only the CRC of no bytes (0) makes right; the test above covers it.
        let mut lengths: Vec<usize> = (1..300).collect();
        lengths.extend([
            1 << 16,
            (1 << 24) + 5,
            usize::MAX,
            usize::MAX / 3,
            i32::MAX as usize,
        ]);
        for (i, len) in lengths.into_iter().enumerate() {
            let crcs = bytes(i as u64 + 99, 8);
            let crc_a = u32::from_le_bytes(crcs[..4].try_into().unwrap());
            let crc_b = u32::from_le_bytes(crcs[4..].try_into().unwrap());
            assert_eq!(
                crc32c_combine(crc_a, crc_b, len),
                crc32c::crc32c_combine(crc_a, crc_b, len),
                "length {len}"
            );
        }
    }
}

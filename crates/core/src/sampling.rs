//! Deterministic sampling and bucketing, bit-exact with the reference systems.
//!
//! INTERFACE CONTRACT (signatures other modules rely on):
//! - `truncated_hash(input: &Value) -> u64`: first 48 bits of SHA-256 of `JSON.stringify(input)`.
//! - `fraction_to_key(fraction: f64) -> Result<u64, SamplingError>`.
//! - `stable_sample(input: &Value, rate: f64) -> Result<bool, SamplingError>`.
//! - `bucket_sample(input: &Value, start: f64, count: f64, total: f64) -> Result<bool, SamplingError>`.
//! - `bucket_range_sample(input: &Value, range: BucketRange) -> Result<bool, SamplingError>`
//!   (`bucketSample` after the caller has applied JavaScript's coercions to its arguments).
//! - `SampleKey`, `fraction_key(f64) -> Result<SampleKey, SamplingError>`,
//!   `SampleKey::of_hash(u64)`: keys as the 12-character text Normandy compares.
//! - `ratio_sample(input: &Value, ratios: &[f64]) -> Result<usize, SamplingError>`.
//! - `rox_bucket(seed: &str) -> f64` and `rox_in_percentage_range(low, high, seed) -> bool` (CloudBees MD5).
//! - `uniform_sample(random_value: f64, sample: f64) -> bool` (Manifest v1 `sample`: value ≤ sample).
//! - Helpers: `key_to_hex(u64) -> String`, `rox_in_percentage(pct, seed) -> bool`,
//!   `rox_merge_seed(a, b) -> String`, `uniform_in_range(value, ge, lt) -> bool` (Test Pilot).
//!
//! Three families live here:
//! - **Normandy / Nimbus** (`truncated_hash` … `ratio_sample`): Normandy compares 12-character
//!   strings with `<`. For fractions in [0, 1] they are fixed-width lowercase hex, so comparing
//!   the 48-bit integers would be the same thing; but `fractionToKey(NaN)` does not throw (both
//!   range checks are false) and gives the text `000000000NaN`, which sorts between
//!   `0000000009ff` and `000000000a00`. To select exactly the clients Firefox selects, keys are
//!   compared as that text ([`SampleKey`]).
//! - **CloudBees / Rollout** (`rox_*`): an MD5 bucket in [0, 1).
//! - **Persisted uniform values** (`uniform_*`): Manifest v1 and Test Pilot draw one random value
//!   per client and compare it with the configured fraction; the value is an input here.

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::value::Value;

/// A sampling call with arguments outside their domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SamplingError {
    /// What is wrong.
    pub message: String,
}

impl SamplingError {
    fn new(message: String) -> SamplingError {
        SamplingError { message }
    }
}

/// `2^48 − 1`: the largest 48-bit key, exactly representable as a double.
const MAX_KEY: u64 = (1 << 48) - 1;

/// First 48 bits of SHA-256 of `JSON.stringify(input)`.
///
/// `JSON.stringify(undefined)` is `undefined`, and Normandy feeds that to
/// `new TextEncoder().encode(…)`, whose argument is optional with default `""`: passing
/// `undefined` encodes the *empty* string, not the text `undefined`. So an undefined input
/// hashes zero bytes (`e3b0c44298fc`), exactly as Firefox does.
pub fn truncated_hash(input: &Value) -> u64 {
    // Sampling inputs are almost always short arrays of ids: serialise those on the stack.
    let mut small = SmallJson::new();
    match input {
        Value::Undefined => key_of(b""),
        _ if small.value(input, 0).is_some() => key_of(small.as_bytes()),
        _ => key_of(input.to_js_json_string().unwrap_or_default().as_bytes()),
    }
}

/// [`truncated_hash`] of the array `[items…]`, without building the array (filters sample
/// on array literals such as `[normandy.userId, normandy.recipe.id]`).
pub fn truncated_hash_of_array(items: &[&Value]) -> u64 {
    let mut small = SmallJson::new();
    if small.array(items.iter().copied(), 0).is_some() {
        key_of(small.as_bytes())
    } else {
        truncated_hash(&Value::array(items.iter().map(|v| (*v).clone()).collect()))
    }
}

/// The first 48 bits of SHA-256 of `bytes`.
fn key_of(bytes: &[u8]) -> u64 {
    Sha256::digest(bytes)
        .iter()
        .take(6)
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// `JSON.stringify` of the values sampling inputs usually are (short arrays of strings and
/// integers), written into a fixed buffer; anything else is left to
/// [`Value::to_js_json_string`].
struct SmallJson {
    bytes: [u8; SmallJson::CAPACITY],
    len: usize,
}

impl SmallJson {
    const CAPACITY: usize = 128;
    const MAX_DEPTH: usize = 4;

    fn new() -> SmallJson {
        SmallJson {
            bytes: [0; SmallJson::CAPACITY],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    fn push(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        self.bytes.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    /// Writes `value`; `None` when it is not a simple value or does not fit.
    fn value(&mut self, value: &Value, depth: usize) -> Option<()> {
        match value {
            // Inside arrays `undefined` is written as `null` (top-level `undefined` is the
            // caller's business).
            Value::Undefined | Value::Null => self.push(b"null"),
            Value::Bool(true) => self.push(b"true"),
            Value::Bool(false) => self.push(b"false"),
            Value::Number(n) => self.integer(*n),
            Value::String(s) => self.string(s),
            Value::Array(items) => self.array(items.iter(), depth),
            _ => None,
        }
    }

    /// Writes the array `[items…]`.
    fn array<'v>(
        &mut self,
        items: impl IntoIterator<Item = &'v Value>,
        depth: usize,
    ) -> Option<()> {
        if depth >= Self::MAX_DEPTH {
            return None;
        }
        self.push(b"[")?;
        for (idx, item) in items.into_iter().enumerate() {
            if idx > 0 {
                self.push(b",")?;
            }
            self.value(item, depth + 1)?;
        }
        self.push(b"]")
    }

    /// An integral number below 2^53, which JavaScript prints as its digits (`-0` as `0`).
    fn integer(&mut self, n: f64) -> Option<()> {
        if n.fract() != 0.0 || n.abs() >= 9_007_199_254_740_992.0 {
            return None;
        }
        let value = n as i64;
        if value < 0 {
            self.push(b"-")?;
        }
        let mut magnitude = value.unsigned_abs();
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            *digits.get_mut(start)? = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        self.push(digits.get(start..)?)
    }

    /// A string that needs no escaping.
    fn string(&mut self, s: &str) -> Option<()> {
        if needs_json_escape(s.as_bytes()) {
            return None;
        }
        self.push(b"\"")?;
        self.push(s.as_bytes())?;
        self.push(b"\"")
    }
}

/// Whether `bytes` holds a quote, a backslash or a control character, checked eight bytes at
/// a time (ids are usually 36-byte UUIDs).
fn needs_json_escape(bytes: &[u8]) -> bool {
    const fn splat(byte: u8) -> u64 {
        u64::from_ne_bytes([byte; 8])
    }
    // The high bit of each byte below `n` (n ≤ 0x80); exact as to whether there is any.
    let below = |word: u64, n: u8| word.wrapping_sub(splat(n)) & !word & splat(0x80);
    let mut words = bytes.chunks_exact(8);
    let mut found = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        found |= below(word ^ splat(b'"'), 1) | below(word ^ splat(b'\\'), 1) | below(word, 0x20);
    }
    found != 0
        || words
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A 48-bit key as Normandy writes it: 12 lowercase hex digits, zero-padded.
pub fn key_to_hex(key: u64) -> String {
    format!("{key:012x}")
}

/// `floor(fraction × (2^48 − 1))`; errors outside [0, 1] and on NaN (which has no 48-bit
/// key; [`fraction_key`] gives the text Normandy compares instead).
///
/// The multiplication is done in doubles, as in JavaScript, so `0.5` gives `7fffffffffff`
/// rather than `800000000000`.
pub fn fraction_to_key(fraction: f64) -> Result<u64, SamplingError> {
    if fraction.is_nan() {
        return Err(out_of_range(fraction));
    }
    check_fraction(fraction)?;
    Ok(scaled(fraction))
}

fn out_of_range(fraction: f64) -> SamplingError {
    SamplingError::new(format!(
        "frac must be between 0 and 1 inclusive (got {})",
        crate::value::js_number_to_string(fraction)
    ))
}

/// Normandy's range check, `frac < 0 || frac > 1`, which NaN passes.
// `!(0.0..=1.0).contains(&f)` would reject NaN, which Normandy lets through.
#[allow(clippy::manual_range_contains)]
fn check_fraction(fraction: f64) -> Result<(), SamplingError> {
    if fraction < 0.0 || fraction > 1.0 {
        return Err(out_of_range(fraction));
    }
    Ok(())
}

/// `floor(fraction × (2^48 − 1))` for a fraction in [0, 1] (the cast is then exact; `-0`
/// gives 0, as `(-0).toString(16)` is `"0"`).
fn scaled(fraction: f64) -> u64 {
    (fraction * MAX_KEY as f64).floor() as u64
}

/// A sampling key or truncated hash, ordered as the 12-character string Normandy compares
/// with `<` and `<=`: either 12 lowercase hex digits (a 48-bit number) or, for a NaN fraction,
/// the text `000000000NaN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleKey(Key);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Hex(u64),
    Nan,
}

/// The smallest 12-digit hex key that sorts after `000000000NaN`: its tenth character is
/// `a`, and lower-case letters sort after `N` (0x4E) while digits sort before it.
const FIRST_KEY_AFTER_NAN: u64 = 0xa00;

impl SampleKey {
    /// A 48-bit hash or key, written as 12 lowercase hex digits.
    pub fn of_hash(hash: u64) -> SampleKey {
        SampleKey(Key::Hex(hash & MAX_KEY))
    }

    /// The key of a NaN fraction: `"NaN".padStart(12, "0")`.
    const NAN: SampleKey = SampleKey(Key::Nan);
}

impl Ord for SampleKey {
    /// The order of the texts: fixed-width hex compares like the numbers, and
    /// `000000000NaN` falls between `0000000009ff` and `000000000a00`.
    fn cmp(&self, other: &SampleKey) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self.0, other.0) {
            (Key::Hex(a), Key::Hex(b)) => a.cmp(&b),
            (Key::Hex(a), Key::Nan) if a < FIRST_KEY_AFTER_NAN => Ordering::Less,
            (Key::Hex(_), Key::Nan) => Ordering::Greater,
            (Key::Nan, Key::Hex(_)) => other.cmp(self).reverse(),
            (Key::Nan, Key::Nan) => Ordering::Equal,
        }
    }
}

impl PartialOrd for SampleKey {
    fn partial_cmp(&self, other: &SampleKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for SampleKey {
    /// The text Normandy compares.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Key::Hex(key) => write!(f, "{key:012x}"),
            Key::Nan => f.write_str("000000000NaN"),
        }
    }
}

/// Normandy's `fractionToKey`, exactly: an error outside [0, 1], the text `000000000NaN` for
/// NaN, else `floor(fraction × (2^48 − 1))` in 12 lowercase hex digits.
pub fn fraction_key(fraction: f64) -> Result<SampleKey, SamplingError> {
    check_fraction(fraction)?;
    if fraction.is_nan() {
        return Ok(SampleKey::NAN);
    }
    Ok(SampleKey::of_hash(scaled(fraction)))
}

/// `fractionToKey(min / n) ≤ hash < fractionToKey(max / n)`.
fn is_hash_in_bucket(hash: SampleKey, min: f64, max: f64, n: f64) -> Result<bool, SamplingError> {
    let min_key = fraction_key(min / n)?;
    let max_key = fraction_key(max / n)?;
    Ok(min_key <= hash && hash < max_key)
}

/// Normandy `stableSample`: true for about `rate` of all inputs, always the same ones.
///
/// A NaN rate (a missing or non-numeric argument in a filter) is not an error in Firefox: it
/// selects the inputs whose hash is below the text `000000000NaN`, about 1 in 10⁸.
pub fn stable_sample(input: &Value, rate: f64) -> Result<bool, SamplingError> {
    let key = fraction_key(rate)?;
    Ok(SampleKey::of_hash(truncated_hash(input)) < key)
}

/// Normandy `bucketSample` (ranges wrap around `total`).
///
/// The input falls in one of `total` buckets; true when that bucket is in
/// `[start, start + count)` taken modulo `total`. `%` is JavaScript's remainder on doubles
/// (sign of the dividend), which Rust's `%` on `f64` matches. A `total` of 0 makes every
/// fraction NaN, which Firefox compares as text: the result is `false`, not an error.
pub fn bucket_sample(
    input: &Value,
    start: f64,
    count: f64,
    total: f64,
) -> Result<bool, SamplingError> {
    let wrapped_start = start % total;
    let end = wrapped_start + count;
    bucket_range_sample(
        input,
        BucketRange {
            wrapped_start,
            end,
            wraps: end > total,
            total,
        },
    )
}

/// The quantities `bucketSample` computes from its arguments before it compares keys.
///
/// In JavaScript, `end` is `wrappedStart + count`, which concatenates when `count` is a string
/// (`1 + "5"` is `"15"`), and `wraps` is `end > total` with JavaScript's comparison (two
/// strings compare as text). The filter language computes them with full JavaScript semantics
/// and passes the numbers the rest of the algorithm uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketRange {
    /// `start % total`.
    pub wrapped_start: f64,
    /// `ToNumber(wrappedStart + count)`.
    pub end: f64,
    /// `wrappedStart + count > total`.
    pub wraps: bool,
    /// `ToNumber(total)`.
    pub total: f64,
}

/// The second half of Normandy's `bucketSample`, given the coerced arguments.
pub fn bucket_range_sample(input: &Value, range: BucketRange) -> Result<bool, SamplingError> {
    let BucketRange {
        wrapped_start,
        end,
        wraps,
        total,
    } = range;
    let hash = SampleKey::of_hash(truncated_hash(input));
    if wraps {
        // JavaScript's `||` short-circuits, so the second range is only checked (and can only
        // fail) when the first does not contain the hash.
        if is_hash_in_bucket(hash, 0.0, end % total, total)? {
            return Ok(true);
        }
        return is_hash_in_bucket(hash, wrapped_start, total, total);
    }
    is_hash_in_bucket(hash, wrapped_start, end, total)
}

/// Normandy `ratioSample`: index of the chosen ratio.
///
/// Walks the cumulative ratios and picks the first whose boundary is `≥` the hash (note `≤`,
/// unlike the half-open buckets); the last index takes whatever is left. The total is
/// `ratios.reduce((a, b) => a + b)`, so all-zero ratios give NaN boundaries, compared as text.
pub fn ratio_sample(input: &Value, ratios: &[f64]) -> Result<usize, SamplingError> {
    let (Some(last), Some(first)) = (ratios.len().checked_sub(1), ratios.first()) else {
        return Err(SamplingError::new(
            "ratios must be at least 1 element long (got length: 0)".to_owned(),
        ));
    };
    let hash = SampleKey::of_hash(truncated_hash(input));
    let total = ratios.iter().skip(1).fold(*first, |acc, ratio| acc + ratio);
    let mut sample_point = 0.0;
    for (index, ratio) in ratios.iter().take(last).enumerate() {
        sample_point += ratio;
        if hash <= fraction_key(sample_point / total)? {
            return Ok(index);
        }
    }
    Ok(last)
}

/// CloudBees (rox) bucket of a seed: the first 4 bytes of MD5(seed) as a little-endian `u32`,
/// divided by `2^32 − 1`. The one value that would give exactly 1 gives 0, so the bucket is
/// in [0, 1).
pub fn rox_bucket(seed: &str) -> f64 {
    let digest = Md5::digest(seed.as_bytes());
    let value = digest
        .iter()
        .take(4)
        .rev()
        .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
    let bucket = f64::from(value) / f64::from(u32::MAX);
    if bucket == 1.0 { 0.0 } else { bucket }
}

/// CloudBees `isInPercentageRange(low, high, seed)`: `low ≤ bucket < high`.
pub fn rox_in_percentage_range(low: f64, high: f64, seed: &str) -> bool {
    let bucket = rox_bucket(seed);
    low <= bucket && bucket < high
}

/// CloudBees' older `isInPercentage(percentage, seed)`: `bucket ≤ percentage`.
pub fn rox_in_percentage(percentage: f64, seed: &str) -> bool {
    rox_bucket(seed) <= percentage
}

/// CloudBees `mergeSeed(a, b)`: `"a.b"` (stickiness value, then experiment seed).
pub fn rox_merge_seed(a: &str, b: &str) -> String {
    format!("{a}.{b}")
}

/// Manifest v1 `sample`: the persisted random value is admitted when `random_value ≤ sample`.
pub fn uniform_sample(random_value: f64, sample: f64) -> bool {
    random_value <= sample
}

/// Test Pilot `randomDeploy`: the persisted value is admitted when `ge ≤ value < lt`.
pub fn uniform_in_range(value: f64, ge: f64, lt: f64) -> bool {
    ge <= value && value < lt
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values like sampling inputs, with the corners of the stack serialiser: escapes,
    /// non-integral and huge numbers, `-0`, nesting, and inputs too long for the buffer.
    fn sampling_input() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Undefined),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            prop_oneof![
                any::<i32>().prop_map(f64::from),
                any::<f64>(),
                Just(-0.0),
                Just(9_007_199_254_740_992.0),
                Just(-9_007_199_254_740_991.0),
            ]
            .prop_map(Value::Number),
            "(?s).{0,40}".prop_map(|s| Value::string(&s)),
            "[a-f0-9-]{36}".prop_map(|s| Value::string(&s)),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop::collection::vec(inner, 0..8).prop_map(Value::array)
        })
    }

    proptest! {
        #[test]
        fn stack_serialisation_matches_json_stringify(input in sampling_input()) {
            let expected = input.to_js_json_string().unwrap_or_default();
            let mut small = SmallJson::new();
            if !matches!(input, Value::Undefined) && small.value(&input, 0).is_some() {
                prop_assert_eq!(std::str::from_utf8(small.as_bytes()).ok(), Some(expected.as_str()));
            }
            let digest = Sha256::digest(expected.as_bytes());
            let key = digest.iter().take(6).fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            prop_assert_eq!(truncated_hash(&input), key);
            if let Value::Array(items) = &input {
                let refs: Vec<&Value> = items.iter().collect();
                prop_assert_eq!(truncated_hash_of_array(&refs), key);
            }
        }
    }

    #[test]
    fn stack_serialisation_covers_the_usual_inputs() {
        let input = Value::array(vec![
            Value::string("299eed1e-be6d-457d-9e53-da7b1a03f10d"),
            Value::Number(10042.0),
        ]);
        let mut small = SmallJson::new();
        assert!(small.value(&input, 0).is_some());
        assert_eq!(
            small.as_bytes(),
            b"[\"299eed1e-be6d-457d-9e53-da7b1a03f10d\",10042]"
        );
        assert!(
            SmallJson::new()
                .value(&Value::string(&"x".repeat(300)), 0)
                .is_none()
        );
        // Every byte that needs escaping, in every position of a word and of the remainder.
        for len in 1..20 {
            for at in 0..len {
                for byte in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    assert!(needs_json_escape(&text), "{text:?}");
                }
                assert!(!needs_json_escape(&vec![0x7F; len]));
                assert!(!needs_json_escape("é".repeat(len).as_bytes()));
            }
        }
    }

    fn json(text: &str) -> Value {
        Value::from_json(&serde_json::from_str(text).unwrap())
    }

    const ID_A: &str = "299eed1e-be6d-457d-9e53-da7b1a03f10d";
    const ID_B: &str = "c590d3f5-fe9d-4820-97c9-f403535dd306";
    const SLUG: &str =
        "bug-1637316-message-aboutwelcome-pull-factor-reinforcement-76-rel-release-76-77";

    #[test]
    fn truncated_hash_golden_vectors() {
        let pair = |a: &str, b: &str| format!(r#"["{a}","{b}"]"#);
        let cases: Vec<(String, &str)> = vec![
            (r#"[1234,"test_namespace"]"#.into(), "2a6e18a86edc"),
            ("null".into(), "74234e98afe7"),
            (r#""""#.into(), "12ae32cb1ec0"),
            (
                r#"{"id":1234,"namespace":"experiment"}"#.into(),
                "5d1effd4b032",
            ),
            (r#""test""#.into(), "4d967a30111b"),
            (r#""test-0""#.into(), "782843000477"),
            (r#""test-1""#.into(), "887a83b78786"),
            (r#"["test"]"#.into(), "ecfd160805b1"),
            (r#"["test-1"]"#.into(), "292cf0ed1b11"),
            (r#"["test-4"]"#.into(), "a86253254dda"),
            (pair(ID_A, SLUG), "327a26e41d3d"),
            (pair(ID_B, SLUG), "4ca5ebedc495"),
            (pair("global-v4", ID_A), "7f0195d558ed"),
            (pair(ID_A, "global-v4"), "d2ca647f54c6"),
            (format!(r#"["{ID_A}",123]"#), "f61b2b1d3fd2"),
            // A JSON number 123.0 is the JS number 123 and must hash like it.
            (format!(r#"["{ID_A}",123.0]"#), "f61b2b1d3fd2"),
            (
                format!(r#""experiment-manager-{ID_A}-TEST_EXP1-branch""#),
                "a9e43cdcc771",
            ),
            (
                r#""experiment-manager-542213c0-9aef-47eb-bc6b-3b8529736ba2-TEST_EXP1-branch""#
                    .into(),
                "3932e499a89a",
            ),
            (format!(r#""{ID_A}-my-exp-branch""#), "aedbf6b3200f"),
            (r#""user-a-exp-1-branch""#.into(), "ba72586c12c7"),
            (
                r#""11111111-2222-3333-4444-555555555555-pref-exp-branch""#.into(),
                "d44f548913af",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                key_to_hex(truncated_hash(&json(&input))),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn truncated_hash_of_naive_float_text_differs() {
        // What a serializer printing `123.0` would hash; we must never produce these bytes.
        let digest = Sha256::digest(format!(r#"["{ID_A}",123.0]"#).as_bytes());
        let naive = digest
            .iter()
            .take(6)
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        assert_eq!(key_to_hex(naive), "e3a083a51ce0");
    }

    #[test]
    fn truncated_hash_of_undefined_hashes_no_bytes() {
        assert_eq!(
            key_to_hex(truncated_hash(&Value::Undefined)),
            "e3b0c44298fc"
        );
    }

    #[test]
    fn key_to_hex_pads_to_twelve_digits() {
        assert_eq!(key_to_hex(0), "000000000000");
        assert_eq!(key_to_hex(0xabc), "000000000abc");
        assert_eq!(key_to_hex(MAX_KEY), "ffffffffffff");
    }

    #[test]
    fn fraction_to_key_golden_vectors() {
        let cases = [
            (0.0, "000000000000"),
            (0.1, "199999999999"),
            (0.2, "333333333333"),
            (0.25, "3fffffffffff"),
            (0.3, "4ccccccccccc"),
            (0.5, "7fffffffffff"),
            (0.75, "bfffffffffff"),
            (0.9, "e66666666665"),
            (1.0, "ffffffffffff"),
            // Branch boundaries for ratios [4,3,2,1].
            (0.4, "666666666666"),
            (0.7, "b33333333332"),
        ];
        for (fraction, expected) in cases {
            assert_eq!(
                key_to_hex(fraction_to_key(fraction).unwrap()),
                expected,
                "{fraction}"
            );
        }
    }

    #[test]
    fn fraction_to_key_rejects_out_of_range() {
        for fraction in [-0.1, 1.000_001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(fraction_to_key(fraction).is_err(), "{fraction}");
        }
        assert_eq!(
            fraction_to_key(-1.0).unwrap_err().message,
            "frac must be between 0 and 1 inclusive (got -1)"
        );
    }

    #[test]
    fn stable_sample_golden_vectors() {
        let cases = [
            (r#""test""#, 1.0, true),
            (r#""test""#, 0.0, false),
            (r#""test""#, 0.5, true),
            (r#""test-0""#, 0.5, true),
            (r#""test-1""#, 0.5, false),
            (r#"["test"]"#, 1.0, true),
            (r#"["test"]"#, 0.0, false),
            (r#"["test-1"]"#, 0.5, true),
            (r#"["test-4"]"#, 0.5, false),
        ];
        for (input, rate, expected) in cases {
            assert_eq!(
                stable_sample(&json(input), rate),
                Ok(expected),
                "{input} {rate}"
            );
        }
    }

    #[test]
    fn bucket_sample_golden_vectors() {
        let pair = |a: &str, b: &str| format!(r#"["{a}","{b}"]"#);
        let cases: Vec<(String, f64, f64, f64, bool)> = vec![
            (r#""test""#.into(), 0.0, 10.0, 10.0, true),
            (r#""test""#.into(), 0.0, 0.0, 10.0, false),
            (r#""test-0""#.into(), 0.0, 5.0, 10.0, true),
            (r#""test-1""#.into(), 0.0, 5.0, 10.0, false),
            (r#"["test-1"]"#.into(), 0.0, 5.0, 10.0, true),
            (r#"["test-4"]"#.into(), 0.0, 5.0, 10.0, false),
            (pair(ID_A, SLUG), 0.0, 2000.0, 10000.0, true),
            (pair(ID_A, SLUG), 2000.0, 3000.0, 10000.0, false),
            (pair(ID_B, SLUG), 0.0, 2000.0, 10000.0, false),
            (pair(ID_B, SLUG), 2000.0, 3000.0, 10000.0, true),
            (pair("global-v4", ID_A), 0.0, 5000.0, 10000.0, true),
            (pair("global-v4", ID_A), 5000.0, 5000.0, 10000.0, false),
            // Wraps: [7000, 10000) ∪ [0, 2000).
            (pair(ID_A, "global-v4"), 7000.0, 5000.0, 10000.0, true),
            (r#"["test"]"#.into(), 8.0, 4.0, 10.0, true),
            (r#"["test"]"#.into(), 18.0, 4.0, 10.0, true),
        ];
        for (input, start, count, total, expected) in cases {
            assert_eq!(
                bucket_sample(&json(&input), start, count, total),
                Ok(expected),
                "{input} {start} {count} {total}"
            );
        }
    }

    #[test]
    fn bucket_sample_domains_follow_firefox() {
        let input = json(r#""test""#);
        // A negative start gives a negative fraction: `fractionToKey` throws.
        assert!(bucket_sample(&input, -5.0, 2.0, 10.0).is_err());
        assert!(bucket_sample(&input, 0.0, -5.0, 10.0).is_err());
        // A total of 0 or a NaN argument gives NaN fractions, whose keys are the text
        // `000000000NaN`: the empty range [NaN, NaN) contains nothing.
        assert_eq!(bucket_sample(&input, 0.0, 5.0, 0.0), Ok(false));
        assert_eq!(bucket_sample(&input, 1.0, 1.0, 0.0), Ok(false));
        assert_eq!(bucket_sample(&input, f64::NAN, 2.0, 10.0), Ok(false));
        assert_eq!(bucket_sample(&input, 0.0, f64::NAN, 10.0), Ok(false));
    }

    #[test]
    fn bucket_range_sample_takes_coerced_arguments() {
        // `bucketSample("1", "5", 10)` in Firefox: end = 1 + "5" = "15" > 10, so the range
        // wraps: [0, 5) ∪ [1, 10), which contains every hash below `ffffffffffff`.
        let range = BucketRange {
            wrapped_start: 1.0,
            end: 15.0,
            wraps: true,
            total: 10.0,
        };
        assert_eq!(bucket_range_sample(&json(r#"["test"]"#), range), Ok(true));
        let plain = BucketRange {
            end: 6.0,
            wraps: false,
            ..range
        };
        assert_eq!(
            bucket_range_sample(&json(r#"["test"]"#), plain),
            bucket_sample(&json(r#"["test"]"#), 1.0, 5.0, 10.0)
        );
    }

    #[test]
    fn nan_fraction_key_is_compared_as_text() {
        let nan = fraction_key(f64::NAN).unwrap();
        assert_eq!(nan.to_string(), "000000000NaN");
        // Digits sort before 'N', lower-case hex letters after it.
        assert!(SampleKey::of_hash(0x9ff) < nan);
        assert!(SampleKey::of_hash(0xa00) > nan);
        assert!(SampleKey::of_hash(0x1000) > nan);
        assert!(SampleKey::of_hash(0) < nan);
        // The u64 form has no value for NaN.
        assert!(fraction_to_key(f64::NAN).is_err());
    }

    #[test]
    fn fraction_key_matches_fraction_to_key_in_range() {
        for fraction in [0.0, -0.0, 0.1, 0.25, 0.5, 0.9, 1.0] {
            assert_eq!(
                fraction_key(fraction).unwrap().to_string(),
                key_to_hex(fraction_to_key(fraction).unwrap())
            );
        }
        for fraction in [-0.1, 1.000_001, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(fraction_key(fraction).is_err(), "{fraction}");
        }
    }

    #[test]
    fn nan_rates_do_not_throw() {
        // Firefox: `"test"|stableSample` (rate undefined → NaN) is false for this input, whose
        // hash `4d967a30111b` sorts after `000000000NaN`.
        assert_eq!(stable_sample(&json(r#""test""#), f64::NAN), Ok(false));
        // All-zero ratios: every boundary is NaN, so the last branch takes the input.
        assert_eq!(ratio_sample(&json(r#""test""#), &[0.0, 0.0]), Ok(1));
    }

    #[test]
    fn ratio_sample_golden_vectors() {
        let cases: Vec<(String, Vec<f64>, usize)> = vec![
            (r#""test""#.into(), vec![1.0], 0),
            (r#""test""#.into(), vec![0.0, 0.0, 1.0, 0.0], 2),
            (r#""test""#.into(), vec![1.0, 1.0], 0),
            (r#""test""#.into(), vec![4.0, 3.0, 2.0, 1.0], 0),
            (r#""test-0""#.into(), vec![1.0, 1.0], 0),
            (r#""test-1""#.into(), vec![1.0, 1.0], 1),
            (
                format!(r#""experiment-manager-{ID_A}-TEST_EXP1-branch""#),
                vec![1.0, 1.0],
                1,
            ),
            (
                r#""experiment-manager-542213c0-9aef-47eb-bc6b-3b8529736ba2-TEST_EXP1-branch""#
                    .into(),
                vec![1.0, 1.0],
                0,
            ),
            (format!(r#""{ID_A}-my-exp-branch""#), vec![1.0, 1.0], 1),
            (
                format!(r#""{ID_A}-my-exp-branch""#),
                vec![4.0, 3.0, 2.0, 1.0],
                1,
            ),
            (r#""user-a-exp-1-branch""#.into(), vec![1.0, 1.0], 1),
            (
                r#""user-a-exp-1-branch""#.into(),
                vec![4.0, 3.0, 2.0, 1.0],
                2,
            ),
            (
                r#""11111111-2222-3333-4444-555555555555-pref-exp-branch""#.into(),
                vec![1.0, 1.0],
                1,
            ),
            (
                r#""11111111-2222-3333-4444-555555555555-pref-exp-branch""#.into(),
                vec![4.0, 3.0, 2.0, 1.0],
                2,
            ),
        ];
        for (input, ratios, expected) in cases {
            assert_eq!(
                ratio_sample(&json(&input), &ratios),
                Ok(expected),
                "{input} {ratios:?}"
            );
        }
    }

    #[test]
    fn ratio_sample_rejects_empty_list() {
        let err = ratio_sample(&json(r#""test""#), &[]).unwrap_err();
        assert!(
            err.message
                .starts_with("ratios must be at least 1 element long"),
            "{err}"
        );
    }

    #[test]
    fn nimbus_choose_branch_inputs() {
        // Nimbus hashes the branch input string "experimentmanager-<id>-<slug>-branch".
        let cases = [
            ("3d2142de-53bf-2d48-a92d-45fb7036cbf6", "b54ceac316b7", 1),
            ("542213c0-9aef-47eb-bc6b-3b8529736ba2", "159f9c18b2bb", 0),
        ];
        for (id, hash, branch) in cases {
            let input = Value::string(&format!("experimentmanager-{id}-TEST_EXP1-branch"));
            assert_eq!(key_to_hex(truncated_hash(&input)), hash);
            assert_eq!(ratio_sample(&input, &[1.0, 1.0]), Ok(branch));
        }
    }

    #[test]
    fn rox_golden_vectors() {
        let buckets = [
            ("device2.seed2", 0.187_212_514_501_812_98),
            ("user-1", 0.325_940_599_275_273_4),
            ("abc.def", 0.515_704_243_796_808_7),
        ];
        for (seed, expected) in buckets {
            assert_eq!(rox_bucket(seed), expected, "{seed}");
        }
        assert!(rox_in_percentage_range(0.0, 0.5, "device2.seed2"));
        assert!(!rox_in_percentage_range(0.5, 1.0, "device2.seed2"));
        assert!(rox_in_percentage(0.2, "device2.seed2"));
        assert!(!rox_in_percentage(0.1, "device2.seed2"));
        assert_eq!(rox_merge_seed("123", "456"), "123.456");
        assert_eq!(
            rox_bucket(&rox_merge_seed("device2", "seed2")),
            buckets[0].1
        );
    }

    #[test]
    fn uniform_sample_golden_vectors() {
        // Manifest v1 fixture: random value 0.5.
        let cases = [
            (-1.0, false),
            (0.0, false),
            (0.1, false),
            (0.5, true),
            (0.6, true),
            (1.0, true),
        ];
        for (sample, expected) in cases {
            assert_eq!(uniform_sample(0.5, sample), expected, "{sample}");
        }
        assert!(!uniform_sample(f64::NAN, 1.0));
    }

    #[test]
    fn uniform_in_range_is_half_open() {
        assert!(uniform_in_range(0.0, 0.0, 0.5));
        assert!(uniform_in_range(0.25, 0.0, 0.5));
        assert!(!uniform_in_range(0.5, 0.0, 0.5));
        assert!(uniform_in_range(0.5, 0.5, 1.0));
        assert!(!uniform_in_range(f64::NAN, 0.0, 1.0));
    }

    proptest! {
        #[test]
        fn fraction_to_key_is_monotone(a in 0.0f64..=1.0, b in 0.0f64..=1.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(fraction_to_key(lo).unwrap() <= fraction_to_key(hi).unwrap());
        }

        #[test]
        fn stable_sample_keeps_admitted_inputs_when_rate_grows(
            user in "[a-z0-9-]{0,40}",
            recipe in 0u32..100_000,
            a in 0.0f64..=1.0,
            b in 0.0f64..=1.0,
        ) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let input = Value::array(vec![Value::string(&user), Value::Number(f64::from(recipe))]);
            if stable_sample(&input, lo).unwrap() {
                prop_assert!(stable_sample(&input, hi).unwrap());
            }
        }

        #[test]
        fn key_order_is_the_order_of_the_texts(
            a in prop_oneof![0u64..0x2000, 0u64..=MAX_KEY, Just(u64::MAX)],
            b in prop_oneof![0u64..0x2000, 0u64..=MAX_KEY],
            a_nan in any::<bool>(),
            b_nan in any::<bool>(),
        ) {
            let key = |k: u64, nan: bool| if nan { SampleKey::NAN } else { SampleKey::of_hash(k) };
            let (x, y) = (key(a, a_nan), key(b, b_nan));
            prop_assert_eq!(x.cmp(&y), x.to_string().cmp(&y.to_string()));
        }

        #[test]
        fn bucket_functions_never_panic(
            user in ".{0,20}",
            x in any::<f64>(),
            y in any::<f64>(),
            z in any::<f64>(),
            ratios in proptest::collection::vec(any::<f64>(), 0..6),
        ) {
            let input = Value::string(&user);
            let _ = fraction_to_key(x);
            let _ = stable_sample(&input, x);
            let _ = bucket_sample(&input, x, y, z);
            let _ = ratio_sample(&input, &ratios);
            let _ = rox_in_percentage_range(x, y, &user);
            let bucket = rox_bucket(&user);
            prop_assert!((0.0..1.0).contains(&bucket));
            let _ = uniform_sample(x, y);
            let _ = uniform_in_range(x, y, z);
        }

        #[test]
        fn bucket_sample_on_valid_domain_never_errors(
            user in "[a-z0-9-]{0,20}",
            start in 0u32..20_000,
            count in 0u32..10_000,
            total in 1u32..10_000,
        ) {
            let input = Value::string(&user);
            let count = count.min(total);
            prop_assert!(
                bucket_sample(&input, f64::from(start), f64::from(count), f64::from(total)).is_ok()
            );
        }
    }
}

//! Inputs of the property tests (`tests/fuzz_*.rs` of each crate): case counts, and cheap
//! generators of hostile input — protobuf wire records, JSON values, names, query strings.
//!
//! Two kinds of generators: proptest strategies (shrinking to a small counterexample; used
//! for the targets where a case is expensive anyway) and expansions of one `u64` seed through
//! [`Xorshift`] (a few microseconds per case in a debug build, for the bulk of the cases; a
//! failing seed reproduces its input exactly, and the tests print that input).
//!
//! `WHISK_FUZZ_CASES` multiplies every target's case count (default 1), for longer runs:
//! `WHISK_FUZZ_CASES=20 cargo test --release fuzz_`.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

/// A proptest config of `base` cases times `WHISK_FUZZ_CASES` (when set), without failure
/// files (regressions are kept as plain tests instead).
pub fn cases(base: u32) -> Config {
    let scale = std::env::var("WHISK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    Config {
        cases: base.saturating_mul(scale),
        failure_persistence: None,
        ..Config::default()
    }
}

/// The seed of a target that draws its own inputs (outside `proptest!`): `WHISK_FUZZ_SEED`
/// when set, else the clock; printed, so that a failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("WHISK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("WHISK_FUZZ_SEED={seed}");
    seed
}

/// A small xorshift generator: expands one seed into a whole input.
#[derive(Debug, Clone)]
pub struct Xorshift(u64);

impl Xorshift {
    /// The generator of `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len() as u64) as usize]
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: u64) -> Vec<u8> {
        (0..self.below(max + 1))
            .map(|_| self.next_u64() as u8)
            .collect()
    }

    /// A number as the edges of a parser meet them: small, zero, negative, huge, fractional.
    pub fn number(&mut self) -> Value {
        match self.below(6) {
            0 => Value::from(self.below(10)),
            1 => Value::from(-(self.below(1000) as i64)),
            2 => Value::from(self.next_u64()),
            3 => Value::from(self.next_u64() as i64),
            4 => serde_json::Number::from_f64((self.next_u64() as f64) / 7.0 - 1e18)
                .map_or(Value::Null, Value::Number),
            _ => Value::from(0),
        }
    }

    /// Text of up to `max` characters: ASCII, separators, escapes, multi-byte and control
    /// characters, sometimes very long.
    pub fn text(&mut self, max: u64) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            "9",
            "_",
            "-",
            ".",
            "..",
            "/",
            "//",
            " ",
            "@",
            "%",
            "%2F",
            "%00",
            "%zz",
            "?",
            "&",
            "=",
            "#",
            "+",
            "*",
            "\"",
            "'",
            "\\",
            "\n",
            "\t",
            "\0",
            "\u{7f}",
            "é",
            "ß",
            "\u{200b}",
            "\u{fffd}",
            "日本",
            "🦀",
            "\u{10ffff}",
            "null",
            "true",
            "{}",
            "[",
            "main",
            "guest",
            "whisk.system",
            "_",
            "nodejs:20",
            "python:3",
        ];
        let mut s = String::new();
        let n = if self.one_in(40) {
            300 + self.below(400)
        } else {
            self.below(max + 1)
        };
        for _ in 0..n {
            if self.one_in(4) {
                s.push(char::from_u32(self.below(0x11_0000) as u32).unwrap_or('x'));
            } else {
                s.push_str(self.pick(PIECES));
            }
        }
        s
    }

    /// An entity name as a client could put in a path: usually valid, often not.
    pub fn name(&mut self) -> String {
        match self.below(6) {
            0 | 1 => {
                let n = 1 + self.below(12);
                (0..n)
                    .map(|_| (b'a' + self.below(26) as u8) as char)
                    .collect()
            }
            2 => "x".repeat(250 + self.below(20) as usize),
            _ => self.text(12),
        }
    }

    /// A JSON value of nesting at most `depth`, with keys drawn from `keys` half the time.
    pub fn json(&mut self, depth: u32, keys: &[&str]) -> Value {
        let leaf = depth == 0 || self.one_in(3);
        match self.below(if leaf { 4 } else { 6 }) {
            0 => Value::Null,
            1 => Value::Bool(self.one_in(2)),
            2 => self.number(),
            3 => {
                if !keys.is_empty() && self.one_in(3) {
                    Value::String(self.pick(keys).to_string())
                } else {
                    Value::String(self.text(8))
                }
            }
            4 => Value::Array(
                (0..self.below(5))
                    .map(|_| self.json(depth - 1, keys))
                    .collect(),
            ),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.below(6) {
                    let key = if !keys.is_empty() && !self.one_in(4) {
                        self.pick(keys).to_string()
                    } else {
                        self.text(6)
                    };
                    map.insert(key, self.json(depth - 1, keys));
                }
                Value::Object(map)
            }
        }
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn key(field: u64, wire: u64, out: &mut Vec<u8>) {
    varint((field << 3) | wire, out);
}

/// Protobuf wire records from `rng`: field numbers mostly 1..=20 (any schema's), every wire
/// type, strings (valid UTF-8 or not), nested messages (to `depth`), lengths past the end, and
/// sometimes trailing garbage. Knows no schema: it keeps working as fields are added.
pub fn protobuf(rng: &mut Xorshift, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(10) {
        let field = if rng.one_in(10) {
            rng.below(1 << 29)
        } else {
            1 + rng.below(20)
        };
        let value = match rng.below(4) {
            0 => rng.next_u64(),
            1 => rng.next_u64() & 0xff,
            2 => 0,
            _ => rng.next_u64() >> rng.below(64),
        };
        match rng.below(7) {
            0 => {
                key(field, 0, &mut out);
                varint(value, &mut out);
            }
            1 => {
                key(field, 1, &mut out);
                out.extend_from_slice(&value.to_le_bytes());
            }
            2 => {
                key(field, 5, &mut out);
                out.extend_from_slice(&(value as u32).to_le_bytes());
            }
            3 => {
                // A length that runs past the end of the input.
                key(field, 2, &mut out);
                varint(value, &mut out);
            }
            4 if depth > 0 => {
                let body = protobuf(rng, depth - 1);
                key(field, 2, &mut out);
                varint(body.len() as u64, &mut out);
                out.extend_from_slice(&body);
            }
            _ => {
                let body = if rng.one_in(3) {
                    rng.bytes(40)
                } else {
                    rng.text(12).into_bytes()
                };
                key(field, 2, &mut out);
                varint(body.len() as u64, &mut out);
                out.extend_from_slice(&body);
            }
        }
    }
    if rng.one_in(8) {
        out.extend(rng.bytes(8));
    }
    out
}

/// Arbitrary JSON values (a proptest strategy: shrinks to a small counterexample), with
/// object keys from `keys` half the time.
pub fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        proptest::sample::select(keys).prop_map(str::to_string),
        "[a-z_]{0,6}|\\PC{0,4}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(keys).prop_map(|k| Value::String(k.to_string())),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

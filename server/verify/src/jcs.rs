//! A fast RFC 8785 (JCS) encoder for typed values: the verifier's fast path for "is this entry
//! canonical, and what is its record id".
//!
//! The ledger check must show that each entry's bytes are the canonical JSON of the entry and
//! hash the canonical JSON of its record. `serde_json_canonicalizer` does that in about 8 µs per
//! entry (it allocates per key and per write, and re-parses every key), which made it most of
//! `aims-verify`'s time on a large bundle. This encoder writes the same bytes into one buffer:
//! members of an object are written one after the other, then put in key order once the object
//! ends.
//!
//! Contract: whenever [`to_vec`] returns `Ok`, the bytes equal `serde_json_canonicalizer::to_vec`
//! of the same value, byte for byte (tested below against it on random values and on ledger
//! entries). It returns [`Unsupported`] for what the ledger's types never contain (tuple and
//! struct enum variants, byte strings, non-string map keys, serde_json's private magic
//! structs) and for what the canonicalizer rejects (non-finite numbers, duplicate keys); callers
//! then fall back to the canonicalizer, so an unsupported shape costs time, never a verdict.
//!
//! The rules it follows are the canonicalizer's: numbers of every type are printed as the
//! ECMAScript `Number` of their `f64` value (`ryu_js`, as the canonicalizer does); strings escape
//! `"`, `\`, and the control characters below U+0020 (`\b \t \n \f \r`, otherwise `\u00xx` in
//! lower case) and nothing else; object members are sorted by the UTF-16 code units of their
//! keys.

use std::cmp::Ordering;
use std::fmt::Display;
use std::ops::Range;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// A value this encoder does not handle (the caller uses `serde_json_canonicalizer` instead).
#[derive(Debug, thiserror::Error)]
#[error("not supported by the fast canonical encoder: {0}")]
pub(crate) struct Unsupported(String);

impl ser::Error for Unsupported {
    fn custom<T: Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

fn unsupported<T>(what: &str) -> Result<T, Unsupported> {
    Err(Unsupported(what.to_owned()))
}

/// The canonical JSON of `value`.
#[cfg(test)]
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Unsupported> {
    Buffers::default()
        .encode(value, "")
        .map(|(bytes, _)| bytes.to_vec())
}

/// An encoder's buffers, kept from one value to the next: a thread that encodes many values
/// allocates nothing once they have grown to the largest.
#[derive(Default)]
pub(crate) struct Buffers {
    out: Vec<u8>,
    scratch: Vec<u8>,
    members: Vec<Member>,
    keys: String,
}

impl Buffers {
    /// The canonical JSON of `value` (valid until the next call), and where the value of its
    /// top-level member `member` lies in it (`None` when `value` is not an object or has no
    /// such member). That span is itself the canonical JSON of the member's value.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        member: &str,
    ) -> Result<(&[u8], Option<Range<usize>>), Unsupported> {
        let mut enc = Encoder {
            out: std::mem::take(&mut self.out),
            scratch: std::mem::take(&mut self.scratch),
            members: std::mem::take(&mut self.members),
            keys: std::mem::take(&mut self.keys),
            depth: 0,
            member,
            found: None,
        };
        enc.out.clear();
        enc.members.clear();
        enc.keys.clear();
        let result = value.serialize(&mut enc);
        self.out = enc.out;
        self.scratch = enc.scratch;
        self.members = enc.members;
        self.keys = enc.keys;
        result?;
        Ok((&self.out, enc.found))
    }
}

/// The encoder's buffers are shared by every object it writes (one allocation each per value,
/// not per object or key).
struct Encoder<'m> {
    out: Vec<u8>,
    /// Reused while an object's members are put in order.
    scratch: Vec<u8>,
    /// The members of every open object, innermost last.
    members: Vec<Member>,
    /// The text of the map keys of every open object (struct field names are static).
    keys: String,
    /// Objects open around the value being written.
    depth: usize,
    /// The top-level member whose span is wanted.
    member: &'m str,
    found: Option<Range<usize>>,
}

/// Key order of RFC 8785 §3.2.3: by UTF-16 code units. That is byte order except where a
/// character at or above U+E000 meets one beyond U+FFFF (whose first UTF-16 unit is a surrogate,
/// 0xD800–0xDBFF), so only the first differing character is looked at.
fn key_order(a: &str, b: &str) -> Ordering {
    let Some(i) = a.bytes().zip(b.bytes()).position(|(x, y)| x != y) else {
        return a.len().cmp(&b.len());
    };
    // The common prefix ends on the same character boundary in both.
    let start = (0..=i).rev().find(|&s| a.is_char_boundary(s)).unwrap_or(0);
    let first_unit = |s: &str| {
        s.get(start..)
            .and_then(|rest| rest.chars().next())
            .map(|c| {
                let c = u32::from(c);
                let unit = if c >= 0x1_0000 {
                    0xD800 + ((c - 0x1_0000) >> 10)
                } else {
                    c
                };
                (unit, c)
            })
    };
    first_unit(a).cmp(&first_unit(b))
}

/// What a byte of a string becomes: itself (0), a short escape, or `\u00xx` (`u`).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// The inside of a JSON string (no quotes), escaped as serde_json (and so the canonicalizer)
/// escapes it.
fn write_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[usize::from(b)];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// `Display` output escaped straight into the buffer (timestamps: no temporary string).
struct Escaping<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        write_escaped(self.0, s);
        Ok(())
    }
}

impl<'m> Encoder<'m> {
    fn number(&mut self, v: f64) -> Result<(), Unsupported> {
        if !v.is_finite() {
            return unsupported("a non-finite number");
        }
        let mut buf = ryu_js::Buffer::new();
        self.out.extend_from_slice(buf.format_finite(v).as_bytes());
        Ok(())
    }

    fn open_object(&mut self) -> Object<'_, 'm> {
        self.depth += 1;
        Object {
            start: self.out.len(),
            base: self.members.len(),
            keys: self.keys.len(),
            pending: None,
            enc: self,
        }
    }

    fn key_str(&self, key: &Key) -> &str {
        match key {
            Key::Static(s) => s,
            Key::Map(r) => self.keys.get(r.clone()).unwrap_or_default(),
        }
    }
}

/// One member written so far: its key and where `"key":value` lies in the output.
struct Member {
    key: Key,
    bytes: Range<usize>,
    /// Length of `"key":`.
    head: usize,
}

#[derive(Clone)]
enum Key {
    /// A struct field name.
    Static(&'static str),
    /// A map key: its text in [`Encoder::keys`].
    Map(Range<usize>),
}

/// An object being written: members go out unordered and without separators, and are put in
/// key order (with braces and commas) when it ends.
struct Object<'a, 'm> {
    enc: &'a mut Encoder<'m>,
    /// Where the object starts in the output.
    start: usize,
    /// Where its members start in [`Encoder::members`], its map keys in [`Encoder::keys`].
    base: usize,
    keys: usize,
    /// A map key written, waiting for its value: (key, start of `"key":`).
    pending: Option<(Key, usize)>,
}

impl Object<'_, '_> {
    fn key(&mut self, key: Key) {
        let at = self.enc.out.len();
        let enc = &mut *self.enc;
        match &key {
            Key::Static(s) => write_str(&mut enc.out, s),
            Key::Map(r) => write_str(&mut enc.out, enc.keys.get(r.clone()).unwrap_or_default()),
        }
        enc.out.push(b':');
        self.pending = Some((key, at));
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        let Some((key, at)) = self.pending.take() else {
            return unsupported("a map value without a key");
        };
        let head = self.enc.out.len() - at;
        value.serialize(&mut *self.enc)?;
        self.enc.members.push(Member {
            key,
            bytes: at..self.enc.out.len(),
            head,
        });
        Ok(())
    }

    fn end(self) -> Result<(), Unsupported> {
        let enc = self.enc;
        let mut members = std::mem::take(&mut enc.members);
        let mine = &mut members[self.base..];
        mine.sort_by(|a, b| key_order(enc.key_str(&a.key), enc.key_str(&b.key)));
        if mine
            .windows(2)
            .any(|w| enc.key_str(&w[0].key) == enc.key_str(&w[1].key))
        {
            return unsupported("a duplicate object key");
        }
        enc.depth -= 1;
        let top = enc.depth == 0;
        enc.scratch.clear();
        enc.scratch.extend_from_slice(&enc.out[self.start..]);
        enc.out.truncate(self.start);
        enc.out.push(b'{');
        for (i, m) in mine.iter().enumerate() {
            if i > 0 {
                enc.out.push(b',');
            }
            let at = enc.out.len();
            let from = m.bytes.start - self.start;
            let to = m.bytes.end - self.start;
            enc.out.extend_from_slice(&enc.scratch[from..to]);
            if top && enc.key_str(&m.key) == enc.member {
                enc.found = Some(at + m.head..enc.out.len());
            }
        }
        enc.out.push(b'}');
        members.truncate(self.base);
        enc.members = members;
        enc.keys.truncate(self.keys);
        Ok(())
    }
}

/// An array: elements separated by commas.
struct Array<'a, 'm> {
    enc: &'a mut Encoder<'m>,
    first: bool,
}

impl Array<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        if !self.first {
            self.enc.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.enc)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.enc.out.push(b']');
        Ok(())
    }
}

impl<'a, 'm> ser::Serializer for &'a mut Encoder<'m> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Array<'a, 'm>;
    type SerializeTuple = Array<'a, 'm>;
    type SerializeTupleStruct = Array<'a, 'm>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Object<'a, 'm>;
    type SerializeStruct = Object<'a, 'm>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.number(f64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.number(f64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.number(f64::from(v))
    }
    // Every integer is printed as the f64 it converts to, as the canonicalizer does.
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.number(v as f64)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unsupported> {
        self.number(v as f64)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.number(f64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.number(f64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.number(f64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.number(v as f64)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unsupported> {
        self.number(v as f64)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        self.number(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.number(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        write_str(&mut self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        write_str(&mut self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        unsupported("a byte string")
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        use std::fmt::Write as _;
        self.out.push(b'"');
        write!(Escaping(&mut self.out), "{value}")
            .map_err(|_| Unsupported("a Display implementation failed".to_owned()))?;
        self.out.push(b'"');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        let mut o = self.open_object();
        o.key(Key::Static(variant));
        o.value(value)?;
        o.end()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a, 'm>, Unsupported> {
        self.out.push(b'[');
        Ok(Array {
            enc: self,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a, 'm>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Array<'a, 'm>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        unsupported("a tuple variant")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a, 'm>, Unsupported> {
        Ok(self.open_object())
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Object<'a, 'm>, Unsupported> {
        // serde_json's RawValue and arbitrary-precision Number pass raw text this way.
        if name.starts_with("$serde_json") {
            return unsupported(name);
        }
        Ok(self.open_object())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        unsupported("a struct variant")
    }
}

impl ser::SerializeSeq for Array<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Array::end(self)
    }
}

impl ser::SerializeTuple for Array<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Array::end(self)
    }
}

impl ser::SerializeTupleStruct for Array<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Array::end(self)
    }
}

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        let from = self.enc.keys.len();
        key.serialize(KeyName(&mut self.enc.keys))?;
        self.key(Key::Map(from..self.enc.keys.len()));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.value(value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Object::end(self)
    }
}

impl ser::SerializeStruct for Object<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.key(Key::Static(key));
        self.value(value)
    }
    fn end(self) -> Result<(), Unsupported> {
        Object::end(self)
    }
}

/// Map keys: strings only (what every map of the ledger's types has), appended to the key text.
struct KeyName<'a>(&'a mut String);

impl ser::Serializer for KeyName<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.0.push_str(v);
        Ok(())
    }
    fn serialize_bool(self, _: bool) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_i8(self, _: i8) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_i16(self, _: i16) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_i32(self, _: i32) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_i64(self, _: i64) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_u8(self, _: u8) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_u16(self, _: u16) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_u32(self, _: u32) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_u64(self, _: u64) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_f32(self, _: f32) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_f64(self, _: f64) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_char(self, _: char) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        unsupported("a non-string map key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// xorshift64*: deterministic values for the comparison below.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Characters that stress escaping and key order: ASCII specials, controls, DEL, BMP
    /// characters on both sides of the surrogate range, astral characters.
    const CHARS: &[char] = &[
        'a',
        'b',
        'Z',
        '0',
        ' ',
        '"',
        '\\',
        '/',
        '\u{0}',
        '\u{1}',
        '\u{8}',
        '\t',
        '\n',
        '\u{b}',
        '\u{c}',
        '\r',
        '\u{1f}',
        '\u{7f}',
        'é',
        '\u{2028}',
        '\u{d7ff}',
        '\u{e000}',
        '\u{fffd}',
        '\u{ffff}',
        '😀',
        '\u{10000}',
        '\u{10ffff}',
    ];

    fn string(rng: &mut Rng) -> String {
        (0..rng.below(6))
            .map(|_| CHARS[rng.below(CHARS.len() as u64) as usize])
            .collect()
    }

    fn number(rng: &mut Rng) -> Value {
        match rng.below(8) {
            0 => json!(rng.below(1000)),
            1 => json!(rng.next()),
            2 => json!(-(rng.below(1 << 60) as i64)),
            3 => json!((rng.next() as f64) / 1e9),
            4 => json!(f64::from_bits(rng.next() & 0x7fef_ffff_ffff_ffff)),
            5 => json!(1e21 + rng.below(10) as f64 * 1e20),
            6 => json!(rng.below(100) as f64 / 7.0),
            _ => json!((1u64 << 53) + rng.below(5)),
        }
    }

    fn value(rng: &mut Rng, depth: u32) -> Value {
        let pick = if depth >= 4 {
            rng.below(4)
        } else {
            rng.below(6)
        };
        match pick {
            0 => Value::Null,
            1 => json!(rng.below(2) == 0),
            2 => number(rng),
            3 => Value::String(string(rng)),
            4 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
            _ => Value::Object(
                (0..rng.below(6))
                    .map(|_| (string(rng), value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    fn same_as_canonicalizer<T: Serialize + std::fmt::Debug>(v: &T) {
        let ours = to_vec(v).unwrap();
        let theirs = serde_json_canonicalizer::to_vec(v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "{v:?}"
        );
    }

    #[test]
    fn random_values_encode_as_the_canonicalizer_does() {
        let mut rng = Rng(0x5eed_1234_5678_9abc);
        for _ in 0..5_000 {
            same_as_canonicalizer(&value(&mut rng, 0));
        }
    }

    #[test]
    fn key_order_is_utf16_order() {
        let mut rng = Rng(0x0dd_c0ffee);
        for _ in 0..20_000 {
            let (a, b, c) = (string(&mut rng), string(&mut rng), string(&mut rng));
            for (x, y) in [
                (a.clone(), b.clone()),
                (format!("{c}{a}"), format!("{c}{b}")),
                (a.clone(), format!("{a}{b}")),
                (a.clone(), a.clone()),
            ] {
                assert_eq!(
                    key_order(&x, &y),
                    x.encode_utf16().cmp(y.encode_utf16()),
                    "{x:?} {y:?}"
                );
            }
        }
    }

    #[test]
    fn numbers_strings_and_key_order() {
        for n in [
            json!(0),
            json!(-0.0),
            json!(1e21),
            json!(1e-7),
            json!(123456789012345678u64),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(5e-324),
            json!(f64::MAX),
            json!(0.1),
            json!(-1.5e300),
        ] {
            same_as_canonicalizer(&n);
        }
        same_as_canonicalizer(&json!("\u{0}\u{1f}\u{7f}\"\\/\u{8}\t\n\u{c}\r é😀"));
        // U+E000 sorts after the surrogates of U+1F600 in UTF-16, before it in UTF-8.
        same_as_canonicalizer(&json!({"\u{e000}": 1, "😀": 2, "a": 3, "": 4, "A": 5}));
        same_as_canonicalizer(&json!({}));
        same_as_canonicalizer(&json!([]));
        assert_eq!(
            to_vec(&json!({"b": [1, {"d": 2, "c": null}], "a": "x"})).unwrap(),
            br#"{"a":"x","b":[1,{"c":null,"d":2}]}"#
        );
    }

    #[derive(Serialize, Debug)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, u8),
    }

    #[derive(Serialize, Debug)]
    struct S {
        z: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u32>,
        a: E,
        n: E,
        c: char,
        t: (u8, String),
        u: (),
    }

    #[test]
    fn typed_values_and_unsupported_shapes() {
        same_as_canonicalizer(&S {
            z: None,
            skipped: None,
            a: E::Unit,
            n: E::New(7),
            c: '"',
            t: (1, "x".into()),
            u: (),
        });
        assert!(to_vec(&E::Tuple(1, 2)).is_err());
        assert!(to_vec(&f64::NAN).is_err());
        assert!(to_vec(&serde_bytes_like()).is_err());
        let mut m = std::collections::BTreeMap::new();
        m.insert(1u32, 2u32);
        assert!(to_vec(&m).is_err());
    }

    fn serde_bytes_like() -> impl Serialize {
        struct B;
        impl Serialize for B {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(b"ab")
            }
        }
        B
    }

    #[test]
    fn member_span_is_the_members_canonical_value() {
        let v = json!({"record": {"b": 1, "a": [true, "x"]}, "agent": "q", "v": 1});
        let mut b = Buffers::default();
        let (bytes, span) = b.encode(&v, "record").unwrap();
        let span = span.unwrap();
        assert_eq!(&bytes[span], br#"{"a":[true,"x"],"b":1}"#);
        // Only the top level counts.
        let v = json!({"x": {"record": 1}});
        assert_eq!(b.encode(&v, "record").unwrap().1, None);
        assert_eq!(b.encode(&json!([1]), "record").unwrap().1, None);
        // The buffers are reused: a failed value leaves them usable.
        assert!(b.encode(&f64::NAN, "record").is_err());
        assert_eq!(
            b.encode(&json!({"record": 2}), "record").unwrap().0,
            br#"{"record":2}"#
        );
    }
}

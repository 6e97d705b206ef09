//! Content hashes and the comparison form: a record's JSON with every text replaced by its
//! comparison key, hashed in one streaming pass (so cosmetic differences upstream are not
//! changes), and the [`Digest`] type every hash is kept as.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::text;

/// The content hash of any record: SHA-256 of its canonical JSON with every text replaced by its
/// [`text::comparison_key`]. Computed in one streaming pass, without building the comparable form.
pub fn content_hash<T: Serialize + ?Sized>(record: &T) -> Digest {
    let mut writer = HashWriter(Sha256::new());
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut writer, ComparableFormatter::default());
    // Serialising plain data into a hasher cannot fail.
    let _ = record.serialize(&mut serializer);
    Digest::from_hasher(writer.0)
}

/// The record's compact JSON (as bytes: serde_json writes UTF-8, so nothing needs to check it
/// again on its way to the database) and its [`content_hash`], in one serialisation pass.
pub fn json_and_hash<T: Serialize + ?Sized>(record: &T) -> (Vec<u8>, Digest) {
    let mut hasher = HashWriter(Sha256::new());
    let mut json = Vec::with_capacity(4096);
    let formatter = TeeFormatter {
        hasher: &mut hasher,
        comparable: ComparableFormatter::default(),
    };
    let mut serializer = serde_json::Serializer::with_formatter(&mut json, formatter);
    // Serialising plain data into memory cannot fail.
    let _ = record.serialize(&mut serializer);
    (json, Digest::from_hasher(hasher.0))
}

/// Writes compact JSON to the serialiser's writer and, at the same time, the comparable form
/// ([`ComparableFormatter`]) to a hasher.
struct TeeFormatter<'h> {
    hasher: &'h mut HashWriter,
    comparable: ComparableFormatter,
}

/// Forwards formatter calls to the compact JSON output and to the comparable form.
macro_rules! tee {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<W: ?Sized + std::io::Write>(
                &mut self,
                writer: &mut W,
                $($arg: $ty),*
            ) -> std::io::Result<()> {
                serde_json::ser::CompactFormatter.$method(writer, $($arg),*)?;
                self.comparable.$method(&mut *self.hasher, $($arg),*)
            }
        )*
    };
}

impl serde_json::ser::Formatter for TeeFormatter<'_> {
    tee! {
        write_null();
        write_bool(value: bool);
        write_i8(value: i8);
        write_i16(value: i16);
        write_i32(value: i32);
        write_i64(value: i64);
        write_i128(value: i128);
        write_u8(value: u8);
        write_u16(value: u16);
        write_u32(value: u32);
        write_u64(value: u64);
        write_u128(value: u128);
        write_f32(value: f32);
        write_f64(value: f64);
        write_number_str(value: &str);
        begin_string();
        end_string();
        write_string_fragment(fragment: &str);
        write_byte_array(value: &[u8]);
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
        write_raw_fragment(fragment: &str);
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        self.comparable.text.push(escaped_char(&escape));
        serde_json::ser::CompactFormatter.write_char_escape(writer, escape)
    }
}

/// An `io::Write` that feeds a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON formatter writing each string as its comparison key (length-prefixed, so the output
/// stays unambiguous), for [`Procedure::content_hash`].
#[derive(Default)]
struct ComparableFormatter {
    text: String,
    key: String,
}

impl serde_json::ser::Formatter for ComparableFormatter {
    fn begin_string<W: ?Sized + std::io::Write>(&mut self, _writer: &mut W) -> std::io::Result<()> {
        self.text.clear();
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        _writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        self.text.push_str(fragment);
        Ok(())
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        _writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        self.text.push(escaped_char(&escape));
        Ok(())
    }

    fn end_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        let key = if is_url(&self.text) {
            &self.text
        } else {
            text::comparison_key_into(&self.text, &mut self.key);
            &self.key
        };
        writer.write_all(&(key.len() as u64).to_le_bytes())?;
        writer.write_all(key.as_bytes())
    }
}

/// The character a JSON escape stands for.
fn escaped_char(escape: &serde_json::ser::CharEscape) -> char {
    use serde_json::ser::CharEscape::*;
    match escape {
        Quote => '"',
        ReverseSolidus => '\\',
        Solidus => '/',
        Backspace => '\u{8}',
        FormFeed => '\u{c}',
        LineFeed => '\n',
        CarriageReturn => '\r',
        Tab => '\t',
        AsciiControl(byte) => *byte as char,
    }
}

/// URLs keep their case in comparisons.
fn is_url(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

/// The comparable form of one text: its comparison key, except URLs, whose case matters.
fn comparable_text(text: &str) -> std::borrow::Cow<'_, str> {
    if is_url(text) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text::comparison_key(text))
    }
}

/// Replaces every string in a JSON value by its comparison key (URLs are kept as they are: their
/// case is significant).
pub fn comparable_form(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(comparable_text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(comparable_form).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), comparable_form(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A SHA-256 digest. Kept as its 32 bytes in memory (a run's baseline holds two per stored
/// procedure), written as lowercase hex wherever it is stored or shown.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of what a hasher was fed.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest(hasher.finalize().into())
    }

    /// The digest stored as bytes; `None` unless it is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Digest> {
        bytes.try_into().ok().map(Digest)
    }

    /// Reads the hex form written by [`Digest`]'s `Display`; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Digest> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut digest = [0u8; 32];
        for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *out = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Digest(digest))
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Lower-case hexadecimal of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

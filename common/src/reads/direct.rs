//! DynamoDB's JSON (`{"attr": {"S": "..."}, ...}`) read straight into a record, with
//! no map of attribute values in between.
//!
//! Building a `HashMap` per item (hashing, allocating every name and value) and then
//! decoding the record from it was most of an export's reading CPU. This is a serde
//! `Deserializer` over `serde_json`'s: each attribute's `{"<type>": value}` wrapper is
//! opened on the fly and its value handed to the record's own `Deserialize`, so a row
//! costs one pass over its JSON.
//!
//! It is strict on purpose: it accepts only the shapes our records are written in
//! (`S`, `N`, `BOOL`, `NULL`, `M`, `L`, `SS`) and reads each exactly as `serde_dynamo`
//! does (numbers parsed with the same `str::parse` of the same type, `NULL` as
//! `None`, strings as written). Anything else is an error, and the caller then
//! decodes the page the long way (`split_answer`, `serde_dynamo`), whose
//! answer (a record or its `MalformedItem` error) is the reference. So this path can
//! only be faster, never different.
//!
//! Past 600 lines, and one concern: one serde `Deserializer` over DynamoDB's JSON,
//! whose parts only make sense together.

use std::{marker::PhantomData, str::FromStr};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor,
    value::BorrowedStrDeserializer,
};

/// A name or string of the answer: borrowed from it unless it has escapes.
enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Text<'de>, D::Error> {
        d.deserialize_str(TextSeed)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
        Ok(Text::Owned(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
        Ok(Text::Owned(s))
    }
}

/// The type of an attribute value, as DynamoDB names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    S,
    N,
    Bool,
    Null,
    M,
    L,
    Ss,
}

impl Tag {
    fn parse<E: de::Error>(name: &str) -> Result<Tag, E> {
        Ok(match name {
            "S" => Tag::S,
            "N" => Tag::N,
            "BOOL" => Tag::Bool,
            "NULL" => Tag::Null,
            "M" => Tag::M,
            "L" => Tag::L,
            "SS" => Tag::Ss,
            other => return Err(E::custom(format_args!("attribute type {other:?} is not read directly"))),
        })
    }
}

/// What an item read carries beside its record: its `written_at` (the snapshot cut)
/// and the value of one string attribute the read is sorted by (a merge's key).
#[derive(Debug, Default)]
pub struct Aside {
    pub sort_attr: Option<&'static str>,
    pub written_at: Option<String>,
    pub sort: Option<String>,
}

/// Reads one item (a JSON object of typed attributes) into `T`, keeping aside what
/// [`Aside`] names.
pub struct ItemSeed<'a, T> {
    pub aside: &'a mut Aside,
    pub record: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for ItemSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for ItemSeed<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an item")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(AttrsDeserializer(Attrs {
            inner: map,
            aside: Some(self.aside),
            pending: None,
        }))
    }
}

/// The text of an answer or a line, checked as UTF-8 once: `serde_json` reading from
/// bytes checks every string again as it goes, which was 5% of an export's CPU. Not
/// UTF-8: an error, and the caller's long way gives the reference error.
pub fn utf8(bytes: &[u8]) -> Result<&str, serde_json::Error> {
    std::str::from_utf8(bytes).map_err(de::Error::custom)
}

/// One line of a DynamoDB export (`{"Item": {...}}`, nothing else) read straight into
/// a record: `None` when the item was written after `how.as_of`.
pub fn export_line<T: DeserializeOwned>(text: &[u8], how: &super::Decoding) -> Result<Option<T>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(text)?);
    let read = LineSeed::<T> {
        how,
        record: PhantomData,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(read)
}

struct LineSeed<'a, T> {
    how: &'a super::Decoding,
    record: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for LineSeed<'_, T> {
    type Value = Option<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for LineSeed<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an item line")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        match map.next_key_seed(TextSeed)? {
            Some(key) if key.as_str() == "Item" => {}
            _ => return Err(de::Error::custom("not an item line")),
        }
        let mut aside = Aside::default();
        let record = map.next_value_seed(ItemSeed::<T> {
            aside: &mut aside,
            record: PhantomData,
        })?;
        if map.next_key_seed(TextSeed)?.is_some() {
            return Err(de::Error::custom("more than the item on its line"));
        }
        Ok(super::stamped_by(aside.written_at.as_deref(), &self.how.as_of).then_some(record))
    }
}

/// Where an attribute's value is kept aside when it is read (both, when the read is
/// sorted by `written_at`).
#[derive(Clone, Copy)]
struct Kept {
    written_at: bool,
    sort: bool,
}

/// The attributes of an item or of an `M` value, presented to a record as a map.
struct Attrs<'a, A> {
    inner: A,
    aside: Option<&'a mut Aside>,
    pending: Option<Kept>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Attrs<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(name) = self.inner.next_key_seed(TextSeed)? else {
            return Ok(None);
        };
        if let Some(aside) = &self.aside {
            let kept = Kept {
                written_at: name.as_str() == "written_at",
                sort: aside.sort_attr == Some(name.as_str()),
            };
            self.pending = (kept.written_at || kept.sort).then_some(kept);
        }
        match name {
            Text::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)).map(Some),
            Text::Owned(s) => seed.deserialize(s.into_deserializer()).map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let Some(kept) = self.pending.take() else {
            return self.inner.next_value_seed(Typed(seed));
        };
        // Only a string is kept; the record sees the same string.
        let value: String = self.inner.next_value_seed(Typed(PhantomData::<String>))?;
        let out = seed.deserialize(value.as_str().into_deserializer())?;
        if let Some(aside) = self.aside.as_deref_mut() {
            match (kept.written_at, kept.sort) {
                (true, true) => (aside.written_at, aside.sort) = (Some(value.clone()), Some(value)),
                (true, false) => aside.written_at = Some(value),
                (false, _) => aside.sort = Some(value),
            }
        }
        Ok(out)
    }
}

/// A map of attributes as a deserializer: what a record's `Deserialize` is given.
struct AttrsDeserializer<'a, A>(Attrs<'a, A>);

impl<'de, A: MapAccess<'de>> Deserializer<'de> for AttrsDeserializer<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Opens one `{"<type>": value}` and hands the value to `S`.
struct Typed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Typed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Typed<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an attribute value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<S::Value, A::Error> {
        let tag = match map.next_key_seed(TextSeed)? {
            Some(name) => Tag::parse(name.as_str())?,
            None => return Err(de::Error::custom("an attribute value without a type")),
        };
        let value = map.next_value_seed(Tagged { tag, seed: self.0 })?;
        if map.next_key_seed(TextSeed)?.is_some() {
            return Err(de::Error::custom("an attribute value with two types"));
        }
        Ok(value)
    }
}

struct Tagged<S> {
    tag: Tag,
    seed: S,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Tagged<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Value { tag: self.tag, de: d })
    }
}

/// One attribute's value (inside its type wrapper), read as the record asks, the
/// way `serde_dynamo`'s `Deserializer` reads the same value.
struct Value<D> {
    tag: Tag,
    de: D,
}

impl<D> Value<D> {
    fn expected<E: de::Error>(&self, what: &str) -> E {
        E::custom(format_args!("expected {what}, found a {:?} value", self.tag))
    }
}

/// Numbers of one Rust type, parsed from `N`'s text with that type's `FromStr`.
trait Number: FromStr {
    fn visit<'de, V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E>;
}

macro_rules! numbers {
    ($($ty:ty => $visit:ident;)+) => {
        $(impl Number for $ty {
            fn visit<'de, V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E> {
                visitor.$visit(self)
            }
        })+
    };
}

numbers! {
    i8 => visit_i8;
    i16 => visit_i16;
    i32 => visit_i32;
    i64 => visit_i64;
    u8 => visit_u8;
    u16 => visit_u16;
    u32 => visit_u32;
    u64 => visit_u64;
    f32 => visit_f32;
    f64 => visit_f64;
}

impl<'de, D: Deserializer<'de>> Value<D> {
    /// An `N` read as a `T`, as `serde_dynamo` reads it (`str::parse::<T>`).
    fn number<T: Number, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::N => self.de.deserialize_str(ParseNumber::<T, V>(visitor, PhantomData)),
            _ => Err(self.expected("a number")),
        }
    }
}

/// The `Deserializer` methods of each number type.
macro_rules! number_methods {
    ($($deserialize:ident => $ty:ty;)+) => {
        $(fn $deserialize<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.number::<$ty, V>(visitor)
        })+
    };
}

struct ParseNumber<T, V>(V, PhantomData<T>);

impl<'de, T: Number, V: Visitor<'de>> Visitor<'de> for ParseNumber<T, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number's text")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        let n: T = s
            .parse()
            .map_err(|_| E::custom(format_args!("{s:?} is not a number of the field's type")))?;
        n.visit(self.0)
    }
}

/// `N` read as whatever fits: `i64`, else `u64`, else `f64` (as `serde_dynamo`).
struct AnyNumber<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for AnyNumber<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number's text")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        if let Ok(i) = s.parse::<i64>() {
            self.0.visit_i64(i)
        } else if let Ok(u) = s.parse::<u64>() {
            self.0.visit_u64(u)
        } else if let Ok(f) = s.parse::<f64>() {
            self.0.visit_f64(f)
        } else {
            Err(E::custom(format_args!("{s:?} is not a number")))
        }
    }
}

/// `NULL`'s flag: only `true` is a null.
struct NullFlag<V>(V, bool);

impl<'de, V: Visitor<'de>> Visitor<'de> for NullFlag<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("true")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<V::Value, E> {
        match (b, self.1) {
            (true, true) => self.0.visit_none(),
            (true, false) => self.0.visit_unit(),
            (false, _) => Err(E::custom("NULL: false")),
        }
    }
}

/// An `M`'s attributes handed to the record's visitor.
struct AttrsOf<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for AttrsOf<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of attributes")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Attrs {
            inner: map,
            aside: None,
            pending: None,
        })
    }
}

/// An `L`'s elements (each a typed value) handed to the record's visitor.
struct ListOf<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for ListOf<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of attribute values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(List(seq))
    }
}

struct List<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for List<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Typed(seed))
    }
}

/// A string read as an enum's variant name.
struct VariantOf<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for VariantOf<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a variant name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        self.0.visit_enum(s.into_deserializer())
    }
}

/// A value skipped, checked as `serde_dynamo` checks a value it skips (it reads it
/// as whatever it is): of its type's JSON shape, an `N` a number, a `NULL` true.
struct Skip(Tag);

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a {:?} value", self.0)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        match self.0 {
            Tag::S => Ok(()),
            Tag::N if s.parse::<i64>().is_ok() || s.parse::<u64>().is_ok() || s.parse::<f64>().is_ok() => Ok(()),
            _ => Err(E::custom("unexpected string")),
        }
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        match self.0 {
            Tag::Bool => Ok(()),
            Tag::Null if b => Ok(()),
            _ => Err(E::custom("unexpected boolean")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.0 != Tag::M {
            return Err(de::Error::custom("unexpected map"));
        }
        while map.next_key_seed(TextSeed)?.is_some() {
            map.next_value_seed(Typed(PhantomData::<IgnoredAny>))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.0 {
            Tag::L => while seq.next_element_seed(Typed(PhantomData::<IgnoredAny>))?.is_some() {},
            Tag::Ss => while seq.next_element_seed(TextSeed)?.is_some() {},
            _ => return Err(de::Error::custom("unexpected list")),
        }
        Ok(())
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Value<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::S => self.de.deserialize_string(visitor),
            Tag::N => self.de.deserialize_str(AnyNumber(visitor)),
            Tag::Bool => self.de.deserialize_bool(visitor),
            Tag::Null => self.de.deserialize_bool(NullFlag(visitor, false)),
            Tag::M => self.de.deserialize_map(AttrsOf(visitor)),
            Tag::L => self.de.deserialize_seq(ListOf(visitor)),
            Tag::Ss => self.de.deserialize_seq(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::Bool => self.de.deserialize_bool(visitor),
            _ => Err(self.expected("a boolean")),
        }
    }

    number_methods! {
        deserialize_i8 => i8;
        deserialize_i16 => i16;
        deserialize_i32 => i32;
        deserialize_i64 => i64;
        deserialize_u8 => u8;
        deserialize_u16 => u16;
        deserialize_u32 => u32;
        deserialize_u64 => u64;
        deserialize_f32 => f32;
        deserialize_f64 => f64;
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::S => self.de.deserialize_string(visitor),
            _ => Err(self.expected("a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::Null => self.de.deserialize_bool(NullFlag(visitor, true)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::Null => self.de.deserialize_bool(NullFlag(visitor, false)),
            _ => Err(self.expected("NULL")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::L => self.de.deserialize_seq(ListOf(visitor)),
            Tag::Ss => self.de.deserialize_seq(visitor),
            _ => Err(self.expected("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::M => self.de.deserialize_map(AttrsOf(visitor)),
            _ => Err(self.expected("a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        match self.tag {
            Tag::S => self.de.deserialize_str(VariantOf(visitor)),
            _ => Err(self.expected("a variant name")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let tag = self.tag;
        match tag {
            Tag::S | Tag::N => self.de.deserialize_str(Skip(tag))?,
            Tag::Bool | Tag::Null => self.de.deserialize_bool(Skip(tag))?,
            Tag::M => self.de.deserialize_map(Skip(tag))?,
            Tag::L | Tag::Ss => self.de.deserialize_seq(Skip(tag))?,
        }
        visitor.visit_unit()
    }

    fn deserialize_char<V: Visitor<'de>>(self, _: V) -> Result<V::Value, D::Error> {
        Err(self.expected("a char (not read directly)"))
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value, D::Error> {
        Err(self.expected("bytes (not read directly)"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value, D::Error> {
        Err(self.expected("bytes (not read directly)"))
    }
}

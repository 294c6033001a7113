//! Reading signature fields out of a JSON body, for Linear and Mailgun.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A value that must be written as a JSON object.
///
/// A derived `Deserialize` also accepts an array with the fields in order, which no provider
/// sends, so this wrapper rejects anything but `{...}`. A repeated field still fails, as the
/// derived implementation reports it.
pub(super) struct Object<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Pair {
        a: u8,
        b: Option<u8>,
    }

    fn parse(text: &str) -> Option<(u8, Option<u8>)> {
        let Object(pair) = serde_json::from_str::<Object<Pair>>(text).ok()?;
        Some((pair.a, pair.b))
    }

    #[test]
    fn reads_object_fields() {
        assert_eq!(parse(r#"{"b":2,"x":[1],"a":1}"#), Some((1, Some(2))));
        assert_eq!(parse(r#"{"a":1}"#), Some((1, None)));
    }

    #[test]
    fn rejects_array_and_scalars() {
        assert_eq!(parse("[1,2]"), None);
        assert_eq!(parse("1"), None);
        assert_eq!(parse("null"), None);
    }

    #[test]
    fn rejects_repeated_field() {
        assert_eq!(parse(r#"{"a":1,"a":1}"#), None);
    }
}

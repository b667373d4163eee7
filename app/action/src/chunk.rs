//! [`Chunk`]: the keys held during one 33 ms chunk.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::keys::Key;

/// Most keys in one chunk.
pub const MAX_KEYS_PER_CHUNK: usize = 4;

/// Why a set of keys is not a valid [`Chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// More than [`MAX_KEYS_PER_CHUNK`] keys.
    #[error("a chunk holds at most {MAX_KEYS_PER_CHUNK} keys, got {count}")]
    TooManyKeys {
        /// How many keys were given.
        count: usize,
    },
    /// The same key twice.
    #[error("key {0} appears twice in one chunk (expected distinct keys)")]
    DuplicateKey(Key),
}

/// 0 to 4 distinct keys held during one chunk, in the order written.
///
/// A fixed array plus a length, no heap. Unused slots always hold the same
/// filler key, so the derived equality and hash compare the written keys
/// (order included) and nothing else.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    keys: [Key; MAX_KEYS_PER_CHUNK],
    len: u8,
}

/// Value of the unused slots.
const FILLER: Key = Key::A;

impl Chunk {
    /// The chunk with no key held.
    pub const EMPTY: Chunk = Chunk {
        keys: [FILLER; MAX_KEYS_PER_CHUNK],
        len: 0,
    };

    /// A chunk holding `keys`, in that order.
    ///
    /// # Errors
    /// More than four keys, or a key twice.
    pub fn new(keys: &[Key]) -> Result<Chunk, ChunkError> {
        if keys.len() > MAX_KEYS_PER_CHUNK {
            return Err(ChunkError::TooManyKeys { count: keys.len() });
        }
        let mut chunk = Chunk::EMPTY;
        for &key in keys {
            chunk.push(key)?;
        }
        Ok(chunk)
    }

    /// Appends a key.
    ///
    /// # Errors
    /// The chunk is full, or already holds `key`; the chunk is unchanged.
    pub fn push(&mut self, key: Key) -> Result<(), ChunkError> {
        if self.contains(key) {
            return Err(ChunkError::DuplicateKey(key));
        }
        let len = self.len();
        match self.keys.get_mut(len) {
            Some(slot) => {
                *slot = key;
                self.len += 1;
                Ok(())
            }
            None => Err(ChunkError::TooManyKeys { count: len + 1 }),
        }
    }

    /// The keys, in the order written.
    #[must_use]
    #[inline]
    pub fn keys(&self) -> &[Key] {
        self.keys.get(..self.len()).unwrap_or(&[])
    }

    /// Iterates over the keys, in the order written.
    pub fn iter(&self) -> std::iter::Copied<std::slice::Iter<'_, Key>> {
        self.keys().iter().copied()
    }

    /// True when the chunk holds `key`.
    #[must_use]
    #[inline]
    pub fn contains(&self, key: Key) -> bool {
        self.keys().contains(&key)
    }

    /// Number of keys held.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when no key is held.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the chunk holds [`MAX_KEYS_PER_CHUNK`] keys.
    #[must_use]
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() == MAX_KEYS_PER_CHUNK
    }

    /// The keys as a bit mask (bit [`Key::index`]).
    #[inline]
    pub(crate) fn mask(&self) -> u128 {
        self.iter().fold(0, |m, k| m | k.bit())
    }
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk::EMPTY
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

impl<'a> IntoIterator for &'a Chunk {
    type Item = Key;
    type IntoIter = std::iter::Copied<std::slice::Iter<'a, Key>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl TryFrom<&[Key]> for Chunk {
    type Error = ChunkError;

    fn try_from(keys: &[Key]) -> Result<Chunk, ChunkError> {
        Chunk::new(keys)
    }
}

impl Serialize for Chunk {
    /// A sequence of keys, e.g. `[Shift, W]`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.keys())
    }
}

impl<'de> Deserialize<'de> for Chunk {
    /// A sequence of at most four distinct keys; anything else is an error.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChunkVisitor;

        impl<'de> Visitor<'de> for ChunkVisitor {
            type Value = Chunk;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of at most 4 distinct keys")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Chunk, A::Error> {
                let mut chunk = Chunk::EMPTY;
                while let Some(key) = seq.next_element::<Key>()? {
                    chunk.push(key).map_err(serde::de::Error::custom)?;
                }
                Ok(chunk)
            }
        }

        deserializer.deserialize_seq(ChunkVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_validates() {
        let c = Chunk::new(&[Key::Shift, Key::W]).unwrap();
        assert_eq!(c.keys(), [Key::Shift, Key::W]);
        assert_eq!(c.len(), 2);
        assert!(c.contains(Key::W) && !c.contains(Key::A));
        assert_eq!(
            Chunk::new(&[Key::W, Key::W]),
            Err(ChunkError::DuplicateKey(Key::W))
        );
        assert_eq!(
            Chunk::new(&[Key::A, Key::B, Key::C, Key::D, Key::E]),
            Err(ChunkError::TooManyKeys { count: 5 })
        );
        assert!(
            Chunk::new(&[Key::A, Key::B, Key::C, Key::D])
                .unwrap()
                .is_full()
        );
        assert!(Chunk::new(&[]).unwrap().is_empty());
    }

    #[test]
    fn equality_ignores_unused_slots_and_respects_order() {
        let mut a = Chunk::new(&[Key::W, Key::Z]).unwrap();
        assert_eq!(a.push(Key::Z), Err(ChunkError::DuplicateKey(Key::Z)));
        assert_eq!(a, Chunk::new(&[Key::W, Key::Z]).unwrap());
        assert_ne!(a, Chunk::new(&[Key::Z, Key::W]).unwrap());
        // A chunk holding the filler key differs from the empty chunk.
        assert_ne!(Chunk::new(&[Key::A]).unwrap(), Chunk::EMPTY);
        assert_eq!(Chunk::default(), Chunk::EMPTY);
    }

    #[test]
    fn serde_validates() {
        let c = Chunk::new(&[Key::Shift, Key::W]).unwrap();
        let text = ron::to_string(&c).unwrap();
        assert_eq!(text, "[Shift,W]");
        assert_eq!(ron::from_str::<Chunk>(&text).unwrap(), c);
        assert!(ron::from_str::<Chunk>("[W,W]").is_err());
        assert!(ron::from_str::<Chunk>("[A,B,C,D,E]").is_err());
    }
}

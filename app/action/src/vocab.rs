//! The model's key names, as data: [`KeyVocabulary`] maps names ↔ [`Key`].
//!
//! The default table (SPEC.md section 3) is `data/default_keys.ron`, embedded
//! in the binary. A model manifest can bring its own table in the same format:
//!
//! ```ron
//! (
//!     keys: {
//!         "W": W,
//!         "Shift": Shift,
//!         "LB": MouseLeft,
//!     },
//! )
//! ```
//!
//! Names are looked up through a byte trie with a dense transition table, so
//! the parser can follow a name byte by byte as it streams in and fail at the
//! first byte that no name can continue with.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use crate::keys::{KEY_COUNT, Key};

/// The embedded default table (SPEC.md section 3).
pub const DEFAULT_KEYS_RON: &str = include_str!("../data/default_keys.ron");

/// Longest key name accepted, in bytes (keeps trie node ids in `u16`).
pub const MAX_NAME_BYTES: usize = 64;

/// Why a key vocabulary was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VocabularyError {
    /// The text is not valid RON for a vocabulary.
    #[error(
        "invalid key vocabulary RON: {message} (expected `(keys: {{\"NAME\": Key, ...}})`, \
         with Key a variant such as W, Shift, MouseLeft)"
    )]
    Syntax {
        /// The RON parser's message, with its position.
        message: String,
    },
    /// The vocabulary has no entries.
    #[error("the key vocabulary has no keys (expected at least one `\"NAME\": Key` entry)")]
    Empty,
    /// A name is the empty string.
    #[error("key {key} has an empty name (expected a non-empty name)")]
    EmptyName {
        /// The key the empty name was given to.
        key: Key,
    },
    /// A name contains a character that would make the action text ambiguous.
    #[error(
        "key name {name:?} contains {found:?} (names cannot contain whitespace, control \
         characters, `;`, `<` or `|`)"
    )]
    InvalidName {
        /// The offending name.
        name: String,
        /// The first forbidden character in it.
        found: char,
    },
    /// A name is longer than [`MAX_NAME_BYTES`].
    #[error("key name {name:?} is longer than {max} bytes")]
    NameTooLong {
        /// The offending name.
        name: String,
        /// The limit, [`MAX_NAME_BYTES`].
        max: usize,
    },
    /// The same name appears twice.
    #[error("key name {name:?} is listed twice (expected each name once)")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// The same key is given two names.
    #[error("key {key} is named twice, {first:?} and {second:?} (expected one name per key)")]
    DuplicateKey {
        /// The key.
        key: Key,
        /// Its first name.
        first: String,
        /// Its second name.
        second: String,
    },
}

/// Trie node id; the root is 0, and 0 in the transition table means "none".
pub(crate) type Node = u16;

/// Byte trie of the names with a dense `node × byte class` transition table.
#[derive(Debug)]
pub(crate) struct Trie {
    /// Byte → class (1..); 0 for bytes that occur in no name.
    class_of: [u8; 256],
    /// Row length of `next` (number of classes + 1).
    stride: usize,
    /// `next[node * stride + class]`: child node, or 0.
    next: Box<[Node]>,
    /// Key whose name ends at the node.
    key: Box<[Option<Key>]>,
    /// Keys whose names pass through the node (bit [`Key::index`]).
    mask: Box<[u128]>,
    /// Parent node and the byte leading here (root: itself).
    parent: Box<[(Node, u8)]>,
}

impl Trie {
    /// The root node (empty prefix).
    pub(crate) const ROOT: Node = 0;

    fn build(names: &[(Box<str>, Key)]) -> Trie {
        // Sparse build first, then compress into the dense table.
        let mut children: Vec<Vec<(u8, Node)>> = vec![Vec::new()];
        let mut key: Vec<Option<Key>> = vec![None];
        let mut mask: Vec<u128> = vec![0];
        let mut parent: Vec<(Node, u8)> = vec![(0, 0)];
        let mut used = [false; 256];
        for (name, k) in names {
            let mut node: Node = 0;
            mask[0] |= k.bit();
            for &b in name.as_bytes() {
                used[usize::from(b)] = true;
                let existing = children[usize::from(node)]
                    .iter()
                    .find(|(byte, _)| *byte == b)
                    .map(|&(_, child)| child);
                node = match existing {
                    Some(child) => child,
                    None => {
                        // Bounded by validation: KEY_COUNT names of at most
                        // MAX_NAME_BYTES bytes fit in u16 ids.
                        let child = Node::try_from(children.len()).unwrap_or(Node::MAX);
                        children.push(Vec::new());
                        key.push(None);
                        mask.push(0);
                        parent.push((node, b));
                        children[usize::from(node)].push((b, child));
                        child
                    }
                };
                mask[usize::from(node)] |= k.bit();
            }
            key[usize::from(node)] = Some(*k);
        }
        let mut class_of = [0u8; 256];
        let mut classes = 0u8;
        for (b, _) in used.iter().enumerate().filter(|(_, u)| **u) {
            classes += 1;
            class_of[b] = classes;
        }
        let stride = usize::from(classes) + 1;
        let mut next = vec![0 as Node; children.len() * stride].into_boxed_slice();
        for (node, edges) in children.iter().enumerate() {
            for &(b, child) in edges {
                next[node * stride + usize::from(class_of[usize::from(b)])] = child;
            }
        }
        Trie {
            class_of,
            stride,
            next,
            key: key.into_boxed_slice(),
            mask: mask.into_boxed_slice(),
            parent: parent.into_boxed_slice(),
        }
    }

    /// The child of `node` along byte `b`.
    #[inline]
    pub(crate) fn step(&self, node: Node, b: u8) -> Option<Node> {
        let class = self.class_of[usize::from(b)];
        if class == 0 {
            return None;
        }
        let child = self
            .next
            .get(usize::from(node) * self.stride + usize::from(class))
            .copied()
            .unwrap_or(0);
        (child != 0).then_some(child)
    }

    /// Follows all bytes of `s` from `node`.
    #[inline]
    pub(crate) fn walk(&self, mut node: Node, s: &str) -> Option<Node> {
        for &b in s.as_bytes() {
            node = self.step(node, b)?;
        }
        Some(node)
    }

    /// The key whose name ends at `node`.
    #[inline]
    pub(crate) fn key(&self, node: Node) -> Option<Key> {
        self.key.get(usize::from(node)).copied().flatten()
    }

    /// True when some name through `node` belongs to a key outside `taken`
    /// (a bit mask of keys already in the group): the prefix can still be
    /// completed into an acceptable key.
    #[inline]
    pub(crate) fn viable(&self, node: Node, taken: u128) -> bool {
        self.mask
            .get(usize::from(node))
            .is_some_and(|m| m & !taken != 0)
    }

    /// True when the name of `key` passes through `node`.
    #[inline]
    pub(crate) fn key_in_subtree(&self, node: Node, key: Key) -> bool {
        self.mask
            .get(usize::from(node))
            .is_some_and(|m| m & key.bit() != 0)
    }

    /// The bytes of the prefix that leads to `node`.
    pub(crate) fn prefix(&self, mut node: Node) -> Vec<u8> {
        let mut bytes = Vec::new();
        while node != Self::ROOT {
            let Some(&(up, b)) = self.parent.get(usize::from(node)) else {
                break;
            };
            bytes.push(b);
            node = up;
        }
        bytes.reverse();
        bytes
    }

    /// The characters that can follow `node` (whole UTF-8 characters, so a
    /// multi-byte name character is followed through its continuation bytes),
    /// with the node each leads to.
    pub(crate) fn next_chars(&self, node: Node, out: &mut Vec<(char, Node)>) {
        let mut buf = [0u8; 4];
        self.collect_chars(node, &mut buf, 0, out);
    }

    fn collect_chars(
        &self,
        node: Node,
        buf: &mut [u8; 4],
        len: usize,
        out: &mut Vec<(char, Node)>,
    ) {
        for b in 0..=255u8 {
            let Some(child) = self.step(node, b) else {
                continue;
            };
            let Some(slot) = buf.get_mut(len) else {
                continue;
            };
            *slot = b;
            let bytes = &buf[..=len];
            match std::str::from_utf8(bytes) {
                Ok(s) => {
                    if let Some(c) = s.chars().next() {
                        out.push((c, child));
                    }
                }
                // Incomplete character: follow its continuation bytes.
                Err(e) if e.error_len().is_none() && len < 3 => {
                    self.collect_chars(child, buf, len + 1, out);
                }
                Err(_) => {}
            }
        }
    }
}

/// The names a model uses for keys, ↔ [`Key`].
///
/// A cheap handle: the table lives behind an [`Arc`], so cloning (which the
/// parser and the grammar do) costs one reference-count increment.
#[derive(Clone)]
pub struct KeyVocabulary {
    inner: Arc<Inner>,
}

struct Inner {
    /// Entries in file order.
    entries: Box<[(Box<str>, Key)]>,
    /// `Key::index()` → index into `entries`.
    by_key: [Option<u8>; KEY_COUNT],
    trie: Trie,
}

impl KeyVocabulary {
    /// Builds a vocabulary from `(name, key)` pairs, in the given order.
    ///
    /// # Errors
    /// When there are no entries, a name is empty, too long, or contains
    /// whitespace, a control character, `;`, `<` or `|`, or when a name or a
    /// key appears twice.
    pub fn new<I, S>(entries: I) -> Result<KeyVocabulary, VocabularyError>
    where
        I: IntoIterator<Item = (S, Key)>,
        S: Into<String>,
    {
        let mut list: Vec<(Box<str>, Key)> = Vec::new();
        let mut by_key: [Option<u8>; KEY_COUNT] = [None; KEY_COUNT];
        for (name, key) in entries {
            let name: String = name.into();
            validate_name(&name, key)?;
            if let Some(first) = by_key[key.index()] {
                let first = list.get(usize::from(first)).map(|(n, _)| n.to_string());
                return Err(VocabularyError::DuplicateKey {
                    key,
                    first: first.unwrap_or_default(),
                    second: name,
                });
            }
            if list.iter().any(|(n, _)| **n == *name) {
                return Err(VocabularyError::DuplicateName { name });
            }
            // At most KEY_COUNT (< 256) entries get here: each key once.
            by_key[key.index()] = u8::try_from(list.len()).ok();
            list.push((name.into_boxed_str(), key));
        }
        if list.is_empty() {
            return Err(VocabularyError::Empty);
        }
        let trie = Trie::build(&list);
        Ok(KeyVocabulary {
            inner: Arc::new(Inner {
                entries: list.into_boxed_slice(),
                by_key,
                trie,
            }),
        })
    }

    /// Parses a vocabulary from RON text (the format of
    /// `data/default_keys.ron`), keeping the order of the entries.
    ///
    /// # Errors
    /// [`VocabularyError::Syntax`] for text that is not such RON, and the
    /// errors of [`KeyVocabulary::new`].
    pub fn from_ron(text: &str) -> Result<KeyVocabulary, VocabularyError> {
        let file: VocabularyFile = ron::from_str(text).map_err(|e| VocabularyError::Syntax {
            message: e.to_string(),
        })?;
        KeyVocabulary::new(file.keys.0)
    }

    /// The vocabulary as RON text that [`KeyVocabulary::from_ron`] reads back.
    #[must_use]
    pub fn to_ron(&self) -> String {
        let mut out = String::from("(\n    keys: {\n");
        for (name, key) in self.entries() {
            out.push_str("        \"");
            for c in name.chars() {
                // Names hold no control characters; only these need escapes.
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push_str("\": ");
            out.push_str(key.as_str());
            out.push_str(",\n");
        }
        out.push_str("    },\n)\n");
        out
    }

    /// The key a name stands for (case sensitive).
    #[must_use]
    #[inline]
    pub fn lookup(&self, name: &str) -> Option<Key> {
        let trie = &self.inner.trie;
        trie.walk(Trie::ROOT, name).and_then(|node| trie.key(node))
    }

    /// The name of a key, if the vocabulary has one.
    #[must_use]
    #[inline]
    pub fn name(&self, key: Key) -> Option<&str> {
        let index = self.inner.by_key[key.index()]?;
        self.inner
            .entries
            .get(usize::from(index))
            .map(|(n, _)| &**n)
    }

    /// True when the vocabulary names `key`.
    #[must_use]
    pub fn contains_key(&self, key: Key) -> bool {
        self.inner.by_key[key.index()].is_some()
    }

    /// The `(name, key)` entries in table order.
    #[must_use]
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            inner: self.inner.entries.iter(),
        }
    }

    /// Same as [`KeyVocabulary::entries`].
    #[must_use]
    pub fn iter(&self) -> Entries<'_> {
        self.entries()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.entries.len()
    }

    /// Always false: a vocabulary has at least one entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.entries.is_empty()
    }

    pub(crate) fn trie(&self) -> &Trie {
        &self.inner.trie
    }
}

fn validate_name(name: &str, key: Key) -> Result<(), VocabularyError> {
    if name.is_empty() {
        return Err(VocabularyError::EmptyName { key });
    }
    if let Some(found) = name
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || matches!(c, ';' | '<' | '|'))
    {
        return Err(VocabularyError::InvalidName {
            name: name.to_owned(),
            found,
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(VocabularyError::NameTooLong {
            name: name.to_owned(),
            max: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

static DEFAULT: LazyLock<KeyVocabulary> = LazyLock::new(|| {
    // The embedded table is a build input, not user input; the test
    // `default_table_is_valid` keeps it loadable.
    match KeyVocabulary::from_ron(DEFAULT_KEYS_RON) {
        Ok(vocab) => vocab,
        Err(e) => panic!("data/default_keys.ron is invalid: {e}"),
    }
});

impl Default for KeyVocabulary {
    /// The embedded SPEC.md section 3 table (`data/default_keys.ron`).
    fn default() -> Self {
        DEFAULT.clone()
    }
}

impl PartialEq for KeyVocabulary {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.entries == other.inner.entries
    }
}

impl Eq for KeyVocabulary {}

impl fmt::Debug for KeyVocabulary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

/// Iterator over the `(name, key)` entries of a [`KeyVocabulary`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    inner: std::slice::Iter<'a, (Box<str>, Key)>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, Key);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(n, k)| (&**n, *k))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Entries<'_> {}

impl<'a> IntoIterator for &'a KeyVocabulary {
    type Item = (&'a str, Key);
    type IntoIter = Entries<'a>;

    fn into_iter(self) -> Entries<'a> {
        self.entries()
    }
}

/// The RON file: `(keys: { "NAME": Key, ... })`.
#[derive(Deserialize)]
#[serde(rename = "KeyVocabulary", deny_unknown_fields)]
struct VocabularyFile {
    keys: OrderedEntries,
}

/// A RON map read in order, duplicates kept (a `HashMap` would silently keep
/// only the last of two equal names).
struct OrderedEntries(Vec<(String, Key)>);

impl<'de> Deserialize<'de> for OrderedEntries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = OrderedEntries;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from key names to keys")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some((name, key)) = map.next_entry::<String, Key>()? {
                    entries.push((name, key));
                }
                Ok(OrderedEntries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_is_valid() {
        let vocab = KeyVocabulary::from_ron(DEFAULT_KEYS_RON).unwrap();
        assert_eq!(vocab.len(), 66);
        assert_eq!(vocab, KeyVocabulary::default());
    }

    #[test]
    fn default_table_matches_spec() {
        let v = KeyVocabulary::default();
        let cases = [
            ("A", Key::A),
            ("Z", Key::Z),
            ("one", Key::Digit1),
            ("nine", Key::Digit9),
            ("zero", Key::Digit0),
            ("One", Key::F1),
            ("Ten", Key::F10),
            ("Twelve", Key::F12),
            ("Shift", Key::Shift),
            ("Ctrl", Key::Ctrl),
            ("Alt", Key::Alt),
            ("Space", Key::Space),
            ("Tab", Key::Tab),
            ("Esc", Key::Escape),
            ("Caps", Key::CapsLock),
            ("Enter", Key::Enter),
            ("Backspace", Key::Backspace),
            ("Up", Key::Up),
            ("Down", Key::Down),
            ("Left", Key::Left),
            ("Right", Key::Right),
            ("LB", Key::MouseLeft),
            ("RB", Key::MouseRight),
            ("MB", Key::MouseMiddle),
            ("XB1", Key::MouseX1),
            ("XB2", Key::MouseX2),
        ];
        for (name, key) in cases {
            assert_eq!(v.lookup(name), Some(key), "{name}");
            assert_eq!(v.name(key), Some(name), "{key}");
        }
        for missing in [
            "a", "ONE", "F1", "Escape", "Shif", "Shiftt", "", "XB", "XB3",
        ] {
            assert_eq!(v.lookup(missing), None, "{missing}");
        }
        assert_eq!(v.name(Key::Delete), None);
        assert!(!v.contains_key(Key::Super));
    }

    #[test]
    fn every_entry_round_trips() {
        let v = KeyVocabulary::default();
        for (name, key) in &v {
            assert_eq!(v.lookup(name), Some(key));
            assert_eq!(v.name(key), Some(name));
        }
    }

    #[test]
    fn to_ron_round_trips() {
        let v = KeyVocabulary::default();
        let again = KeyVocabulary::from_ron(&v.to_ron()).unwrap();
        assert_eq!(v, again);
        let odd =
            KeyVocabulary::new([("a\"b\\c", Key::A), ("跳", Key::Space), ("é", Key::E)]).unwrap();
        let again = KeyVocabulary::from_ron(&odd.to_ron()).unwrap();
        assert_eq!(odd, again);
        assert_eq!(again.lookup("跳"), Some(Key::Space));
    }

    #[test]
    fn rejects_bad_tables() {
        let err = KeyVocabulary::from_ron(r#"(keys: {"W": W, "W": A})"#).unwrap_err();
        assert_eq!(err, VocabularyError::DuplicateName { name: "W".into() });
        let err = KeyVocabulary::from_ron(r#"(keys: {"W": W, "Fwd": W})"#).unwrap_err();
        assert_eq!(
            err,
            VocabularyError::DuplicateKey {
                key: Key::W,
                first: "W".into(),
                second: "Fwd".into()
            }
        );
        assert!(err.to_string().contains("named twice"), "{err}");
        let err = KeyVocabulary::from_ron(r#"(keys: {"": W})"#).unwrap_err();
        assert_eq!(err, VocabularyError::EmptyName { key: Key::W });
        for (bad, c) in [
            ("a b", ' '),
            ("a;b", ';'),
            ("<W>", '<'),
            ("a|b", '|'),
            ("a\tb", '\t'),
        ] {
            let err = KeyVocabulary::new([(bad, Key::W)]).unwrap_err();
            assert_eq!(
                err,
                VocabularyError::InvalidName {
                    name: bad.into(),
                    found: c
                }
            );
        }
        let err = KeyVocabulary::from_ron("(keys: {})").unwrap_err();
        assert_eq!(err, VocabularyError::Empty);
        let err = KeyVocabulary::from_ron(r#"(keys: {"W": Nope})"#).unwrap_err();
        assert!(matches!(err, VocabularyError::Syntax { .. }), "{err:?}");
        let err = KeyVocabulary::from_ron(r#"(keys: {"W": W}, extra: 1)"#).unwrap_err();
        assert!(matches!(err, VocabularyError::Syntax { .. }), "{err:?}");
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            KeyVocabulary::new([(long, Key::W)]),
            Err(VocabularyError::NameTooLong { .. })
        ));
    }

    #[test]
    fn named_struct_form_is_accepted() {
        let v = KeyVocabulary::from_ron(r#"KeyVocabulary(keys: {"Fwd": W})"#).unwrap();
        assert_eq!(v.lookup("Fwd"), Some(Key::W));
    }

    #[test]
    fn trie_viability_and_prefixes() {
        let v = KeyVocabulary::default();
        let t = v.trie();
        let sh = t.walk(Trie::ROOT, "Sh").unwrap();
        assert!(t.viable(sh, 0));
        assert!(!t.viable(sh, Key::Shift.bit()));
        assert_eq!(t.prefix(sh), b"Sh");
        assert_eq!(t.walk(Trie::ROOT, "Shx"), None);
        let mut next = Vec::new();
        t.next_chars(t.walk(Trie::ROOT, "XB").unwrap(), &mut next);
        let chars: Vec<char> = next.iter().map(|(c, _)| *c).collect();
        assert_eq!(chars, ['1', '2']);
        let cjk = KeyVocabulary::new([("跳", Key::Space), ("跑", Key::W)]).unwrap();
        next.clear();
        cjk.trie().next_chars(Trie::ROOT, &mut next);
        let chars: Vec<char> = next.iter().map(|(c, _)| *c).collect();
        assert_eq!(chars, ['跑', '跳']);
    }
}

//! Safety rules that do not depend on timing: the deny-list of key
//! combinations and the names operators use for keys in the configuration.

use lumine_action::{Chunk, Key};

/// A key combination that is never held at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedCombination {
    /// As configured, e.g. `Alt+F4`.
    pub name: String,
    /// Its keys, in the order written (modifiers first by convention).
    pub keys: Vec<Key>,
}

/// What the deny-list removed from one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The combination that would have been held.
    pub combination: String,
    /// The key dropped to break it.
    pub dropped: Key,
}

/// A configured key name that names no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "deny_list entry {entry:?}: unknown key {key:?} (use names like Alt, Ctrl, Shift, Super, Tab, F4, Delete)"
)]
pub struct DenyListError {
    /// The whole entry.
    pub entry: String,
    /// The part that is not a key.
    pub key: String,
}

/// Key combinations the executor never injects (configuration `deny_list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DenyList {
    combos: Vec<DeniedCombination>,
}

impl DenyList {
    /// An empty list.
    #[must_use]
    pub fn none() -> DenyList {
        DenyList::default()
    }

    /// Parses entries like `"Alt+F4"`, `"Super"`, `"Ctrl+Alt+Delete"`.
    ///
    /// # Errors
    /// An entry names a key that does not exist.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<DenyList, DenyListError> {
        let mut combos = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.as_ref();
            let mut keys = Vec::new();
            for part in entry.split('+').map(str::trim) {
                let key = key_from_name(part).ok_or_else(|| DenyListError {
                    entry: entry.to_owned(),
                    key: part.to_owned(),
                })?;
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            combos.push(DeniedCombination {
                name: entry.to_owned(),
                keys,
            });
        }
        Ok(DenyList { combos })
    }

    /// The combinations.
    #[must_use]
    pub fn combinations(&self) -> &[DeniedCombination] {
        &self.combos
    }

    /// Removes keys from `next` so that no denied combination is held at
    /// once. For each combination fully present, the last of its keys that
    /// `held` does not already hold is dropped (so `Alt+F4` drops `F4`, and
    /// a held `Alt` stays held); the denials are returned.
    #[must_use]
    pub fn filter(&self, held: &Chunk, next: &Chunk) -> (Chunk, Vec<Denial>) {
        let mut out = *next;
        let mut denials = Vec::new();
        for combo in &self.combos {
            if combo.keys.is_empty() || !combo.keys.iter().all(|&k| out.contains(k)) {
                continue;
            }
            let victim = combo
                .keys
                .iter()
                .rev()
                .copied()
                .find(|&k| !held.contains(k))
                .or_else(|| combo.keys.last().copied());
            if let Some(victim) = victim {
                out = without(&out, victim);
                denials.push(Denial {
                    combination: combo.name.clone(),
                    dropped: victim,
                });
            }
        }
        (out, denials)
    }
}

/// `chunk` without `key`, order kept.
fn without(chunk: &Chunk, key: Key) -> Chunk {
    let mut out = Chunk::EMPTY;
    for k in chunk.iter().filter(|&k| k != key) {
        // A subset of a valid chunk: cannot overflow or repeat.
        let _ = out.push(k);
    }
    out
}

/// The key an operator means by `name` in the configuration: a [`Key`]
/// variant name (`Alt`, `F4`, `Delete`, `PageUp`, `MouseLeft`), case
/// insensitive, or a common alias (`Control`, `Win`, `Meta`, `Cmd`, `Esc`,
/// `Del`, `Return`, `Caps`, `PgUp`, `PgDn`, `Ins`, `Break`, `PrtSc`, a bare
/// digit `0`-`9`).
#[must_use]
pub fn key_from_name(name: &str) -> Option<Key> {
    let name = name.trim();
    if let Some(key) = Key::ALL
        .iter()
        .copied()
        .find(|k| k.as_str().eq_ignore_ascii_case(name))
    {
        return Some(key);
    }
    let alias = match name.to_ascii_lowercase().as_str() {
        "control" | "ctl" => Key::Ctrl,
        "win" | "windows" | "meta" | "cmd" | "command" | "logo" => Key::Super,
        "esc" => Key::Escape,
        "del" => Key::Delete,
        "return" => Key::Enter,
        "caps" => Key::CapsLock,
        "pgup" => Key::PageUp,
        "pgdn" | "pgdown" => Key::PageDown,
        "ins" => Key::Insert,
        "break" => Key::Pause,
        "prtsc" | "print" | "printscreen" => Key::PrintScreen,
        "space" | "spacebar" => Key::Space,
        "0" => Key::Digit0,
        "1" => Key::Digit1,
        "2" => Key::Digit2,
        "3" => Key::Digit3,
        "4" => Key::Digit4,
        "5" => Key::Digit5,
        "6" => Key::Digit6,
        "7" => Key::Digit7,
        "8" => Key::Digit8,
        "9" => Key::Digit9,
        _ => return None,
    };
    Some(alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(keys: &[Key]) -> Chunk {
        Chunk::new(keys).unwrap()
    }

    #[test]
    fn parses_the_default_list() {
        let list = DenyList::parse(&["Alt+F4", "Super", "Ctrl+Alt+Delete", "Alt+Tab"]).unwrap();
        assert_eq!(list.combinations()[0].keys, [Key::Alt, Key::F4]);
        assert_eq!(
            list.combinations()[2].keys,
            [Key::Ctrl, Key::Alt, Key::Delete]
        );
        let err = DenyList::parse(&["Alt+Fnord"]).unwrap_err();
        assert_eq!(err.key, "Fnord");
        assert_eq!(key_from_name("control"), Some(Key::Ctrl));
        assert_eq!(key_from_name("esc"), Some(Key::Escape));
        assert_eq!(key_from_name("pause"), Some(Key::Pause));
    }

    #[test]
    fn drops_the_newly_pressed_key_of_a_combination() {
        let list = DenyList::parse(&["Alt+F4", "Super", "Alt+Tab"]).unwrap();
        // Alt already held, F4 arrives: F4 is dropped, Alt stays.
        let (out, denials) = list.filter(&chunk(&[Key::Alt]), &chunk(&[Key::Alt, Key::F4, Key::W]));
        assert_eq!(out, chunk(&[Key::Alt, Key::W]));
        assert_eq!(denials[0].dropped, Key::F4);
        // Both new: the last key of the combination goes.
        let (out, _) = list.filter(&Chunk::EMPTY, &chunk(&[Key::Tab, Key::Alt]));
        assert_eq!(out, chunk(&[Key::Alt]));
        // A single-key entry.
        let (out, denials) = list.filter(&Chunk::EMPTY, &chunk(&[Key::Super, Key::W]));
        assert_eq!(out, chunk(&[Key::W]));
        assert_eq!(denials[0].combination, "Super");
        // Nothing denied: unchanged.
        let (out, denials) = list.filter(&Chunk::EMPTY, &chunk(&[Key::Alt, Key::W]));
        assert_eq!(out, chunk(&[Key::Alt, Key::W]));
        assert!(denials.is_empty());
    }
}

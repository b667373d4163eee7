//! Physical keys and mouse buttons the executor can press.
//!
//! [`Key`] is the host side of the vocabulary: what the executor presses. The
//! names the model writes live in [`crate::KeyVocabulary`], which is data.

use serde::{Deserialize, Serialize};

/// Declares [`Key`] together with its table of all variants, so the two can
/// never drift apart.
macro_rules! keys {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A physical key or mouse button.
        ///
        /// Serialized (RON, JSON) by its variant name, e.g. `Shift`,
        /// `Digit1`, `MouseLeft`. The order of the variants is the order of
        /// [`Key::ALL`] and of `Ord`.
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[repr(u8)]
        pub enum Key {
            $($(#[$doc])* $name,)*
        }

        impl Key {
            /// Every key, in declaration order (`Key::ALL[k.index()] == k`).
            pub const ALL: &'static [Key] = &[$(Key::$name,)*];

            /// The variant name, as serde writes it (`"Shift"`, `"Digit1"`).
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Key::$name => stringify!($name),)*
                }
            }
        }
    };
}

keys! {
    /// Letter key A.
    A,
    /// Letter key B.
    B,
    /// Letter key C.
    C,
    /// Letter key D.
    D,
    /// Letter key E.
    E,
    /// Letter key F.
    F,
    /// Letter key G.
    G,
    /// Letter key H.
    H,
    /// Letter key I.
    I,
    /// Letter key J.
    J,
    /// Letter key K.
    K,
    /// Letter key L.
    L,
    /// Letter key M.
    M,
    /// Letter key N.
    N,
    /// Letter key O.
    O,
    /// Letter key P.
    P,
    /// Letter key Q.
    Q,
    /// Letter key R.
    R,
    /// Letter key S.
    S,
    /// Letter key T.
    T,
    /// Letter key U.
    U,
    /// Letter key V.
    V,
    /// Letter key W.
    W,
    /// Letter key X.
    X,
    /// Letter key Y.
    Y,
    /// Letter key Z.
    Z,
    /// Digit key 0 (top row).
    Digit0,
    /// Digit key 1 (top row).
    Digit1,
    /// Digit key 2 (top row).
    Digit2,
    /// Digit key 3 (top row).
    Digit3,
    /// Digit key 4 (top row).
    Digit4,
    /// Digit key 5 (top row).
    Digit5,
    /// Digit key 6 (top row).
    Digit6,
    /// Digit key 7 (top row).
    Digit7,
    /// Digit key 8 (top row).
    Digit8,
    /// Digit key 9 (top row).
    Digit9,
    /// Function key F1.
    F1,
    /// Function key F2.
    F2,
    /// Function key F3.
    F3,
    /// Function key F4.
    F4,
    /// Function key F5.
    F5,
    /// Function key F6.
    F6,
    /// Function key F7.
    F7,
    /// Function key F8.
    F8,
    /// Function key F9.
    F9,
    /// Function key F10.
    F10,
    /// Function key F11.
    F11,
    /// Function key F12.
    F12,
    /// Left Shift.
    Shift,
    /// Left Control.
    Ctrl,
    /// Left Alt.
    Alt,
    /// The OS key (Windows / Command / Super).
    Super,
    /// Space bar.
    Space,
    /// Tab.
    Tab,
    /// Escape.
    Escape,
    /// Caps Lock.
    CapsLock,
    /// Enter / Return.
    Enter,
    /// Backspace.
    Backspace,
    /// Delete (forward delete).
    Delete,
    /// Insert.
    Insert,
    /// Home.
    Home,
    /// End.
    End,
    /// Page Up.
    PageUp,
    /// Page Down.
    PageDown,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// Pause / Break.
    Pause,
    /// Print Screen.
    PrintScreen,
    /// `-` key.
    Minus,
    /// `=` key.
    Equal,
    /// `,` key.
    Comma,
    /// `.` key.
    Period,
    /// `/` key.
    Slash,
    /// `;` key.
    Semicolon,
    /// `'` key.
    Quote,
    /// `[` key.
    BracketLeft,
    /// `]` key.
    BracketRight,
    /// `\` key.
    Backslash,
    /// `` ` `` key.
    Backquote,
    /// Left mouse button.
    MouseLeft,
    /// Right mouse button.
    MouseRight,
    /// Middle mouse button (wheel click).
    MouseMiddle,
    /// First extra mouse button (usually "back").
    MouseX1,
    /// Second extra mouse button (usually "forward").
    MouseX2,
}

/// Number of [`Key`] variants.
pub const KEY_COUNT: usize = Key::ALL.len();

// Key sets are `u128` bit masks (trie viability, chunk membership).
const _: () = assert!(KEY_COUNT <= 128);

impl Key {
    /// Dense index of the key, `0..KEY_COUNT`, in declaration order.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// This key as a one-bit mask (bit [`Key::index`]).
    #[must_use]
    pub(crate) const fn bit(self) -> u128 {
        1u128 << (self as u8)
    }

    /// True for mouse buttons (the executor sends them as mouse events, not
    /// key events).
    #[must_use]
    pub const fn is_mouse_button(self) -> bool {
        matches!(
            self,
            Key::MouseLeft | Key::MouseRight | Key::MouseMiddle | Key::MouseX1 | Key::MouseX2
        )
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order() {
        for (i, key) in Key::ALL.iter().enumerate() {
            assert_eq!(key.index(), i);
        }
        assert_eq!(KEY_COUNT, 86);
    }

    #[test]
    fn mouse_buttons() {
        let mouse: Vec<Key> = Key::ALL
            .iter()
            .copied()
            .filter(|k| k.is_mouse_button())
            .collect();
        assert_eq!(
            mouse,
            [
                Key::MouseLeft,
                Key::MouseRight,
                Key::MouseMiddle,
                Key::MouseX1,
                Key::MouseX2
            ]
        );
    }

    #[test]
    fn serde_uses_variant_names() {
        assert_eq!(ron::to_string(&Key::Digit1).unwrap(), "Digit1");
        assert_eq!(ron::from_str::<Key>("MouseX2").unwrap(), Key::MouseX2);
        assert_eq!(Key::PageUp.to_string(), "PageUp");
    }
}

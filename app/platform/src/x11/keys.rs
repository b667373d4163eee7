//! [`Key`] ↔ X11 keysyms and keycodes, and mouse buttons ↔ X11 button numbers.
//!
//! Keycodes are not fixed: they come from the server's keyboard mapping
//! (`GetKeyboardMapping`), so a [`KeyMap`] is built per connection.

use std::collections::HashMap;

use lumine_action::Key;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::os_err;
use crate::PlatformError;

/// The keysym we press for a keyboard key (the unshifted symbol, US layout), or
/// `None` for mouse buttons.
#[must_use]
pub fn keysym(key: Key) -> Option<u32> {
    use Key::*;
    let sym = match key {
        // Letters: the lower-case keysym is the key's first column.
        A | B | C | D | E | F | G | H | I | J | K | L | M | N | O | P | Q | R | S | T | U | V
        | W | X | Y | Z => 0x61 + (key.index() - A.index()) as u32,
        Digit0 | Digit1 | Digit2 | Digit3 | Digit4 | Digit5 | Digit6 | Digit7 | Digit8 | Digit9 => {
            0x30 + (key.index() - Digit0.index()) as u32
        }
        F1 | F2 | F3 | F4 | F5 | F6 | F7 | F8 | F9 | F10 | F11 | F12 => {
            0xffbe + (key.index() - F1.index()) as u32
        }
        Shift => 0xffe1,
        Ctrl => 0xffe3,
        Alt => 0xffe9,
        Super => 0xffeb,
        Space => 0x20,
        Tab => 0xff09,
        Escape => 0xff1b,
        CapsLock => 0xffe5,
        Enter => 0xff0d,
        Backspace => 0xff08,
        Delete => 0xffff,
        Insert => 0xff63,
        Home => 0xff50,
        End => 0xff57,
        PageUp => 0xff55,
        PageDown => 0xff56,
        Up => 0xff52,
        Down => 0xff54,
        Left => 0xff51,
        Right => 0xff53,
        Pause => 0xff13,
        PrintScreen => 0xff61,
        Minus => 0x2d,
        Equal => 0x3d,
        Comma => 0x2c,
        Period => 0x2e,
        Slash => 0x2f,
        Semicolon => 0x3b,
        Quote => 0x27,
        BracketLeft => 0x5b,
        BracketRight => 0x5d,
        Backslash => 0x5c,
        Backquote => 0x60,
        MouseLeft | MouseRight | MouseMiddle | MouseX1 | MouseX2 => return None,
    };
    Some(sym)
}

/// Keysyms that are not what we press but should still be recognised when the
/// operator presses them (right-hand modifiers, upper-case letters, keypad Enter).
fn extra_keysym(sym: u32) -> Option<Key> {
    match sym {
        0x41..=0x5a => Some(Key::ALL[Key::A.index() + (sym - 0x41) as usize]),
        0xffe2 => Some(Key::Shift),        // Shift_R
        0xffe4 => Some(Key::Ctrl),         // Control_R
        0xffea | 0xfe03 => Some(Key::Alt), // Alt_R, ISO_Level3_Shift (AltGr)
        0xffec => Some(Key::Super),        // Super_R
        0xff8d => Some(Key::Enter),        // KP_Enter
        0xfe20 => Some(Key::Tab),          // ISO_Left_Tab (Shift+Tab)
        0xff6b => Some(Key::Pause),        // Break (Ctrl+Pause)
        0xff15 => Some(Key::PrintScreen),  // Sys_Req (Alt+Print)
        _ => None,
    }
}

/// The X11 button number of a mouse-button key, or `None` for keyboard keys.
#[must_use]
pub fn button(key: Key) -> Option<u8> {
    match key {
        Key::MouseLeft => Some(1),
        Key::MouseMiddle => Some(2),
        Key::MouseRight => Some(3),
        Key::MouseX1 => Some(8),
        Key::MouseX2 => Some(9),
        _ => None,
    }
}

/// The mouse-button key for an X11 button number (4..7 are wheel steps, not keys).
#[must_use]
pub fn key_of_button(button: u32) -> Option<Key> {
    match button {
        1 => Some(Key::MouseLeft),
        2 => Some(Key::MouseMiddle),
        3 => Some(Key::MouseRight),
        8 => Some(Key::MouseX1),
        9 => Some(Key::MouseX2),
        _ => None,
    }
}

/// Keycodes of this server's keyboard for every keyboard [`Key`], and back.
#[derive(Debug, Clone)]
pub struct KeyMap {
    to_code: [Option<u8>; Key::ALL.len()],
    from_code: HashMap<u8, Key>,
}

impl KeyMap {
    /// Reads the server's keyboard mapping.
    pub fn load(conn: &RustConnection) -> Result<Self, PlatformError> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?;
        Ok(Self::from_mapping(
            min,
            reply.keysyms_per_keycode,
            &reply.keysyms,
        ))
    }

    /// Builds the map from a `GetKeyboardMapping` reply (pure, for tests).
    #[must_use]
    pub fn from_mapping(min_keycode: u8, per_code: u8, keysyms: &[u32]) -> Self {
        let per_code = usize::from(per_code.max(1));
        let mut by_sym: HashMap<u32, u8> = HashMap::new();
        let mut from_code = HashMap::new();
        let wanted: HashMap<u32, Key> = Key::ALL
            .iter()
            .filter_map(|&k| keysym(k).map(|s| (s, k)))
            .collect();
        for (i, syms) in keysyms.chunks(per_code).enumerate() {
            let Ok(code) = u8::try_from(usize::from(min_keycode) + i) else {
                break;
            };
            for (col, &sym) in syms.iter().enumerate() {
                if sym == 0 {
                    continue;
                }
                // The lowest keycode carrying the symbol in its first two columns
                // (unshifted / shifted) wins: that is the key a US keyboard has.
                if col < 2 {
                    by_sym.entry(sym).or_insert(code);
                }
                if let Some(key) = wanted.get(&sym).copied().or_else(|| extra_keysym(sym)) {
                    from_code.entry(code).or_insert(key);
                }
            }
        }
        let mut to_code = [None; Key::ALL.len()];
        for &k in Key::ALL {
            to_code[k.index()] = keysym(k).and_then(|s| by_sym.get(&s).copied());
        }
        Self { to_code, from_code }
    }

    /// The keycode that types `key`, if the keyboard has it.
    #[must_use]
    pub fn keycode(&self, key: Key) -> Option<u8> {
        self.to_code[key.index()]
    }

    /// The key a keycode stands for, if it is one of ours.
    #[must_use]
    pub fn key(&self, keycode: u8) -> Option<Key> {
        self.from_code.get(&keycode).copied()
    }

    /// Keyboard keys this keyboard cannot type.
    #[must_use]
    pub fn missing(&self) -> Vec<Key> {
        Key::ALL
            .iter()
            .copied()
            .filter(|&k| keysym(k).is_some() && self.keycode(k).is_none())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyboard_key_has_a_keysym_and_buttons_have_numbers() {
        for &k in Key::ALL {
            assert!(
                keysym(k).is_some() != button(k).is_some(),
                "{k} must be exactly one of keyboard key or button"
            );
            if let Some(b) = button(k) {
                assert_eq!(key_of_button(u32::from(b)), Some(k));
            }
        }
        assert_eq!(keysym(Key::W), Some(0x77));
        assert_eq!(keysym(Key::Digit1), Some(0x31));
        assert_eq!(keysym(Key::F12), Some(0xffc9));
    }

    #[test]
    fn map_prefers_the_first_keycode_and_reads_back() {
        // keycode 10: [a, A], 11: [1, exclam], 12: [Shift_R], 13: [a] (duplicate).
        let syms = [0x61, 0x41, 0x31, 0x21, 0xffe2, 0, 0x61, 0];
        let map = KeyMap::from_mapping(10, 2, &syms);
        assert_eq!(map.keycode(Key::A), Some(10));
        assert_eq!(map.keycode(Key::Digit1), Some(11));
        assert_eq!(map.keycode(Key::Shift), None);
        assert_eq!(map.key(12), Some(Key::Shift));
        assert_eq!(map.key(10), Some(Key::A));
        assert!(map.missing().contains(&Key::Shift));
    }
}

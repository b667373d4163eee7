//! UI text through Fluent: every label comes from `locales/<lang>/console.ftl`,
//! embedded in the binary so an installed console needs no data files.
//! English is the reference; the others must have exactly its keys (a test
//! checks it), and a missing one falls back to English rather than showing
//! an identifier.

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// A locale the console ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Lang {
    /// English.
    #[serde(rename = "en")]
    English,
    /// Chinese (simplified).
    #[serde(rename = "zh-CN")]
    ChineseSimplified,
    /// Japanese.
    #[serde(rename = "ja")]
    Japanese,
}

impl Lang {
    /// Every shipped locale, English first.
    pub const ALL: [Lang; 3] = [Lang::English, Lang::ChineseSimplified, Lang::Japanese];

    /// The BCP 47 tag (and folder name under `locales/`).
    #[must_use]
    pub fn tag(self) -> &'static str {
        match self {
            Lang::English => "en",
            Lang::ChineseSimplified => "zh-CN",
            Lang::Japanese => "ja",
        }
    }

    /// The language's own name, for the picker.
    #[must_use]
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::English => "English",
            Lang::ChineseSimplified => "简体中文",
            Lang::Japanese => "日本語",
        }
    }

    /// The Fluent source of this locale.
    #[must_use]
    pub fn source(self) -> &'static str {
        match self {
            Lang::English => include_str!("../../../locales/en/console.ftl"),
            Lang::ChineseSimplified => include_str!("../../../locales/zh-CN/console.ftl"),
            Lang::Japanese => include_str!("../../../locales/ja/console.ftl"),
        }
    }
}

/// Message ids defined in a Fluent source, in file order.
///
/// # Errors
/// The source does not parse (the messages of the error).
pub fn message_ids(source: &str) -> Result<Vec<String>, String> {
    let resource =
        FluentResource::try_new(source.to_owned()).map_err(|(_, errors)| format!("{errors:?}"))?;
    Ok(resource
        .entries()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
            _ => None,
        })
        .collect())
}

/// The translations in use: the chosen locale with English behind it.
pub struct Translator {
    lang: Lang,
    chosen: FluentBundle<FluentResource>,
    english: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator")
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

fn bundle(lang: Lang) -> FluentBundle<FluentResource> {
    let id: LanguageIdentifier = lang.tag().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new(vec![id]);
    // No Unicode isolation marks: labels are plain text in egui.
    bundle.set_use_isolating(false);
    // The sources are compiled in and checked by tests: a parse error would
    // have failed CI, and the parts that did parse are still usable.
    let resource = match FluentResource::try_new(lang.source().to_owned()) {
        Ok(resource) | Err((resource, _)) => resource,
    };
    // A duplicate id keeps the first definition; tests reject duplicates.
    let _ = bundle.add_resource(resource);
    bundle
}

impl Translator {
    /// The translations of `lang`.
    #[must_use]
    pub fn new(lang: Lang) -> Translator {
        Translator {
            lang,
            chosen: bundle(lang),
            english: bundle(Lang::English),
        }
    }

    /// The locale in use.
    #[must_use]
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The text of message `id`.
    #[must_use]
    pub fn tr(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The text of message `id` with named arguments.
    #[must_use]
    pub fn tr_args(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, value.clone());
        }
        self.format(id, Some(&fluent_args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        for bundle in [&self.chosen, &self.english] {
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return bundle
                    .format_pattern(pattern, args, &mut errors)
                    .into_owned();
            }
        }
        id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_locale_has_exactly_the_english_keys() {
        let english = message_ids(Lang::English.source()).expect("English parses");
        let mut sorted = english.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), english.len(), "English defines an id twice");
        for lang in Lang::ALL {
            let ids = message_ids(lang.source()).unwrap_or_else(|e| panic!("{lang:?}: {e}"));
            let mut have = ids.clone();
            have.sort();
            have.dedup();
            assert_eq!(have.len(), ids.len(), "{lang:?} defines an id twice");
            let missing: Vec<_> = sorted.iter().filter(|id| !have.contains(id)).collect();
            let extra: Vec<_> = have.iter().filter(|id| !sorted.contains(id)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{lang:?}: missing {missing:?}, extra {extra:?}"
            );
        }
    }

    #[test]
    fn translations_differ_and_take_arguments() {
        let en = Translator::new(Lang::English);
        let zh = Translator::new(Lang::ChineseSimplified);
        let ja = Translator::new(Lang::Japanese);
        assert_eq!(en.tr("start"), "Start");
        assert_eq!(zh.tr("start"), "开始");
        assert_eq!(ja.tr("start"), "開始");
        let args = [("step", FluentValue::from(12))];
        assert_eq!(en.tr_args("step", &args), "step 12");
        assert_eq!(zh.tr_args("step", &args), "第 12 步");
        // An unknown id shows itself rather than nothing.
        assert_eq!(en.tr("no-such-id"), "no-such-id");
    }
}

//! Language tags as people read them: `fr` → French. Prompts name languages in words because
//! models follow "answer in French" more reliably than "answer in fr".

/// The English name of a BCP 47 tag's primary language, or the tag itself when unknown.
pub fn name(tag: &str) -> &str {
    let primary = tag.split(['-', '_']).next().unwrap_or(tag);
    match primary.to_ascii_lowercase().as_str() {
        "ar" => "Arabic",
        "ca" => "Catalan",
        "cs" => "Czech",
        "da" => "Danish",
        "de" => "German",
        "el" => "Greek",
        "en" => "English",
        "es" => "Spanish",
        "fi" => "Finnish",
        "fr" => "French",
        "he" => "Hebrew",
        "hi" => "Hindi",
        "hu" => "Hungarian",
        "id" => "Indonesian",
        "it" => "Italian",
        "ja" => "Japanese",
        "ko" => "Korean",
        "nl" => "Dutch",
        "no" | "nb" => "Norwegian",
        "pl" => "Polish",
        "pt" => "Portuguese",
        "ro" => "Romanian",
        "ru" => "Russian",
        "sv" => "Swedish",
        "th" => "Thai",
        "tr" => "Turkish",
        "uk" => "Ukrainian",
        "vi" => "Vietnamese",
        "zh" => "Chinese",
        _ => tag,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_primary_language_of_a_tag() {
        assert_eq!(super::name("pt-BR"), "Portuguese");
        assert_eq!(super::name("FR"), "French");
        assert_eq!(super::name("tlh"), "tlh");
    }
}

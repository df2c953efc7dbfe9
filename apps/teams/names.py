"""Team names that look the same are the same name: `fold` is what two names are compared by.

A team menu that lists "bobs" twice (one of them spelt with a Greek omicron) lets data be uploaded
to the wrong team. `fold` reduces a name to what a reader sees: NFKC (full-width and compatibility
forms), invisible format characters (zero-width, bidi controls) dropped, case folded, letters of
other scripts that are drawn like Latin ones mapped to those, whitespace collapsed.

The map is a short, hand-kept list of the look-alikes that matter in a name, rather than Unicode's
full confusables table: the project installs no package for it, and a team name is short and read
by people who know their own teams.
"""
import unicodedata

# Lower-case letters only: `fold` case-folds first, so upper-case look-alikes (Greek Ο, Cyrillic В)
# arrive here as their lower-case forms and are mapped to the Latin letter their capital imitates.
CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "н": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "ӏ": "l", "м": "m", "о": "o", "р": "p", "ԛ": "q", "с": "c", "ѕ": "s", "т": "t", "у": "y", "ԝ": "w",
    "х": "x", "ԁ": "d", "ү": "y",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "h", "ι": "i", "κ": "k", "μ": "m", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "χ": "x", "ζ": "z", "ϲ": "c", "ϳ": "j",
    # Latin letters drawn like others
    "ɡ": "g", "ı": "i", "ȷ": "j", "ɑ": "a",
})


def fold(name: str) -> str:
    """The form two team names are compared in: equal folds look alike in the team menu."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.casefold().translate(CONFUSABLES)
    return " ".join(unicodedata.normalize("NFKC", text).split())

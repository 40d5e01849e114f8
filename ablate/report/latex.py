"""Any text as LaTeX that pdflatex typesets without packages, so a name from a
study file or a plugin cannot break a paper's build.

LaTeX's specials are escaped; characters TeX would join into another one
(`--` into a dash, `<<` into a guillemet under T1) are kept apart; `[` and `*`
cannot be read as an option or a star form after `\\\\` or `\\midrule`; every
character outside ASCII becomes a command that needs no package: an accent
(`é` -> `\\'{e}`; not the ogonek, which needs T1), a letter (`ß` -> `\\ss{}`), a symbol in math mode
(`≈` -> `$\\approx$`), or, where nothing fits, its code point (`[U+4E2D]`).
"""

from __future__ import annotations

import unicodedata

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "[": "{[}",
    "]": "{]}",
    "*": "{*}",
}
# Pairs TeX's fonts turn into one glyph: -- ``  '' ,, !` ?`
_LIGATURES = {("-", "-"), ("`", "`"), ("'", "'"), (",", ","), ("!", "`"), ("?", "`")}
_SYMBOLS = {
    "≈": r"$\approx$",
    "—": "---",
    "–": "--",
    "−": "$-$",
    "×": r"$\times$",
    "±": r"$\pm$",
    "·": r"$\cdot$",
    "•": r"$\bullet$",
    "°": r"$^\circ$",
    "→": r"$\to$",
    "←": r"$\leftarrow$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≠": r"$\neq$",
    "∞": r"$\infty$",
    "…": r"\ldots{}",
    "‘": "`",
    "’": "'",
    "“": "``",
    "”": "''",
    "«": r"\textless{}\textless{}",
    "»": r"\textgreater{}\textgreater{}",
    "¡": r"\textexclamdown{}",
    "¿": r"\textquestiondown{}",
    "ß": r"\ss{}",
    "æ": r"\ae{}",
    "Æ": r"\AE{}",
    "œ": r"\oe{}",
    "Œ": r"\OE{}",
    "ø": r"\o{}",
    "Ø": r"\O{}",
    "ł": r"\l{}",
    "Ł": r"\L{}",
    "ı": r"\i{}",
    "ς": r"$\varsigma$",
    "ϵ": r"$\epsilon$",
    "ε": r"$\varepsilon$",
}
_ACCENTS = {
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0304": "=",
    "\u0306": "u",
    "\u0307": ".",
    "\u0308": '"',
    "\u030a": "r",
    "\u030b": "H",
    "\u030c": "v",
    "\u0323": "d",
    "\u0327": "c",
    "\u0331": "b",
}
_GREEK_LOWER = {"alpha", "beta", "gamma", "delta", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu"}
_GREEK_LOWER |= {"xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"}
_GREEK_UPPER = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_GREEK_AS_LATIN = {
    **{"alpha": "A", "beta": "B", "epsilon": "E", "zeta": "Z", "eta": "H", "iota": "I", "kappa": "K"},
    **{"mu": "M", "nu": "N", "omicron": "O", "rho": "P", "tau": "T", "chi": "X"},
}


def tex(text: object) -> str:
    """``text`` on one line (runs of whitespace become one space) as LaTeX."""
    flat = unicodedata.normalize("NFC", " ".join(str(text).split()))
    out = []
    for i, ch in enumerate(flat):
        out.append(_char(ch))
        if (ch, flat[i + 1 : i + 2]) in _LIGATURES:
            out.append("{}")
    return "".join(out)


def _char(ch: str) -> str:
    if ch in _SPECIAL:
        return _SPECIAL[ch]
    if " " <= ch <= "~":
        return ch
    if ch in _SYMBOLS:
        return _SYMBOLS[ch]
    return _greek(ch) or _accented(ch) or _compatible(ch) or f"{{[}}U+{ord(ch):04X}{{]}}"


def _greek(ch: str) -> str | None:
    words = unicodedata.name(ch, "").split()
    if len(words) != 4 or words[:2] != ["GREEK", "SMALL" if ch.islower() else "CAPITAL"] or words[2] != "LETTER":
        return None
    name = words[3].lower().replace("lamda", "lambda")  # Unicode spells it "lamda"
    if ch.islower():
        return rf"$\{name}$" if name in _GREEK_LOWER else ("o" if name == "omicron" else None)
    capital = name.capitalize()
    if capital in _GREEK_UPPER:
        return rf"$\{capital}$"
    return _GREEK_AS_LATIN.get(name)


def _accented(ch: str) -> str | None:
    """A Latin letter with accents (é, ñ, ç, ő) as accent commands around it."""
    parts = unicodedata.normalize("NFD", ch)
    base, marks = parts[0], parts[1:]
    if not ("a" <= base.lower() <= "z") or not marks or any(m not in _ACCENTS for m in marks):
        return None
    out = {"i": r"\i", "j": r"\j"}.get(base, base) if marks[0] not in ("\u0323", "\u0327", "\u0331") else base
    for mark in marks:
        out = f"\\{_ACCENTS[mark]}{{{out}}}"
    return out


def _compatible(ch: str) -> str | None:
    """A character Unicode equates with simpler ones (ﬁ, ², µ, full-width letters)."""
    plain = unicodedata.normalize("NFKC", ch)
    return None if plain == ch else "".join(_char(c) for c in plain)

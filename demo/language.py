"""Which language a browser gets, and where its words come from.

The words live in ``demo/texts.py`` (English, the reference) and one module per other language
beside it, ``demo/texts_<code>.py`` with the same names: adding a language is adding a file.

Two routes, because Gradio's i18n translates only what the page was built with:

* the page's fixed labels and help texts are ``tr(NAME)`` keys, which the browser looks up in
  :data:`I18N` by its own language (``navigator.language``);
* what a handler writes (the status line, errors, summaries, the handout) is chosen on the
  server from the request's Accept-Language header, which the browser derives from the same
  setting, with :func:`words_for`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import subprocess
from pathlib import Path
from types import ModuleType

import gradio as gr

from demo import texts

ENGLISH = "en"


def _languages() -> dict[str, ModuleType]:
    found = {ENGLISH: texts}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("texts_"):
            found[module.name.removeprefix("texts_")] = importlib.import_module(f"demo.{module.name}")
    return found


#: Language code (ISO 639-1, as the browser's first subtag) → its module of words.
LANGUAGES: dict[str, ModuleType] = _languages()


def sentences(words: ModuleType) -> dict[str, str]:
    """A language module's texts by name, as strings (the handout's words are not)."""
    return {name: value for name, value in vars(words).items() if name.isupper() and isinstance(value, str)}


def fixed(text: str) -> bool:
    """Whether the page may show it as built: no {field} for the server to fill in."""
    return "{" not in text


#: Passed to launch(i18n=...): the browser picks its language, English where it has none.
I18N = gr.I18n(**{code: {name: text for name, text in sentences(words).items() if fixed(text)} for code, words in LANGUAGES.items()})


def tr(name: str) -> gr.i18n.I18nData:
    """A fixed label or help text, in the browser's language (``name`` is a constant of demo.texts)."""
    if name not in I18N.translations[ENGLISH]:
        raise KeyError(f"demo.texts has no fixed text {name!r} (one with {{fields}} is filled in by a handler)")
    return I18N(name)


def language_of(request: gr.Request | None) -> str:
    """The first language in the request's Accept-Language that the page speaks; English otherwise."""
    # A request made in code (tests, gr.Request(session_hash=...)) may carry no headers at all.
    header = (getattr(request, "headers", None) or {}).get("accept-language", "")
    ranked = []
    for order, part in enumerate(header.split(",")):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, order, tag.split("-")[0].strip().lower()))
    return next((code for _, _, code in sorted(ranked) if code in LANGUAGES), ENGLISH)


def words_for(request: gr.Request | None) -> ModuleType:
    """The words a handler answers this request in."""
    return LANGUAGES[language_of(request)]


@functools.lru_cache(maxsize=None)
def font_for(language: str) -> str | None:
    """A font file that covers the language's script (fontconfig's choice), for text drawn into
    pictures; None for English, whose letters Pillow's bundled font has, or when none is installed."""
    if language == ENGLISH:
        return None
    try:
        listed = subprocess.run(["fc-list", f":lang={language}", "file"], capture_output=True, text=True, timeout=10).stdout
        best = subprocess.run(["fc-match", "-f", "%{file}", f":lang={language}"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    covering = sorted(line.strip().rstrip(":") for line in listed.splitlines() if line.strip())
    # fc-match names its nearest font even when none covers the language: trust it only if listed.
    return best if best in covering else (covering[0] if covering else None)

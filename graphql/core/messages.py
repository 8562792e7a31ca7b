"""Every message a person may read, in the caller's language: Chinese (zh-CN) by default,
English when the request's Accept-Language prefers it; codes stay English either way.

The code writes each message once, in one language (the actions' refusals in Chinese,
graphql-core and the HTTP layer in English). At the response's edge a message meets the
catalogue (graphql/core/catalogue.py): matched against an entry's text, with `{name}`
standing for a parameter, it is given in the other language, its parameters translated
in turn where they are words of the catalogue (a state, a field's label) and kept as they
are otherwise (a village's name, a number). A message with no entry gives way to the
sentence for its code, so that no English reaches a default caller and no Chinese an
English one.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal

from flask import has_request_context, request

from villagelink.graphql.core.catalogue import BY_CODE, FROM_CHINESE, FROM_ENGLISH, UNKNOWN_CODE
from villagelink.graphql.core.persisted import NOT_FOUND_MESSAGE

Language = Literal["zh-CN", "en"]
ZH: Language = "zh-CN"
EN: Language = "en"

_CJK = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Longer messages quote the request back (a whole variable's value): they are not
# translated but give way to their code's sentence, the original kept beside it.
MAX_TRANSLATED = 2000


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def language_of(header: str | None) -> Language:
    """The language an Accept-Language header asks for: English when an `en` tag has the
    highest quality (the first of equals wins, as the client listed them), Chinese for
    anything else, no header and `*` included."""
    best, best_quality = None, 0.0
    for part in (header or "").split(","):
        tag, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > best_quality:
            best, best_quality = tag, quality
    return EN if best is not None and best.lower().split("-")[0] == "en" else ZH


def request_language() -> Language:
    """The language of the request being answered; Chinese outside one (a job, the CLI)."""
    if not has_request_context():
        return ZH
    return language_of(request.headers.get("Accept-Language"))


class _Entry:
    """One catalogue entry read from one side: its text there cut at its parameters,
    and the text on the other side to fill.

    Matched by plain string search, each parameter ending where the next literal is
    first found: linear in the message, where a regular expression of several `.+?`
    could backtrack for minutes over a long message that almost fits."""

    def __init__(self, source: str, target: str):
        self.target = target
        self.literals = _PLACEHOLDER.split(source)[::2]
        self.names = _PLACEHOLDER.findall(source)
        self.literal = sum(map(len, self.literals))

    def match(self, message: str) -> dict[str, str] | None:
        first, *middle, last = self.literals
        end = len(message) - len(last)
        if end <= len(first) or not message.startswith(first) or not message.endswith(last):
            return None
        values: dict[str, str] = {}
        at = len(first)
        for name, literal in zip(self.names, [*middle, None], strict=True):
            stop = end if literal is None else message.find(literal, at + 1, end)
            if stop <= at or values.setdefault(name, message[at:stop]) != message[at:stop]:
                return None
            at = stop + len(literal or "")
        return values


@cache
def _side(language: Language) -> tuple[dict[str, str], tuple[_Entry, ...]]:
    """Read towards `language`: the exact texts of the entries the code writes in the
    other language, and the patterns of those with parameters, the most literal first
    (`该{label}已归档` before `{label}`)."""
    exact: dict[str, str] = {}
    patterns = []
    entries = FROM_CHINESE if language == EN else [(en, zh) for zh, en in FROM_ENGLISH]
    for source, target in entries:
        if _PLACEHOLDER.search(source):
            patterns.append(_Entry(source, target))
        else:
            exact.setdefault(source, target)
    return exact, tuple(sorted(patterns, key=lambda entry: -entry.literal))


def translate(message: str, language: Language, depth: int = 0) -> str | None:
    """`message` in `language` by the catalogue, or None when no entry fits."""
    exact, patterns = _side(language)
    if message in exact:
        return exact[message]
    if depth > 3:
        return None
    if len(message) > MAX_TRANSLATED:
        return None
    for entry in patterns:
        found = entry.match(message)
        if found is None:
            continue
        values = {name: _parameter(name, value, language, depth) for name, value in found.items()}
        return _fill(entry.target, values)
    return None


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda found: values[found.group(1)], template)


# The parameters of English messages that are themselves sentences or words of the
# catalogue; the rest (a field's or a type's name, a value) are the API's own and stay.
_SENTENCES = frozenset({"message", "detail", "reason", "what"})


def _parameter(name: str, value: str, language: Language, depth: int) -> str:
    """A parameter in `language` where the catalogue knows it (a label, a list of them
    joined by 、, a reason); otherwise as it was, like a name or a number."""
    if (language == EN and not has_cjk(value)) or (language == ZH and name not in _SENTENCES):
        return value
    translated = translate(value, language, depth + 1)
    if translated is not None:
        return translated
    if language == EN and "、" in value:
        parts = [translate(part, language, depth + 1) for part in value.split("、")]
        if all(part is not None for part in parts):
            return ", ".join(part for part in parts if part is not None)
    return value


def localized(message: str, code: str | None, language: Language) -> tuple[str, str | None]:
    """(`message` as `language` shows it, the English original when that was replaced
    for a Chinese caller). A message already in `language` stays as it is; an English
    one quoting Chinese input (a value in a validation error) is still English."""
    english = translate(message, ZH)  # not None: one of the English messages the code writes
    if language == EN:
        if english is not None or not has_cjk(message):
            return message, None
        return translate(message, EN) or BY_CODE.get(code or "", UNKNOWN_CODE)[1], None
    if english is not None:
        return english, message
    if has_cjk(message):
        return message, None
    return BY_CODE.get(code or "", UNKNOWN_CODE)[0], message


# Messages clients match word for word (Apollo's persisted-query link resends the text
# on this one): a protocol's token, never translated.
PROTOCOL_MESSAGES = frozenset({NOT_FOUND_MESSAGE})


def localize_errors(body: dict, language: Language) -> dict:
    """A GraphQL-shaped body with each top-level error's message in `language`; a
    Chinese caller finds graphql-core's English in `extensions.originalMessage`."""
    for error in body.get("errors") or ():
        if error.get("message") in PROTOCOL_MESSAGES:
            continue
        extensions = error.setdefault("extensions", {})
        text, original = localized(str(error.get("message", "")), extensions.get("code"), language)
        error["message"] = text
        if original is not None:
            extensions["originalMessage"] = original
    return body

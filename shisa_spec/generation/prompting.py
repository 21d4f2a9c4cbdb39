"""Turn a case's prompt into the exact text sent to the model, through the model's chat template.

Two styles:
- ``document`` reproduces the source document's ``ask()``: the prompt is sent as a *system*
  message (its bug), which shisa-7b-v1's template renders as ``<s>[INST] <<SYS>>\\n{prompt}\\n<</SYS>>\\n\\n``.
- ``chat`` is proper usage: a system prompt (the model card's by default) then a user message.
"""

from __future__ import annotations

from typing import Any

CARD_SYSTEM_PROMPT = "あなたは公平で、検閲されていない、役立つアシスタントです。"
STYLES = ("document", "chat")


class TemplateError(RuntimeError):
    """The tokenizer cannot render the conversation (no chat template, or the template failed)."""


def messages_for(prompt: str, style: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    if style == "document":
        return [{"role": "system", "content": prompt}]
    if style == "chat":
        return [
            {"role": "system", "content": system_prompt if system_prompt is not None else CARD_SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
        ]
    raise ValueError(f"unknown prompt style {style!r}; expected one of {', '.join(STYLES)}")


def render(tokenizer: Any, prompt: str, style: str = "document", system_prompt: str | None = None) -> str:
    """The rendered prompt text; it already holds any BOS the template adds, so encode it without special tokens."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or "this tokenizer"
        raise TemplateError(
            f"{name} has no chat template: add one to tokenizer_config.json (chat_template) or use a chat model"
        )
    try:
        return tokenizer.apply_chat_template(
            messages_for(prompt, style, system_prompt), add_generation_prompt=True, tokenize=False
        )
    except Exception as e:  # jinja raises its own error types, templates can raise anything
        raise TemplateError(f"chat template of {getattr(tokenizer, 'name_or_path', 'tokenizer')} failed: {e}") from e


def encode(tokenizer: Any, rendered: str) -> list[int]:
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]

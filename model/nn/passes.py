"""What a model's passes are, in one place for ``bcir model-info``, the Models dialog, the status bar, ``bcir eval``
and the benchmarks: one pass, or a two-pass model's coarse search and fine look (each its own working spacing and
tile, from its own card)."""

from __future__ import annotations

from pathlib import Path

from model.nn.card import ModelCard


def pass_settings(card: ModelCard) -> dict:
    """A pass's working spacing (mm) and tile (px), as its card states them."""
    return {"working_spacing_mm": card.preprocess.working_spacing_mm, "tile": card.tile_size}


def passes(card: ModelCard, fine_card: ModelCard | None = None) -> list[dict]:
    """``[{"pass": "single", ...}]`` for a one-pass model; ``[{"pass": "coarse", ...}, {"pass": "fine", ...}]`` for a
    two-pass one (``fine_card``: its fine part's card)."""
    if fine_card is None:
        return [{"pass": "single", **pass_settings(card)}]
    return [{"pass": "coarse", **pass_settings(card)}, {"pass": "fine", **pass_settings(fine_card)}]


def passes_text(card: ModelCard, fine_card: ModelCard | None = None) -> str:
    """'one pass: 0.4 mm, tile 256', or 'two-pass: coarse 0.4 mm, tile 256; fine 0.1 mm, tile 1024'."""
    def one(settings: dict) -> str:
        return f"{settings['working_spacing_mm']:g} mm, tile {settings['tile']}"

    rows = passes(card, fine_card)
    if len(rows) == 1:
        return f"one pass: {one(rows[0])}"
    return "two-pass: " + "; ".join(f"{row['pass']} {one(row)}" for row in rows)


def model_passes_text(model) -> str:
    """:func:`passes_text` of a :class:`model.nn.weights.LoadedModel`."""
    return passes_text(model.card, model.fine.card if model.fine is not None else None)


def fine_card_beside(weights_path: str | Path, card: ModelCard) -> ModelCard | None:
    """The card of the fine part that ``card`` (the coarse card of ``weights_path``) names, read from beside it; None
    for a one-pass model. ModelFileError (one line) when it cannot be read."""
    from model.nn.weights import fine_weights_path, read_card

    fine = fine_weights_path(weights_path, card)
    return read_card(fine) if fine is not None else None


__all__ = ["fine_card_beside", "model_passes_text", "pass_settings", "passes", "passes_text"]

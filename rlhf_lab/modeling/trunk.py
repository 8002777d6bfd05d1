"""The frozen trunk: every pass is split at the first decoder layer that carries an adapter.

The layers below compute the same hidden states for the policy, the reward model and the reference, so they
run once per batch without grad; only the adapted top layers run per adapter and per PPO minibatch.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Trunk:
    """A batch after the frozen bottom layers: hidden (B, T, H) entering the first layer that has an adapter.

    hidden is None when the model runs unsplit; the top pass then starts from input_ids. Pad positions are
    masked in attention, so rows can be re-padded (stack) without changing any real token's result.
    answer_mask marks the answer's tokens (its EOS included) where the caller knows them: a reward read-out
    that averages over the answer needs it.
    """
    input_ids: torch.Tensor       # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    hidden: torch.Tensor | None   # (B, T, H)
    answer_mask: torch.Tensor | None = None  # (B, T)

    def select(self, rows: torch.Tensor) -> "Trunk":
        return Trunk(self.input_ids[rows], self.attention_mask[rows],
                     None if self.hidden is None else self.hidden[rows],
                     None if self.answer_mask is None else self.answer_mask[rows])

    def unstack(self) -> list["Trunk"]:
        """One unpadded Trunk per row."""
        out = []
        for i in range(self.input_ids.shape[0]):
            keep = self.attention_mask[i].bool()
            out.append(Trunk(self.input_ids[i, keep][None], self.attention_mask[i, keep][None],
                             None if self.hidden is None else self.hidden[i, keep][None],
                             None if self.answer_mask is None else self.answer_mask[i, keep][None]))
        return out

    @staticmethod
    def stack(rows: list["Trunk"], pad_id: int = 0) -> "Trunk":
        """Left-pad single-row trunks to the widest and stack them."""
        width = max(r.input_ids.shape[1] for r in rows)
        ids, masks, hidden, answers = [], [], [], []
        for r in rows:
            pad = width - r.input_ids.shape[1]
            ids.append(nn.functional.pad(r.input_ids, (pad, 0), value=pad_id))
            masks.append(nn.functional.pad(r.attention_mask, (pad, 0), value=0))
            if r.hidden is not None:
                hidden.append(nn.functional.pad(r.hidden, (0, 0, pad, 0)))
            if r.answer_mask is not None:
                answers.append(nn.functional.pad(r.answer_mask, (pad, 0), value=0))
        return Trunk(torch.cat(ids), torch.cat(masks), torch.cat(hidden) if hidden else None,
                     torch.cat(answers) if len(answers) == len(rows) else None)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids from the mask: left-padded rows start at 0 on their first real token. Sampling and every
    scoring pass use this, so a token sees the same position in all of them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@contextlib.contextmanager
def layer_slice(decoder: nn.Module, start: int, stop: int | None, final_norm: bool):
    """The decoder with only layers[start:stop] (and the final norm only if asked) for one call.

    This reuses the model's own forward (masks, rotary embeddings) over a slice of its layers instead of
    re-implementing a decoder layer loop for every architecture.
    """
    layers, norm = decoder.layers, decoder.norm
    decoder.layers = layers[start:stop]
    if not final_norm:
        decoder.norm = nn.Identity()
    try:
        yield decoder
    finally:
        decoder.layers, decoder.norm = layers, norm


def run_bottom(decoder: nn.Module, cut: int, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Trunk:
    """The batch after layers[:cut] (no grad); cut 0 means unsplit (the trunk carries only the ids)."""
    if not cut:
        return Trunk(input_ids, attention_mask, None)
    with torch.no_grad(), layer_slice(decoder, 0, cut, final_norm=False) as bottom:
        out = bottom(input_ids=input_ids, attention_mask=attention_mask,
                     position_ids=positions(attention_mask), use_cache=False)
    return Trunk(input_ids, attention_mask, out.last_hidden_state)


def run_top(decoder: nn.Module, cut: int, trunk: Trunk) -> torch.Tensor:
    """Last-layer hidden states (B, T, H) from a trunk: layers[cut:] and the final norm."""
    if trunk.hidden is None:
        out = decoder(input_ids=trunk.input_ids, attention_mask=trunk.attention_mask,
                      position_ids=positions(trunk.attention_mask), use_cache=False)
        return out.last_hidden_state
    with layer_slice(decoder, cut, None, final_norm=True) as top:
        out = top(inputs_embeds=trunk.hidden, attention_mask=trunk.attention_mask,
                  position_ids=positions(trunk.attention_mask), use_cache=False)
    return out.last_hidden_state


def can_split(decoder: nn.Module, text_config) -> bool:
    """Only plain decoders can be sliced: a layer list and a final norm, one attention kind for all layers
    (per-layer kinds are indexed by position in the list)."""
    if not isinstance(getattr(decoder, "layers", None), nn.ModuleList) or not hasattr(decoder, "norm"):
        return False
    layer_types = getattr(text_config, "layer_types", None)
    return not (layer_types and len(set(layer_types)) > 1)


def probe_batch(vocab: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Two short rows, one left-padded, to check a split with padding and positions."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (2, 12), generator=gen).to(device)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    return ids, mask

"""Autoregressive code generation for UnifiedVoice (gpt-fast style: static KV cache, plain functions).

Decoding modes, as the reference (transformers 4.52 ``generate`` driven by IndexTTS-2) runs them:

* greedy (``do_sample=False, num_beams=1``): processors on the raw float32 logits,
  then argmax;
* sampling (``do_sample=True, num_beams=1``): processors on the raw logits, softmax,
  one multinomial draw;
* beam sampling (``do_sample=True, num_beams=N > 1``, the IndexTTS-2 default with N = 3):
  ``log_softmax`` first, processors per beam, plus the beam's running score, a softmax over
  all ``N·V`` joint scores, ``2N`` draws without replacement, sorted by score, then
  :class:`BeamHypotheses` bookkeeping (an EOS candidate closes a hypothesis only when
  ranked among the first N; the search ends when N hypotheses are closed and none of the
  step's candidates can beat the worst, or at the length cap);
* beam search (``do_sample=False, num_beams > 1``): as beam sampling with the top ``2N``
  joint scores instead of draws and no temperature/top-k/top-p.

Processor order: repetition penalty (every id the sequence holds, which includes the
prefix's placeholder ids ``1`` and the start code), the stop-code mask of
``min_new_tokens``, then (sampling only) temperature, top-k, top-p. Top-k/top-p keep at
least 2 candidates with beams, 1 without.

Two things the reference does not do:

* the start code is never emitted as a code (the codec has no row for it and the
  reference pipeline would crash). It is excluded after all processing, at the point of
  choice (its probability set to 0, or its score to -inf for argmax/top-k), which leaves
  every other decision bit-identical to the reference whenever the reference would not
  have picked it. Should the filters leave the start code as the only code with any
  probability, the draw is uniform over the other admissible codes;
* ``min_new_tokens`` / ``max_new_tokens`` bound the number of codes for duration control:
  the stop code is masked until ``min_new_tokens`` codes exist, and generation ends after
  ``max_new_tokens`` codes (``stopped=False`` then). Equal values give exactly N codes.

All random draws use the ``torch.Generator`` passed in (it must live on the model's device).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InvalidOptionError
from .models.decoding import KVCache, repetition_penalty
from .models.gpt import UnifiedVoice
from .options import Sampling

PROMPT_ID = 1  # the placeholder id the reference gives every prefix position


@dataclass
class GenerationResult:
    """``codes_raw (1, n)``: the codes as the reference returns them (with the stop code when
    one was emitted or appended); ``codes (1, m)``: cut before the first stop code;
    ``stopped``: whether the model ended the sequence itself (False: a length cap did);
    ``score``: the returned beam hypothesis' score (None without beams). Tensors are on the CPU."""

    codes_raw: Tensor
    codes: Tensor
    stopped: bool
    score: float | None = None


def prefill(model: UnifiedVoice, embeds: Tensor, cache: KVCache, key_valid: Tensor | None = None) -> Tensor:
    """Run ``embeds (B, T, D)`` at positions ``0..T-1`` into ``cache``.

    Returns the float32 logits ``(B, V)`` of the last position.
    """
    h = model.transformer(embeds, cache=cache, start=0, key_valid=key_valid)
    return model.logits(h[:, -1]).float()


def decode_one_token(model: UnifiedVoice, token: Tensor, pos: int, cache: KVCache, mel_pos: int,
                     key_valid: Tensor | None = None) -> Tensor:
    """Feed ``token (B,)`` at cache position ``pos`` (mel position ``mel_pos``); float32 logits ``(B, V)``."""
    x = model.mel_step_embedding(token, mel_pos)
    h = model.transformer(x, cache=cache, start=pos, key_valid=key_valid)
    return model.logits(h[:, -1]).float()


# -- logits processors (float32, (B, V)) -------------------------------------------------------


def top_k_filter(scores: Tensor, k: int, min_keep: int = 1) -> Tensor:
    """Scores below the k-th largest become -inf (ties with it stay)."""
    k = min(max(k, min_keep), scores.shape[-1])
    kth = torch.topk(scores, k)[0][..., -1:]
    return scores.masked_fill(scores < kth, float("-inf"))


def top_p_filter(scores: Tensor, p: float, min_keep: int = 1) -> Tensor:
    """Drop the least likely ids whose ascending cumulative probability is ≤ 1 − p.

    The best ``min_keep`` ids always stay.
    """
    ordered, order = torch.sort(scores, descending=False)
    drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - p)
    drop[..., -min_keep:] = False
    return scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


def process_scores(scores: Tensor, seen: Tensor, params: Sampling, n_generated: int,
                   min_new_tokens: int, stop_token: int) -> Tensor:
    """All processors in the reference's order; ``scores (B, V)`` float32."""
    if params.repetition_penalty != 1.0:
        scores = repetition_penalty(scores, seen, params.repetition_penalty)
    if n_generated < min_new_tokens:
        scores = scores.clone()
        scores[:, stop_token] = float("-inf")
    if params.do_sample:
        min_keep = 2 if params.num_beams > 1 else 1
        if params.temperature != 1.0:
            scores = scores / params.temperature
        if params.top_k:
            scores = top_k_filter(scores, params.top_k, min_keep)
        if params.top_p < 1.0:
            scores = top_p_filter(scores, params.top_p, min_keep)
    return scores


# -- beam bookkeeping --------------------------------------------------------------------------


class BeamHypotheses:
    """The N best closed hypotheses, scored ``sum_logprobs / generated_len ** length_penalty``.

    Python floats and list order as transformers keeps them, so ties resolve the same way.
    """

    def __init__(self, num_beams: int, length_penalty: float):
        self.size = num_beams
        self.penalty = length_penalty
        self.closed: list[tuple[float, list[int]]] = []
        self.floor = 1e9  # the worst kept score once the list is full

    def __len__(self) -> int:
        return len(self.closed)

    def add(self, tokens: list[int], sum_logprobs: float, generated_len: int) -> None:
        score = sum_logprobs / generated_len**self.penalty
        if len(self.closed) >= self.size and not score > self.floor:
            return
        self.closed.append((score, tokens))
        if len(self.closed) <= self.size:
            self.floor = min(self.floor, score)
            return
        ranked = sorted((s, i) for i, (s, _) in enumerate(self.closed))
        del self.closed[ranked[0][1]]
        self.floor = ranked[1][0]

    def is_done(self, best_sum_logprobs: float, generated_len: int) -> bool:
        """No open beam can still beat the worst closed one (``early_stopping=False`` rule)."""
        full = len(self.closed) >= self.size
        return full and self.floor >= best_sum_logprobs / generated_len**self.penalty

    def best(self) -> tuple[float, list[int]]:
        # stable sort, last element: among equal scores the latest closed wins
        return sorted(self.closed, key=lambda c: c[0])[-1]


# -- search loops over a step function ---------------------------------------------------------

StepFn = Callable[[Tensor, int], Tensor]  # (tokens (B,), index of the step that chose them) -> logits (B, V)
ReorderFn = Callable[[Tensor, int], None]  # (beam index (N,), step) -> None


def without_start(probs: Tensor, scores: Tensor, start_cols: Tensor) -> Tensor:
    """Zero the start code's probability; should that leave no mass at all, draw uniformly
    among the other codes with a finite score (or among all other codes). Sync-free."""
    probs = probs.index_fill(-1, start_cols, 0.0)
    fallback = scores.isfinite().to(probs.dtype).index_fill(-1, start_cols, 0.0)
    anything = torch.ones_like(probs).index_fill(-1, start_cols, 0.0)
    fallback = torch.where(fallback.sum(-1, keepdim=True) > 0, fallback, anything)
    return torch.where(probs.sum(-1, keepdim=True) > 0, probs, fallback)


def single_search(first_logits: Tensor, step: StepFn, params: Sampling, *, seen: Tensor,
                  stop_token: int, start_token: int, max_new: int, min_new_tokens: int = 0,
                  generator: torch.Generator | None = None) -> tuple[list[int], bool]:
    """Greedy or sampled decoding of one sequence. ``first_logits (1, V)``, ``seen (1, V)`` bool.

    Returns the tokens (ending with ``stop_token`` if it was chosen) and whether it was.
    """
    seen = seen.clone()
    logits = first_logits
    tokens: list[int] = []
    for n in range(max_new):
        scores = process_scores(logits.float(), seen, params, n, min_new_tokens, stop_token)
        if params.do_sample:
            start_col = torch.tensor([start_token], device=scores.device)
            probs = without_start(scores.softmax(dim=-1), scores, start_col)
            choice = torch.multinomial(probs, 1, generator=generator)[:, 0]
        else:
            scores = scores.clone()
            scores[:, start_token] = float("-inf")
            choice = scores.argmax(dim=-1)
        token = int(choice)
        tokens.append(token)
        if token == stop_token:
            return tokens, True
        if n + 1 == max_new:
            break
        seen[0, token] = True
        logits = step(choice, n)
    return tokens, False


def beam_search(first_logits: Tensor, step: StepFn, reorder: ReorderFn, params: Sampling, *,
                seen: Tensor, stop_token: int, start_token: int, max_new: int, min_new_tokens: int = 0,
                generator: torch.Generator | None = None) -> tuple[list[int], bool, float]:
    """Beam sampling / beam search with ``params.num_beams`` beams; ``first_logits (1, V)``.

    ``step`` gets the ``(N,)`` tokens chosen at a step (rows already reordered by
    ``reorder``) and returns the next ``(N, V)`` logits. Returns the best hypothesis'
    tokens (with one stop code appended when it ended by itself), whether it did, and its score.
    """
    n_beams = params.num_beams
    vocab = first_logits.shape[-1]
    device = first_logits.device
    beam_scores = torch.full((n_beams,), -1e9, dtype=torch.float32, device=device)
    beam_scores[0] = 0.0  # all beams start identical: only the first may be extended at step 1
    logits = first_logits.expand(n_beams, vocab)
    seen = seen.expand(n_beams, vocab).clone()
    history = torch.zeros(n_beams, max_new, dtype=torch.long, device=device)
    start_cols = start_token + vocab * torch.arange(n_beams, device=device)
    closed = BeamHypotheses(n_beams, params.length_penalty)
    done = False
    n = 0
    for n in range(max_new):
        scores = F.log_softmax(logits.float(), dim=-1)
        scores = process_scores(scores, seen, params, n, min_new_tokens, stop_token)
        joint = (scores + beam_scores[:, None]).view(1, n_beams * vocab)
        if params.do_sample:
            probs = without_start(joint.softmax(dim=-1), joint, start_cols)
            picked = torch.multinomial(probs, 2 * n_beams, generator=generator)
            cand_scores = joint.gather(1, picked)
            cand_scores, order = torch.sort(cand_scores, descending=True, dim=1)
            picked = picked.gather(1, order)
        else:
            guarded = joint.clone()
            guarded[:, start_cols] = float("-inf")
            cand_scores, picked = torch.topk(guarded, 2 * n_beams, dim=1)
        # float32 -> Python float is exact, as transformers' ``.item()`` is
        c_scores = cand_scores[0].tolist()
        c_beams, c_tokens = zip(*(divmod(i, vocab) for i in picked[0].tolist()), strict=True)

        next_scores: list[float] = []
        next_beams: list[int] = []
        next_tokens: list[int] = []
        for rank, (score, beam, token) in enumerate(zip(c_scores, c_beams, c_tokens, strict=True)):
            if token == start_token:
                # drawn only as a zero-probability filler (fewer than 2N codes had mass)
                continue
            if token == stop_token:
                if rank < n_beams:
                    closed.add(history[beam, :n].tolist(), score, generated_len=n + 1)
            else:
                next_scores.append(score)
                next_beams.append(beam)
                next_tokens.append(token)
            if len(next_tokens) == n_beams:
                break
        if len(next_tokens) < n_beams:
            raise RuntimeError(f"beam search found {len(next_tokens)} continuations for {n_beams} beams "
                               "(the filters left too few codes); use fewer beams or looser top-k/top-p")
        done = closed.is_done(max(c_scores), n + 1)

        beam_idx = torch.tensor(next_beams, device=device)
        chosen = torch.tensor(next_tokens, device=device)
        beam_scores = torch.tensor(next_scores, dtype=torch.float32, device=device)
        history = history[beam_idx]
        history[:, n] = chosen
        seen = seen[beam_idx]
        seen[torch.arange(n_beams, device=device), chosen] = True
        if done or n + 1 == max_new:
            break
        reorder(beam_idx, n)
        logits = step(chosen, n)

    generated = n + 1
    if not done:
        final = beam_scores.tolist()
        for b in range(n_beams):
            closed.add(history[b, :generated].tolist(), final[b], generated_len=generated)
    score, tokens = closed.best()
    stopped = len(tokens) < max_new
    return ([*tokens, stop_token] if stopped else tokens), stopped, score


# -- entry points ------------------------------------------------------------------------------


def max_codes(model: UnifiedVoice) -> int:
    """The most codes one segment can have: the latent pass needs ``m + 2`` mel positions."""
    return model.mel_pos_embedding.rows - 2


def check_length_limits(model: UnifiedVoice, max_codes_wanted: int) -> None:
    """``max_codes_wanted`` codes must fit the mel position table (generation and the latent pass)."""
    limit = max_codes(model)
    if max_codes_wanted > limit:
        raise InvalidOptionError(f"max_mel_tokens {max_codes_wanted} exceeds what this model supports ({limit})")


def generate_from_prefix(model: UnifiedVoice, prefix: Tensor, params: Sampling, *, pad: int = 0,
                         generator: torch.Generator | None = None, min_new_tokens: int = 0,
                         max_new_tokens: int | None = None,
                         on_code: Callable[[int, int], None] | None = None) -> GenerationResult:
    """Generate codes after ``prefix (1, P, D)`` (``UnifiedVoice.prefix_embeddings``).

    ``pad``: leading prefix rows that are padding (``UnifiedVoice.prefix_padding``).
    ``on_code(n, cap)``: called after each decoding step with the codes chosen so far (a progress
    report; it sees no tensor and cannot change the result).
    """
    cap = params.max_mel_tokens if max_new_tokens is None else min(params.max_mel_tokens, max_new_tokens)
    if max_new_tokens is not None and max_new_tokens < 1:
        raise InvalidOptionError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if min_new_tokens < 0 or min_new_tokens > cap:
        raise InvalidOptionError(f"min_new_tokens {min_new_tokens} must lie in [0, {cap}] "
                                 "(the max_new_tokens / max_mel_tokens cap)")
    check_length_limits(model, cap)
    if params.do_sample and generator is None:
        raise InvalidOptionError("sampling needs an explicit torch.Generator")
    if prefix.dim() != 3 or prefix.shape[0] != 1:
        raise InvalidOptionError(f"prefix must have shape (1, P, D), got {tuple(prefix.shape)}")

    cfg = model.cfg
    weight = model.mel_head.weight
    prefix = prefix.to(device=weight.device, dtype=weight.dtype)
    length = prefix.shape[1]
    n_beams = params.num_beams
    cache = model.new_cache(n_beams, length + 1 + cap)
    key_valid = None
    if pad:
        key_valid = torch.ones(1, cache.max_seq, dtype=torch.bool, device=weight.device)
        key_valid[:, :pad] = False

    with torch.inference_mode():
        first = prefill(model, torch.cat([prefix, model.start_embedding()], dim=1), cache, key_valid)
        seen = torch.zeros_like(first, dtype=torch.bool)
        if length:
            seen[:, PROMPT_ID] = True
        seen[:, cfg.start_mel_token] = True

        def step(tokens: Tensor, n: int) -> Tensor:
            # the code chosen at step n is fed at cache position P+1+n and mel position n+2
            logits = decode_one_token(model, tokens, length + 1 + n, cache, n + 2, key_valid)
            if on_code is not None:
                on_code(n + 1, cap)
            return logits

        common = dict(seen=seen, stop_token=cfg.stop_mel_token, start_token=cfg.start_mel_token,
                      max_new=cap, min_new_tokens=min_new_tokens, generator=generator)
        score = None
        if n_beams == 1:
            tokens, stopped = single_search(first, step, params, **common)
        else:
            rows = torch.arange(n_beams, device=weight.device) * 0
            cache.reorder(rows, length + 1)  # every beam starts from the one prefilled row

            def reorder(beam_idx: Tensor, n: int) -> None:
                cache.reorder(beam_idx, length + 1 + n)

            tokens, stopped, score = beam_search(first, step, reorder, params, **common)

    raw = torch.tensor([tokens], dtype=torch.long)
    cut = tokens.index(cfg.stop_mel_token) if cfg.stop_mel_token in tokens else len(tokens)
    return GenerationResult(codes_raw=raw, codes=raw[:, :cut].clone(), stopped=stopped, score=score)


def generate(model: UnifiedVoice, conds: Tensor, text_ids: Tensor, params: Sampling, *,
             generator: torch.Generator | None = None, min_new_tokens: int = 0,
             max_new_tokens: int | None = None,
             on_code: Callable[[int, int], None] | None = None) -> GenerationResult:
    """Codes for one text segment.

    ``conds (1, 34, D)`` from ``UnifiedVoice.conditioning``, ``text_ids (1, L)``; ``on_code`` as
    in :func:`generate_from_prefix`.
    """
    prefix = model.prefix_embeddings(conds, text_ids)
    return generate_from_prefix(model, prefix, params, pad=model.prefix_padding(text_ids),
                                generator=generator, min_new_tokens=min_new_tokens,
                                max_new_tokens=max_new_tokens, on_code=on_code)

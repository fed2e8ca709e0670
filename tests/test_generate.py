"""Code generation: golden greedy codes, cache consistency, processors, beam bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from indextts_core.config import load_config
from indextts_core.errors import InvalidOptionError
from indextts_core.generate import (
    BeamHypotheses,
    beam_search,
    decode_one_token,
    generate,
    generate_from_prefix,
    prefill,
    process_scores,
    single_search,
    top_k_filter,
    top_p_filter,
)
from indextts_core.models.gpt import UnifiedVoice, load_gpt
from indextts_core.options import Sampling
from tests.golden import CASES, load_case, needs_golden_weights

SEGMENTS = [(case, seg) for case in CASES for seg in range(load_case(case).expected["n_segments"])]
INF = float("inf")


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> UnifiedVoice:
    cfg = load_config(tiny_model_dir / "config.yaml")
    return load_gpt(tiny_model_dir, cfg)


@pytest.fixture(scope="module")
def spk_prefix() -> torch.Tensor:
    return t(load_case("spk_only").trace["A_gpt_prefix_embeds"])


# -- golden greedy codes --------------------------------------------------------------------------


@needs_golden_weights
@pytest.mark.parametrize("case,seg", SEGMENTS, ids=[f"{c}-{s}" for c, s in SEGMENTS])
def test_greedy_codes_match_golden(model, case, seg):
    """The harness's settings: greedy, repetition penalty 10 (seeing ids 1 and the start code), 80 codes."""
    g = load_case(case)
    kw = g.expected["gpt_generate_kwargs"]
    params = Sampling.greedy(kw["repetition_penalty"], kw["max_generate_length"])
    result = generate_from_prefix(model, t(g.trace[g.key("A_gpt_prefix_embeds", seg)]), params)
    assert torch.equal(result.codes_raw, t(g.trace[g.key("A_codes_raw", seg)]))
    assert torch.equal(result.codes, t(g.trace[g.key("A_codes", seg)]))
    assert result.stopped == g.expected["stopped_naturally"][seg]


@needs_golden_weights
def test_generate_from_conditioning_matches_golden(model):
    g = load_case("emo_audio")
    conds = model.conditioning(t(g.trace["A_spk_cond_latent"]), t(g.trace["A_emovec_used"]))
    result = generate(model, conds, t(g.trace["A_text_ids"]), Sampling.greedy(10.0, 80))
    assert torch.equal(result.codes_raw, t(g.trace["A_codes_raw"]))


# -- cache consistency ----------------------------------------------------------------------------


def full_recompute_logits(model: UnifiedVoice, prefix: torch.Tensor, codes: list[int],
                          key_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Logits after ``codes`` from one pass over everything, generation positions (c_n at n+1)."""
    parts = [prefix, model.start_embedding()]
    parts += [model.mel_step_embedding(torch.tensor([c]), i + 2) for i, c in enumerate(codes)]
    h = model.transformer(torch.cat(parts, dim=1), key_valid=key_valid)
    return model.logits(h[:, -1]).float()


def test_kv_cache_decode_equals_full_recompute(model, spk_prefix):
    codes = generate_from_prefix(model, spk_prefix, Sampling.greedy(10.0, 6)).codes[0].tolist()
    p = spk_prefix.shape[1]
    cache = model.new_cache(1, p + 8)
    with torch.inference_mode():
        logits = prefill(model, torch.cat([spk_prefix, model.start_embedding()], dim=1), cache)
        assert torch.allclose(logits, full_recompute_logits(model, spk_prefix, []), atol=1e-4)
        for n, code in enumerate(codes):
            logits = decode_one_token(model, torch.tensor([code]), p + 1 + n, cache, mel_pos=n + 2)
            full = full_recompute_logits(model, spk_prefix, codes[: n + 1])
            assert (logits - full).abs().max().item() <= 1e-4


def test_left_padding_is_masked(model):
    """Stripped text ids leave zero rows in front; masked, they change nothing (mel positions included)."""
    g = load_case("spk_only")
    ids = t(g.trace["A_text_ids"]).long()
    dirty = torch.cat([torch.tensor([[1, 0]]), ids[:, :4], torch.tensor([[1]]), ids[:, 4:]], dim=1)
    with torch.inference_mode():
        conds = model.conditioning(t(g.trace["A_spk_cond_latent"]), t(g.trace["A_emovec_used"]))
        clean = model.prefix_embeddings(conds, ids)
        padded = model.prefix_embeddings(conds, dirty)
        valid = torch.ones(1, padded.shape[1] + 3, dtype=torch.bool)
        valid[:, :3] = False
        for codes in ([], [7, 300]):
            ours = full_recompute_logits(model, padded, codes, key_valid=valid)
            assert (ours - full_recompute_logits(model, clean, codes)).abs().max().item() <= 1e-5
    params = Sampling.greedy(10.0, 12)
    assert torch.equal(generate(model, conds, dirty, params).codes_raw,
                       generate(model, conds, ids, params).codes_raw)


# -- processors on hand-made scores ---------------------------------------------------------------


def test_top_k_keeps_ties_and_min_keep():
    scores = torch.tensor([[1.0, 5.0, 3.0, 3.0, -1.0]])
    assert top_k_filter(scores, 2).tolist() == [[-INF, 5.0, 3.0, 3.0, -INF]]  # tie with the 2nd kept
    assert top_k_filter(scores, 1).tolist() == [[-INF, 5.0, -INF, -INF, -INF]]
    assert top_k_filter(scores, 1, min_keep=2).tolist() == [[-INF, 5.0, 3.0, 3.0, -INF]]


def test_top_p_drops_the_low_tail():
    probs = torch.tensor([[0.5, 0.25, 0.15, 0.07, 0.03]])
    scores = probs.log()
    # ascending cumulative: 0.03, 0.10, 0.25, 0.50, 1.0; p = 0.8 drops where cum <= 0.2
    kept = top_p_filter(scores, 0.8).isfinite()
    assert kept.tolist() == [[True, True, True, False, False]]
    kept = top_p_filter(scores, 0.3).isfinite()  # drops cum <= 0.7: only the best survives
    assert kept.tolist() == [[True, False, False, False, False]]
    kept = top_p_filter(scores, 0.3, min_keep=2).isfinite()
    assert kept.tolist() == [[True, True, False, False, False]]


def test_process_scores_order_and_modes():
    scores = torch.tensor([[1.0, -0.5, 2.0, 0.5, -3.0]])
    seen = torch.tensor([[False, False, True, False, False]])
    sample = Sampling(do_sample=True, temperature=0.5, top_k=3, top_p=1.0, num_beams=1,
                            repetition_penalty=4.0)
    out = process_scores(scores, seen, sample, n_generated=0, min_new_tokens=0, stop_token=4)
    # penalty first (2.0 -> 0.5), then /0.5, then top-3 of [2, -1, 1, 1, -6] keeps 2, 1, 1
    assert out.tolist() == [[2.0, -INF, 1.0, 1.0, -INF]]
    greedy = Sampling.greedy(repetition_penalty=4.0)
    out = process_scores(scores, seen, greedy, n_generated=0, min_new_tokens=0, stop_token=4)
    assert out.tolist() == [[1.0, -0.5, 0.5, 0.5, -3.0]]  # no temperature/top-k/top-p in greedy
    out = process_scores(scores, seen, greedy, n_generated=2, min_new_tokens=3, stop_token=1)
    assert out[0, 1].item() == -INF and out[0, 0].item() == 1.0
    assert scores[0, 1].item() == -0.5  # inputs untouched


# -- beam bookkeeping -----------------------------------------------------------------------------


def test_beam_hypotheses_keeps_the_best_and_stops():
    hyps = BeamHypotheses(num_beams=2, length_penalty=0.0)
    hyps.add([1], -3.0, generated_len=2)
    assert not hyps.is_done(-100.0, 3)  # fewer than num_beams closed
    hyps.add([2], -1.0, generated_len=2)
    assert hyps.floor == -3.0
    hyps.add([3], -5.0, generated_len=2)  # worse than the worst: ignored
    assert sorted(s for s, _ in hyps.closed) == [-3.0, -1.0]
    hyps.add([4], -2.0, generated_len=2)  # evicts -3
    assert sorted(s for s, _ in hyps.closed) == [-2.0, -1.0] and hyps.floor == -2.0
    assert hyps.is_done(-2.0, 5) and not hyps.is_done(-1.5, 5)
    hyps.add([5], -1.0, generated_len=9)  # ties with the best; the later one wins, as in transformers
    assert hyps.best() == (-1.0, [5])
    scaled = BeamHypotheses(num_beams=1, length_penalty=1.0)
    scaled.add([1, 2, 3], -6.0, generated_len=4)
    assert scaled.closed[0][0] == -1.5 and scaled.is_done(-6.0, 4) and not scaled.is_done(-2.0, 4)


def markov_table(vocab: int, seed: int, stop_boost: float) -> torch.Tensor:
    """A toy LM: the logits of the next token depend only on the last one."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(vocab, vocab, generator=g) * 2.0
    table[:, vocab - 1] += stop_boost  # the stop code
    table[:, vocab - 2] = -40.0  # the start code: never drawn
    return table


def naive_beams(table, params, *, prompt_len, max_new, min_new, generator):
    """The reference's BEAM_SAMPLE / BEAM_SEARCH step by step, over full id lists (no cache)."""
    vocab = table.shape[0]
    start, stop, n = vocab - 2, vocab - 1, params.num_beams
    ids = [[1] * prompt_len + [start] for _ in range(n)]
    beam_scores = torch.tensor([0.0] + [-1e9] * (n - 1))
    closed: list[tuple[float, list[int]]] = []
    worst = 1e9
    lp = params.length_penalty

    def close(tokens, score, length):
        nonlocal worst
        s = score / length**lp
        if len(closed) < n or s > worst:
            closed.append((s, tokens))
            if len(closed) > n:
                ranked = sorted((c[0], i) for i, c in enumerate(closed))
                del closed[ranked[0][1]]
                worst = ranked[1][0]
            else:
                worst = min(s, worst)

    done = False
    for step in range(max_new):
        s = F.log_softmax(torch.stack([table[row[-1]] for row in ids]), dim=-1)
        index = torch.tensor(ids)
        picked = s.gather(1, index)
        pen = params.repetition_penalty
        s = s.scatter(1, index, torch.where(picked < 0, picked * pen, picked / pen))
        if step < min_new:
            s[:, stop] = -INF
        if params.do_sample:
            s = s / params.temperature
            kth = s.topk(max(params.top_k, 2)).values[:, -1:]
            s = s.masked_fill(s < kth, -INF)
            asc, order = s.sort(dim=-1)
            drop = asc.softmax(-1).cumsum(-1) <= 1 - params.top_p
            drop[:, -2:] = False
            s = s.masked_fill(drop.scatter(1, order, drop), -INF)
        joint = (s + beam_scores[:, None]).view(1, -1)
        if params.do_sample:
            cand = torch.multinomial(joint.softmax(-1), 2 * n, generator=generator)
            sc, order = joint.gather(1, cand).sort(descending=True)
            cand = cand.gather(1, order)
        else:
            sc, cand = joint.topk(2 * n)
        new_ids, new_scores = [], []
        for rank in range(2 * n):
            b, tok, score = int(cand[0, rank]) // vocab, int(cand[0, rank]) % vocab, sc[0, rank].item()
            if tok == stop:
                if rank < n:
                    close(ids[b][prompt_len + 1:], score, step + 1)
            else:
                new_ids.append([*ids[b], tok])
                new_scores.append(score)
            if len(new_ids) == n:
                break
        done = len(closed) >= n and worst >= sc.max().item() / (step + 1) ** lp
        ids, beam_scores = new_ids, torch.tensor(new_scores)
        if done:
            break
    if not done:
        for b in range(n):
            close(ids[b][prompt_len + 1:], beam_scores[b].item(), len(ids[b]) - prompt_len - 1)
    score, tokens = sorted(closed, key=lambda c: c[0])[-1]
    return tokens, score, closed


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("variant", ["sample", "sample_lp1", "search", "sample_min_new"])
def test_beam_search_matches_naive_reference(seed, variant):
    vocab, prompt_len, max_new = 14, 5, 12
    table = markov_table(vocab, seed, stop_boost=1.0)
    params = Sampling(do_sample=variant != "search", temperature=0.9, top_k=6, top_p=0.85,
                            num_beams=3, repetition_penalty=1.8,
                            length_penalty=1.0 if variant == "sample_lp1" else 0.0)
    min_new = 4 if variant == "sample_min_new" else 0
    start, stop = vocab - 2, vocab - 1
    seen = torch.zeros(1, vocab, dtype=torch.bool)
    seen[0, [1, start]] = True
    tokens, stopped, score = beam_search(
        table[start][None], lambda toks, n: table[toks], lambda idx, n: None, params, seen=seen,
        stop_token=stop, start_token=start, max_new=max_new, min_new_tokens=min_new,
        generator=torch.Generator().manual_seed(100 + seed))
    ref_tokens, ref_score, closed = naive_beams(table, params, prompt_len=prompt_len, max_new=max_new,
                                                min_new=min_new,
                                                generator=torch.Generator().manual_seed(100 + seed))
    assert score == ref_score == max(c[0] for c in closed)
    assert stopped == (len(ref_tokens) < max_new)
    assert tokens == ([*ref_tokens, stop] if stopped else ref_tokens)
    assert stop not in tokens[:-1] and start not in tokens
    if min_new:
        assert len(tokens) > min_new


def test_single_search_min_new_tokens_and_start_guard():
    vocab = 6
    start, stop = 4, 5
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.5, 9.0, 5.0]])  # start is the best, then stop
    seen = torch.zeros(1, vocab, dtype=torch.bool)
    greedy = Sampling.greedy(repetition_penalty=1.0)
    step = lambda toks, n: logits  # noqa: E731
    tokens, stopped = single_search(logits, step, greedy, seen=seen, stop_token=stop, start_token=start,
                                    max_new=10)
    assert tokens == [stop] and stopped
    tokens, stopped = single_search(logits, step, greedy, seen=seen, stop_token=stop, start_token=start,
                                    max_new=10, min_new_tokens=3)
    assert tokens == [2, 2, 2, stop] and stopped
    sample = Sampling(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, num_beams=1,
                            repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        tokens, _ = single_search(logits, step, sample, seen=seen, stop_token=stop, start_token=start,
                                  max_new=5, generator=g)
        assert start not in tokens
    # top-k 1 leaves only the start code: the draw falls back to the other codes
    only_start = Sampling(do_sample=True, temperature=1.0, top_k=1, top_p=1.0, num_beams=1,
                                repetition_penalty=1.0)
    tokens, _ = single_search(logits, step, only_start, seen=seen, stop_token=stop, start_token=start,
                              max_new=5, generator=g)
    assert tokens and start not in tokens


@pytest.mark.parametrize("do_sample", [True, False])
def test_beams_never_emit_the_start_code(do_sample):
    vocab = 10
    start, stop = vocab - 2, vocab - 1
    table = markov_table(vocab, 3, stop_boost=-2.0)
    table[:, start] = 6.0  # the start code is by far the likeliest continuation everywhere
    params = Sampling(do_sample=do_sample, temperature=1.0, top_k=2, top_p=1.0, num_beams=3,
                            repetition_penalty=1.0)
    seen = torch.zeros(1, vocab, dtype=torch.bool)
    tokens, _, score = beam_search(table[start][None], lambda toks, n: table[toks], lambda idx, n: None,
                                   params, seen=seen, stop_token=stop, start_token=start, max_new=8,
                                   generator=torch.Generator().manual_seed(0))
    assert start not in tokens and len(tokens) >= 1 and math.isfinite(score)


# -- the tiny model ---------------------------------------------------------------------------------


def test_tiny_temperature_sampling_equals_greedy(model, spk_prefix):
    greedy = generate_from_prefix(model, spk_prefix, Sampling.greedy(10.0, 20))
    cold = Sampling(do_sample=True, temperature=1e-4, top_k=30, top_p=0.8, num_beams=1,
                          repetition_penalty=10.0, max_mel_tokens=20)
    sampled = generate_from_prefix(model, spk_prefix, cold, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sampled.codes_raw, greedy.codes_raw)


def test_beam_sampling_is_deterministic_and_consistent(model, spk_prefix):
    params = Sampling(max_mel_tokens=24)  # the IndexTTS-2 defaults: 3 beams, sampling
    runs = [generate_from_prefix(model, spk_prefix, params, generator=torch.Generator().manual_seed(7))
            for _ in range(2)]
    assert torch.equal(runs[0].codes_raw, runs[1].codes_raw) and runs[0].score == runs[1].score
    r = runs[0]
    codes = r.codes[0].tolist()
    assert r.stopped == (r.codes_raw[0, -1].item() == model.cfg.stop_mel_token)
    assert r.codes_raw[0, : len(codes)].tolist() == codes and len(codes) <= 24
    assert model.cfg.start_mel_token not in codes

    # the score is the beam's running sum of processed log-probs: recompute it along the codes
    p = spk_prefix.shape[1]
    cache = model.new_cache(1, p + 32)
    seen = torch.zeros(1, model.cfg.number_mel_codes, dtype=torch.bool)
    seen[0, [1, model.cfg.start_mel_token]] = True
    total = torch.zeros((), dtype=torch.float32)
    with torch.inference_mode():
        logits = prefill(model, torch.cat([spk_prefix, model.start_embedding()], dim=1), cache)
        for n, code in enumerate(r.codes_raw[0].tolist()):
            s = process_scores(F.log_softmax(logits, dim=-1), seen, params, n, 0, model.cfg.stop_mel_token)
            total = total + s[0, code]
            seen[0, code] = True
            if n + 1 < r.codes_raw.shape[1]:
                logits = decode_one_token(model, torch.tensor([code]), p + 1 + n, cache, n + 2)
    assert math.isfinite(r.score) and r.score == pytest.approx(total.item(), rel=1e-4, abs=1e-3)


@pytest.mark.parametrize("params", [Sampling.greedy(10.0, 80), Sampling(max_mel_tokens=80)],
                         ids=["greedy", "beams"])
def test_exact_code_count(model, spk_prefix, params):
    r = generate_from_prefix(model, spk_prefix, params, generator=torch.Generator().manual_seed(1),
                             min_new_tokens=9, max_new_tokens=9)
    assert r.codes.shape == (1, 9) and r.codes_raw.shape == (1, 9) and not r.stopped


def test_option_errors(model, spk_prefix):
    rows = model.mel_pos_embedding.rows
    with pytest.raises(InvalidOptionError, match="max_mel_tokens"):
        generate_from_prefix(model, spk_prefix, Sampling.greedy(10.0, rows - 1))
    with pytest.raises(InvalidOptionError, match="Generator"):
        generate_from_prefix(model, spk_prefix, Sampling(max_mel_tokens=5))
    with pytest.raises(InvalidOptionError, match="min_new_tokens"):
        generate_from_prefix(model, spk_prefix, Sampling.greedy(10.0, 5), min_new_tokens=6)
    with pytest.raises(InvalidOptionError, match="temperature"):
        Sampling(temperature=0.0)

"""HFModel on hf:tiny-random: logprob math, text/offsets, prefill, KV reuse, sampling, batching."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from adapters.errors import InvalidRequestError, ModelNotFoundError
from adapters.hf import load_hf_model, tiny_random_model
from adapters.hf.decode import DecodeRow, IncrementalDetokenizer
from adapters.hf.kv import common_prefix_len
from adapters.hf.tiny import build_tiny_random
from adapters.specs import resolve_model
from adapters.types import GenerationRequest

QUESTIONS = ["Hello", "What is 2+2? Answer briefly.", "x", "Tell me a story about a robot."]


@pytest.fixture(scope="module")
def model():
    return tiny_random_model(kv_reuse=False)


def manual_logprobs(m, request, token_ids):
    """log_softmax of the model's logits at each generated position, from one full forward pass."""
    prompt = m.encode(request)
    ids = torch.tensor([prompt + token_ids])
    with torch.no_grad():
        logits = m.model(input_ids=ids).logits[0].float()
    return torch.log_softmax(logits[len(prompt) - 1 : len(prompt) - 1 + len(token_ids)], dim=-1)


def assert_text_invariants(gen, tokenizer):
    assert "".join(t.token for t in gen.tokens) == gen.text
    offset = 0
    for t in gen.tokens:
        assert t.offset == offset
        offset += len(t.token)


def test_resolves_as_spec_and_is_cached():
    assert resolve_model("hf:tiny-random") is resolve_model("hf:tiny-random")
    caps = resolve_model("hf:tiny-random").capabilities
    assert caps.logprobs and caps.full_distribution and caps.prefill and caps.max_top_logprobs == 100


def test_tiny_weights_are_deterministic():
    m, tok = build_tiny_random()
    w = m.model.embed_tokens.weight
    assert w.shape == (len(tok), 64)
    gen = torch.Generator().manual_seed(1234)  # rebuilt independently: same first parameter
    first = min(m.named_parameters(), key=lambda kv: kv[0])
    assert torch.equal(first[1], torch.randn(first[1].shape, generator=gen) * 0.35)


def test_logprobs_entropy_and_top_logprobs_match_a_manual_forward_pass(model):
    req = model.request(QUESTIONS[1], max_tokens=20, top_logprobs=5)
    gen = model.generate(req)
    assert gen.tokens, "the tiny model generated nothing"
    ids = [t.token_id for t in gen.tokens]
    lp = manual_logprobs(model, req, ids)
    for i, tok in enumerate(gen.tokens):
        assert tok.logprob == pytest.approx(lp[i, tok.token_id].item(), abs=1e-4)
        entropy = -(lp[i].exp() * lp[i]).sum().item()
        assert tok.entropy == pytest.approx(entropy, abs=1e-4)
        values = [a.logprob for a in tok.top_logprobs]
        assert len(values) == 5 and values == sorted(values, reverse=True)
        assert values == pytest.approx(lp[i].topk(5).values.tolist(), abs=1e-4)
        # greedy: the chosen token is the argmax, so it leads the alternatives
        assert tok.token_id == lp[i].argmax().item()
        assert tok.top_logprobs[0].token == tok.token
        assert tok.top_logprobs[0].logprob == pytest.approx(tok.logprob)


def test_sampled_logprobs_come_from_the_raw_distribution(model):
    req = model.request(QUESTIONS[0], max_tokens=15, temperature=1.7, top_p=0.8, seed=5)
    gen = model.generate(req)
    lp = manual_logprobs(model, req, [t.token_id for t in gen.tokens])
    for i, tok in enumerate(gen.tokens):
        assert tok.logprob == pytest.approx(lp[i, tok.token_id].item(), abs=1e-4)


def test_token_texts_concatenate_to_text_with_offsets(model):
    for q in QUESTIONS:
        gen = model.generate(q, max_tokens=40)
        assert_text_invariants(gen, model.tokenizer)
        assert gen.text == model.tokenizer.decode([t.token_id for t in gen.tokens], skip_special_tokens=True)
        assert gen.usage.prompt_tokens == len(model.encode(model.request(q)))


def test_prefill_continues_exactly(model):
    # A special token sampled mid-reply decodes to "" (it never reaches the text), so a text
    # prefill cannot reproduce it: use a question whose first 13 tokens are ordinary characters.
    gens = [(q, model.generate(q, max_tokens=30)) for q in QUESTIONS[::-1]]
    question, full = next((q, g) for q, g in gens if len(g.tokens) >= 13 and all(t.token for t in g.tokens[:13]))
    prefix = "".join(t.token for t in full.tokens[:12])
    cont = model.generate(question, max_tokens=30 - 12, prefill=prefix)
    assert cont.prefill == prefix
    assert cont.text == full.text[len(prefix) :]
    assert cont.full_text == full.text
    assert model.prompt_text(model.request(question, prefill=prefix)).endswith("assistant\n" + prefix)
    for a, b in zip(cont.tokens, full.tokens[12:]):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_kv_reuse_gives_the_same_tokens_and_reports_cached_tokens():
    reuse = tiny_random_model(kv_reuse=True)
    plain = tiny_random_model(kv_reuse=False)
    first = reuse.generate(QUESTIONS[3], max_tokens=25)
    assert first.usage.cached_tokens == 0
    calls = [
        {"messages": QUESTIONS[3], "prefill": first.text[:10]},  # LECO-style retry
        {"messages": QUESTIONS[3], "prefill": first.text[:4]},  # shorter: crop further
        {"messages": QUESTIONS[3], "prefill": first.text[:4] + "zz"},  # diverges
        {"messages": QUESTIONS[1]},  # another prompt: only the template start matches
        {"messages": QUESTIONS[1]},  # identical request: all but one token reused
    ]
    for kw in calls:
        msgs = kw["messages"]
        rest = {"max_tokens": 25, **{k: v for k, v in kw.items() if k != "messages"}}
        a, b = reuse.generate(msgs, **rest), plain.generate(msgs, **rest)
        assert a.text == b.text
        assert [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
        assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens], abs=1e-4)
        assert a.usage.prompt_tokens == b.usage.prompt_tokens
        assert a.usage.cached_tokens > 0 and b.usage.cached_tokens == 0
    # the identical request re-encoded only its last prompt token
    assert a.usage.cached_tokens == a.usage.prompt_tokens - 1


def test_kv_reuse_prefix_length_is_the_common_token_prefix():
    m = tiny_random_model()
    m.clear_cache()
    req = m.request(QUESTIONS[0], max_tokens=8)
    prompt = m.encode(req)
    first = m.generate(req)
    # a retry from a kept prefix: everything but the last token comes from the cache
    retry = m.generate(QUESTIONS[0], max_tokens=8, prefill=first.text[:5])
    assert retry.usage.prompt_tokens == len(prompt) + 5
    assert retry.usage.cached_tokens == len(prompt) + 5 - 1
    # a prefill that diverges after 3 characters: only the common token prefix is reused
    other = "~" if first.text[3] != "~" else "#"
    diverged = m.request(QUESTIONS[0], max_tokens=8, prefill=first.text[:3] + other + "abc")
    kept = m.encode(m.request(QUESTIONS[0], prefill=first.text[:5])) + [t.token_id for t in retry.tokens][:-1]
    gen = m.generate(diverged)
    assert gen.usage.cached_tokens == common_prefix_len(kept, m.encode(diverged)) == len(prompt) + 3


def test_seeded_sampling_is_reproducible(model):
    kw = {"max_tokens": 30, "temperature": 1.0, "top_p": 0.95}
    a = model.generate(QUESTIONS[0], seed=7, **kw)
    b = model.generate(QUESTIONS[0], seed=7, **kw)
    assert a.text == b.text and [t.logprob for t in a.tokens] == [t.logprob for t in b.tokens]
    others = {model.generate(QUESTIONS[0], seed=s, **kw).text for s in range(8, 12)}
    assert len(others | {a.text}) > 1


def test_tiny_top_p_is_greedy(model):
    greedy = model.generate(QUESTIONS[2], max_tokens=20)
    nucleus = model.generate(QUESTIONS[2], max_tokens=20, temperature=1.0, top_p=1e-6, seed=1)
    assert nucleus.text == greedy.text


def test_stop_sequences_cut_text_and_tokens(model):
    full = model.generate(QUESTIONS[3], max_tokens=30)
    for stop in (full.text[8:10], full.text[15]):
        cut = full.text.find(stop)
        gen = model.generate(QUESTIONS[3], max_tokens=30, stop=[stop, "\x00never"])
        assert gen.text == full.text[:cut]
        assert gen.finish_reason == "stop"
        assert_text_invariants(gen, model.tokenizer)
        before = [t for t in full.tokens if t.offset < cut]
        assert [t.token_id for t in gen.tokens] == [t.token_id for t in before]


def test_max_tokens_gives_length(model):
    gen = model.generate(QUESTIONS[3], max_tokens=5)
    assert gen.finish_reason == "length"
    assert len(gen.tokens) == 5 and gen.usage.completion_tokens == 5


def test_end_of_turn_token_stops_and_is_not_in_the_text(model):
    gens = [model.generate(q, max_tokens=200) for q in QUESTIONS]
    stopped = [g for g in gens if g.finish_reason == "stop"]
    assert stopped, "no prompt reached <|im_end|> within 200 tokens"
    for g in stopped:
        assert "<|im_end|>" not in g.text
        assert g.usage.completion_tokens == len(g.tokens) + 1  # the end-of-turn token counts


@pytest.mark.parametrize("batching", ["continuous", "static"])
def test_batch_equals_one_by_one(batching):
    m = tiny_random_model(kv_reuse=False, max_batch_size=3, batching=batching)
    requests = [
        m.request(QUESTIONS[0], max_tokens=25, top_logprobs=3),
        m.request(QUESTIONS[1], max_tokens=10),
        m.request(QUESTIONS[2], max_tokens=40, stop=["e"]),
        m.request(QUESTIONS[3], max_tokens=25, prefill="Once"),
        m.request("A much longer question, to force plenty of left padding in its batch?", max_tokens=30),
        m.request(QUESTIONS[1], max_tokens=12, temperature=0.9, seed=3),
    ]
    batched = m.generate_batch(requests)
    for req, b in zip(requests, batched):
        alone = m.generate(req)
        assert b.text == alone.text and b.finish_reason == alone.finish_reason
        assert [t.token_id for t in b.tokens] == [t.token_id for t in alone.tokens]
        assert [t.logprob for t in b.tokens] == pytest.approx([t.logprob for t in alone.tokens], abs=1e-4)
        assert [t.entropy for t in b.tokens] == pytest.approx([t.entropy for t in alone.tokens], abs=1e-4)
        assert b.usage.prompt_tokens == alone.usage.prompt_tokens
        assert [a.token for a in b.tokens[0].top_logprobs] == [a.token for a in alone.tokens[0].top_logprobs]
    assert m.batch(QUESTIONS, max_tokens=10) == m.generate_batch([m.request(q, max_tokens=10) for q in QUESTIONS])


async def test_async_generate_and_abatch(model):
    one = await model.agenerate(QUESTIONS[0], max_tokens=10)
    assert one.text == model.generate(QUESTIONS[0], max_tokens=10).text
    many = await model.abatch(QUESTIONS, max_tokens=10)
    assert [g.text for g in many] == [model.generate(q, max_tokens=10).text for q in QUESTIONS]


def test_threads_share_one_instance_safely():
    m = tiny_random_model()
    expected = {q: m.generate(q, max_tokens=15).text for q in QUESTIONS}
    got: dict[str, list[str]] = {q: [] for q in QUESTIONS}

    def work(q: str) -> None:
        for _ in range(3):
            got[q].append(m.generate(q, max_tokens=15).text)

    threads = [threading.Thread(target=work, args=(q,)) for q in QUESTIONS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(texts == [expected[q]] * 3 for q, texts in got.items())


def test_missing_model_path_raises_model_not_found(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model(f"hf:{missing}")
    assert str(missing) in str(info.value) and "pass an existing folder" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_hf_model(str(tmp_path / "empty"))


def test_bad_options_are_typed_errors():
    with pytest.raises(InvalidRequestError, match="dtype"):
        tiny_random_model(dtype="int3")
    with pytest.raises(InvalidRequestError, match="max_batch_size"):
        tiny_random_model(max_batch_size=0)
    with pytest.raises(InvalidRequestError, match="top_logprobs"):
        resolve_model("hf:tiny-random").generate("hi", top_logprobs=101)


# -- detokenisation with a byte-level BPE (multi-byte characters, multi-character tokens) -----


@pytest.fixture(scope="module")
def byte_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(["hello world, hello there, the world is wide"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False)


def test_incremental_detokenizer_holds_back_partial_characters(byte_tokenizer):
    text = " hello wörld € ok 🙂"
    ids = byte_tokenizer(text)["input_ids"]
    context = byte_tokenizer("prompt:")["input_ids"]
    detok = IncrementalDetokenizer(byte_tokenizer, context)
    pieces = [detok.step(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == text
    assert "" in pieces  # the multi-byte characters span several byte tokens
    assert any(len(p) > 2 for p in pieces)  # merged multi-character tokens


def test_stop_sequence_inside_a_multi_character_token(byte_tokenizer):
    text = " hello world, hello there"
    ids = byte_tokenizer(text)["input_ids"]
    req = GenerationRequest.build("q", stop=["lo wo"], max_tokens=50)
    row = DecodeRow(req, [0], IncrementalDetokenizer(byte_tokenizer, []))
    for i in ids:
        row.accept(i, -0.5, 1.0, (), frozenset())
        if row.finish:
            break
    assert row.finish == "stop" and row.text == " hel"
    assert "".join(t.token for t in row.tokens) == " hel"
    assert all(t.token for t in row.tokens)


def test_model_without_chat_template_uses_a_plain_transcript():
    import copy

    from adapters.hf.model import HFModel

    model, tokenizer = build_tiny_random()
    plain_tok = copy.deepcopy(tokenizer)
    plain_tok.chat_template = None
    m = HFModel(model, plain_tok, name="base")
    assert m.prompt_text(m.request("Hi", prefill="Sure")) == "User: Hi\nAssistant: Sure"
    assert m.generate("Hi", max_tokens=3).usage.completion_tokens >= 1


def test_importing_the_package_is_light():
    import subprocess
    import sys

    code = "import sys, adapters.hf; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

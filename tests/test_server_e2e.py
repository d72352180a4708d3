"""OpenAIModel and ChatModelAdapter(ChatOpenAI) against a real llama.cpp server running SmolLM2."""

from __future__ import annotations

import pytest

from adapters.langchain import ChatModelAdapter
from adapters.openai_compat import OpenAIModel
from adapters.specs import resolve_model
from adapters.types import Generation
from sc_chains.testing import LLAMA_MODEL_NAME, smollm2_gguf

pytestmark = [pytest.mark.server, pytest.mark.slow]

# SmolLM2's own template adds this system prompt when none is given; we pass it explicitly so the
# built-in "chatml" template renders exactly what the server's chat endpoint renders.
SYSTEM = {"role": "system", "content": "You are a helpful AI assistant named SmolLM, trained by Hugging Face"}
QUESTION = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
# llama.cpp applies repeat_penalty=1.1 by default, so its "greedy" pick is not always the raw
# argmax that the logprobs describe; 1.0 makes temperature=0 true greedy decoding.
GREEDY = {"repeat_penalty": 1.0}


@pytest.fixture(scope="module")
def oai(llama_server: str) -> OpenAIModel:
    return OpenAIModel(LLAMA_MODEL_NAME, base_url=llama_server, api_key="unused", chat_template="chatml", extra_body=GREEDY)


@pytest.fixture(scope="module")
def lc(llama_server: str) -> ChatModelAdapter:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=llama_server, api_key="x", model=LLAMA_MODEL_NAME, logprobs=True, max_retries=0, extra_body=GREEDY)
    return ChatModelAdapter(chat)


def assert_consistent(gen: Generation, top_k: int) -> None:
    """Tokens spell the text, offsets run through it, logprobs are log-probabilities."""
    assert gen.tokens, gen
    assert "".join(t.token for t in gen.tokens) == gen.text
    offset = 0
    for t in gen.tokens:
        assert t.offset == offset and gen.text[t.offset :].startswith(t.token)
        offset += len(t.token)
        assert t.logprob <= 1e-6
        assert len(t.top_logprobs) == top_k
        if top_k:
            lps = [a.logprob for a in t.top_logprobs]
            assert lps == sorted(lps, reverse=True)
            # greedy decoding picks the most likely token
            assert t.top_logprobs[0].token == t.token and t.top_logprobs[0].logprob == pytest.approx(t.logprob, abs=1e-4)


@pytest.mark.parametrize("name", ["oai", "lc"])
def test_text_logprobs_offsets_and_top_logprobs(request, name):
    model = request.getfixturevalue(name)
    gen = model.generate(QUESTION, max_tokens=12, top_logprobs=3)
    assert_consistent(gen, top_k=3)
    assert gen.usage.prompt_tokens > 10 and 0 < gen.usage.completion_tokens <= 12


@pytest.mark.parametrize("name", ["oai", "lc"])
def test_max_tokens_honoured_and_zero_alternatives(request, name):
    model = request.getfixturevalue(name)
    gen = model.generate("Write a long story about a dragon.", max_tokens=6, top_logprobs=0)
    assert gen.finish_reason == "length" and gen.usage.completion_tokens == 6 and len(gen.tokens) == 6
    assert_consistent(gen, top_k=0)


@pytest.mark.parametrize("name", ["oai", "lc"])
def test_stop_sequence_cuts_text_and_tokens(request, name):
    model = request.getfixturevalue(name)
    gen = model.generate("Count from 1 to 10, one number per line.", max_tokens=20, stop=["5"])
    assert "5" not in gen.text and "4" in gen.text
    assert_consistent(gen, top_k=0)


def test_both_adapters_agree_on_greedy_output(oai, lc):
    a = oai.generate(QUESTION, max_tokens=10, top_logprobs=2)
    b = lc.generate(QUESTION, max_tokens=10, top_logprobs=2)
    assert a.text == b.text
    assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens], abs=1e-4)


def test_prefill_continues_exactly(oai):
    full = oai.generate(QUESTION, max_tokens=12)
    cut = len(full.tokens[0].token) + len(full.tokens[1].token)
    prefix = full.text[:cut]
    cont = oai.generate(QUESTION, max_tokens=10, prefill=prefix, top_logprobs=2)
    assert cont.prefill == prefix and not cont.text.startswith(prefix)
    assert cont.full_text == full.text  # the continuation is exactly what chat decoding produced
    assert_consistent(cont, top_k=2)


def test_prefill_with_the_gguf_tokenizer_template(llama_server, oai):
    """A HF tokenizer (here read from the GGUF) renders the model's own template, default system prompt included."""
    pytest.importorskip("transformers")
    hf = OpenAIModel(LLAMA_MODEL_NAME, base_url=llama_server, chat_template=str(smollm2_gguf()), extra_body=GREEDY)
    question = [{"role": "user", "content": "What is 2+2?"}]  # no system message: the template adds it
    full = oai.generate(question, max_tokens=8)
    prefix = full.tokens[0].token
    cont = hf.generate(question, max_tokens=7, prefill=prefix)
    assert cont.full_text == full.text


async def test_async_matches_sync(oai, lc):
    for model in (oai, lc):
        sync = model.generate(QUESTION, max_tokens=8, top_logprobs=1)
        agen = await model.agenerate(QUESTION, max_tokens=8, top_logprobs=1)
        assert agen.text == sync.text
        assert [t.logprob for t in agen.tokens] == pytest.approx([t.logprob for t in sync.tokens], abs=1e-4)


async def test_batch_and_abatch_keep_input_order(oai):
    prompts = ["Say hi.", "Name a color.", "What is 2+2?"]
    singles = [oai.generate(p, max_tokens=5).text for p in prompts]
    assert [g.text for g in oai.batch(prompts, max_tokens=5, max_concurrency=3)] == singles
    assert [g.text for g in await oai.abatch(prompts, max_tokens=5, max_concurrency=3)] == singles


def test_resolve_openai_spec_against_the_server(llama_server):
    model = resolve_model(f"openai:{LLAMA_MODEL_NAME}", base_url=llama_server, api_key="x")
    assert model.generate("Hi", max_tokens=3).usage.completion_tokens == 3


def test_top_logprobs_limit_checked_before_sending(llama_server):
    from adapters.errors import InvalidRequestError

    model = OpenAIModel(LLAMA_MODEL_NAME, base_url=llama_server, max_top_logprobs=5)
    with pytest.raises(InvalidRequestError):
        model.generate("Hi", top_logprobs=6)


def test_eval_cli_against_the_server(llama_server, tmp_path):
    import json

    from sc_chains.cli import main

    data = tmp_path / "SVAMP.json"
    data.write_text(json.dumps([{"ID": f"s{i}", "Body": f"Ann has {i} pens and buys 2 more.",
                                 "Question": "How many pens does Ann have?", "Answer": float(i + 2)}
                                for i in range(2)]))
    out = tmp_path / "run"
    rc = main(["eval", "--dataset", "svamp", "--data", str(data), "--chains", "baseline,critique",
               "--model", f"openai:{LLAMA_MODEL_NAME}", "--base-url", llama_server,
               "--model-option", "api_key=x", "--model-option", "timeout=60",
               "--set", "baseline.max_tokens=24", "--set", "critique.max_tokens=24",
               "--set", "critique.critique_max_tokens=24", "--out", str(out), "--no-progress", "--no-plots"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == f"openai:{LLAMA_MODEL_NAME}" and summary["problems"] == 2
    assert "api_key" not in summary["model_options"] and summary["model_options"]["base_url"] == llama_server
    for name in ("baseline", "critique"):
        e = summary["chains"][name]
        assert e["n"] == 2 and e["failed"] == 0 and e["cost"]["completion_tokens_per_problem"] > 0

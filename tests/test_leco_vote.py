"""LECO with sampled rethinks (``rethink_samples``): one n=k call per cut, every continuation
votes. The pure round rule on literals, the loop on the scripted fake and hf:tiny-random."""

from __future__ import annotations

import asyncio
import json

import pytest

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import GenerationRequest
from graphs.leco import LecoConfig, create_leco_graph
from graphs.leco.policy import round_representative
from sc_chains.testing import FakeLogprobModel, FakeReply

Q = "Tom has 3 apples. He buys 4 more and eats 1. How many apples does he have?"
S1 = "Step 1: Tom has 3 apples.\n"
S2_BAD = "Step 2: He buys 4 more, so 3 + 4 = 8."
S3_BAD = "Step 3: He eats 1, so 8 - 1 = 7."
FIRST = FakeReply(f"{S1}{S2_BAD}\n{S3_BAD}\nThe answer is 7.", overrides={S2_BAD: -3.0, S3_BAD: -1.0})
S2 = "Step 2: He buys 4 more, so 3 + 4 = 7."
S3 = "Step 3: He eats 1, so 7 - 1 = 6."
S4 = "Step 4: Check: 6 is right."
SIX = FakeReply(f"{S2}\n{S3}\n{S4}\nThe answer is 6.", overrides={S3: -2.0, S4: -1.0})
EIGHT = FakeReply(f"{S2_BAD}\nStep 3: So 8.\nThe answer is 8.")
SIX_TAIL = FakeReply(f"{S3}\nThe answer is 6.")


def by_seed(table: dict[int, FakeReply]):
    """A scripted reply chosen by the request's seed (batched rows may run in any order)."""
    def reply(req: GenerationRequest) -> FakeReply:
        return table[req.seed]
    return reply


def fake_for(table: dict[int, FakeReply]) -> FakeLogprobModel:
    return FakeLogprobModel([FIRST], default=by_seed(table))


# -- pure -----------------------------------------------------------------------------------------
def test_round_representative_is_the_first_sample_of_the_plurality_answer() -> None:
    assert round_representative(["6", "8", "6.0"], [4, 5, 6]) == 4
    assert round_representative(["8", "6", "6"], [1, 2, 3]) == 2
    assert round_representative(["8", "6"], [1, 2]) == 1  # a tie goes to the answer seen first
    assert round_representative([None, "5"], [7, 8]) == 8  # no answer does not vote
    assert round_representative([None, None], [7, 8]) == 7
    assert round_representative(["3"], [0]) == 0


@pytest.mark.parametrize("bad", [0, 17, 2.0, True])
def test_rethink_samples_is_bounded(bad) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        LecoConfig(rethink_samples=bad, rethink_temperature=0.7)
    assert exc.value.param == "rethink_samples"


def test_sampled_rethinks_need_a_temperature() -> None:
    with pytest.raises(InvalidRequestError, match="rethink_temperature > 0") as exc:
        LecoConfig(rethink_samples=3)
    assert exc.value.param == "rethink_temperature"
    LecoConfig(rethink_samples=3, temperature=0.5)  # the first attempt's temperature carries over
    LecoConfig(rethink_samples=3, rethink_temperature=0.7)


# -- the loop on the fake ---------------------------------------------------------------------------
def test_one_call_with_n_samples_per_cut_and_every_sample_votes() -> None:
    fake = fake_for({1: SIX, 2: EIGHT, 3: SIX})
    out = create_leco_graph(fake, rethink_samples=3, rethink_temperature=0.7, seed=0,
                            max_rethinks=1).invoke({"question": Q})

    assert len(fake.calls) == 4
    rethinks = fake.calls[1:]
    assert [c.seed for c in rethinks] == [1, 2, 3] and {c.temperature for c in rethinks} == {0.7}
    assert {c.prefill for c in rethinks} == {S1}  # every sample continues the same kept prefix
    assert fake.calls[0].temperature == 0.0
    # each sample's token limit is its share of what is left of the run's budget
    used = out["attempts"][0]["usage"]["completion_tokens"]
    assert {c.max_tokens for c in rethinks} == {min(512, (2048 - used) // 3)}
    assert out["candidates"] == ["7", "6", "8", "6"]
    assert [a["cut"] for a in out["attempts"]] == [None, 0, 0, 0]
    assert len(out["cuts"]) == 1 and out["stop_reason"] == "max_rethinks"
    assert out["vote"] == {"7": 1.5, "6": 2.0, "8": 1.0}
    assert out["answer"] == "6" and out["status"] == "corrected"
    assert out["response"] == f"{S1}{SIX.text}"  # the latest with the winner
    assert out["usage"]["calls"] == 4
    assert out["usage"]["completion_tokens"] == sum(a["usage"]["completion_tokens"] for a in out["attempts"])
    json.dumps(out)


def test_the_first_answer_keeps_its_weight_against_a_split_round() -> None:
    fake = fake_for({1: SIX, 2: EIGHT})
    out = create_leco_graph(fake, rethink_samples=2, rethink_temperature=0.7, seed=0,
                            max_rethinks=1).invoke({"question": Q})
    assert out["vote"] == {"7": 1.5, "6": 1.0, "8": 1.0}
    assert out["answer"] == "7" and out["status"] == "kept"


def test_rounds_agree_on_their_plurality_and_the_next_cut_is_on_its_sample() -> None:
    # round 1 (seeds 1-3): 8, 6, 6 -> plurality 6, its first sample is attempt 2 (SIX): cut there
    # round 2 (seeds 4-6): 6, 6, 8 -> plurality 6 again: agreement
    fake = fake_for({1: EIGHT, 2: SIX, 3: SIX, 4: SIX_TAIL, 5: SIX_TAIL, 6: EIGHT})
    events: list[dict] = []
    graph = create_leco_graph(fake, rethink_samples=3, rethink_temperature=0.7, seed=0, max_rethinks=3)
    for chunk in graph.stream({"question": Q}, stream_mode="custom"):
        events.append(chunk)
    done = events[-1]
    assert done["event"] == "leco.done" and done["stop_reason"] == "agreement"
    assert [e["event"] for e in events].count("leco.rethink") == 6
    assert [e["event"] for e in events].count("leco.cut") == 2
    assert len(fake.calls) == 7
    cut2 = [e for e in events if e["event"] == "leco.cut"][1]
    assert cut2["attempt"] == 2 and cut2["prefix"] == f"{S1}{S2}\n"  # SIX's least confident step is 3
    assert {c.prefill for c in fake.calls[4:]} == {f"{S1}{S2}\n"}
    assert done["answer"] == "6"
    assert [a["cut_step"] for a in done["attempts"]] == [None, 1, 1, 1, 2, 2, 2]


def test_sync_and_async_agree() -> None:
    table = {1: SIX, 2: EIGHT, 3: SIX}
    kw = dict(rethink_samples=3, rethink_temperature=0.7, seed=0, max_rethinks=1)
    sync = create_leco_graph(fake_for(table), **kw).invoke({"question": Q})
    asy = asyncio.run(create_leco_graph(fake_for(table), **kw).ainvoke({"question": Q}))
    assert sync["candidates"] == asy["candidates"] and sync["answer"] == asy["answer"] == "6"


# -- the same loop in the middleware ---------------------------------------------------------------
def _agent(chat, **kw):
    from langchain.agents import create_agent

    from sc_chains.middleware.leco import LecoMiddleware

    mw = LecoMiddleware(rethink_samples=3, rethink_temperature=0.7, seed=0, max_rethinks=1, **kw)
    return create_agent(chat, middleware=[mw])


USER = {"messages": [{"role": "user", "content": Q}]}


def test_the_middleware_samples_every_cut_and_every_sample_votes() -> None:
    from sc_chains.testing import FakeLogprobChatModel

    chat = FakeLogprobChatModel(replies=[FIRST, SIX, EIGHT, SIX])
    out = _agent(chat).invoke(USER)
    trace = out["messages"][-1].response_metadata["sc_chains"]["leco"]

    assert len(chat.calls) == 4
    draft, *samples = chat.call_kwargs
    assert "seed" not in draft and "temperature" not in draft  # the draft keeps the agent's settings
    assert [k["seed"] for k in samples] == [1, 2, 3] and {k["temperature"] for k in samples} == {0.7}
    assert len({tuple(m.text for m in c) for c in chat.calls[1:]}) == 1  # one kept prefix for all
    assert [a["answer"] for a in trace["attempts"]] == ["7", "6", "8", "6"]
    assert trace["votes"] == {"7": 1.5, "6": 2.0, "8": 1.0}
    assert trace["answer"] == "6" and trace["status"] == "corrected" and trace["stop_reason"] == "max_rethinks"
    assert trace["cost"]["calls"] == 4 and trace["corrections"] == 1  # a round is one correction
    assert out["messages"][-1].text.endswith("The answer is 6.")


def test_the_middleware_runs_a_round_concurrently_under_ainvoke() -> None:
    from sc_chains.testing import FakeLogprobChatModel

    chat = FakeLogprobChatModel(replies=[FIRST, SIX, EIGHT, SIX])
    out = asyncio.run(_agent(chat).ainvoke(USER))
    trace = out["messages"][-1].response_metadata["sc_chains"]["leco"]
    assert sorted(k["seed"] for k in chat.call_kwargs[1:]) == [1, 2, 3]
    assert sorted(a["answer"] for a in trace["attempts"][1:]) == ["6", "6", "8"]
    assert trace["votes"] == {"7": 1.5, "6": 2.0, "8": 1.0} and trace["answer"] == "6"


def test_graph_and_middleware_make_the_same_sampled_run() -> None:
    from sc_chains.testing import FakeLogprobChatModel

    kw = dict(rethink_samples=3, rethink_temperature=0.7, seed=0, max_rethinks=1, prob_mode="true")
    state = create_leco_graph(fake_for({1: SIX, 2: EIGHT, 3: SIX}), regeneration="chat", **kw).invoke({"question": Q})
    chat = FakeLogprobChatModel(replies=[FIRST, SIX, EIGHT, SIX])
    from langchain.agents import create_agent

    from graphs.leco.prompts import USER_TEMPLATE
    from sc_chains.middleware.leco import LecoMiddleware

    agent = create_agent(chat, middleware=[LecoMiddleware(**kw)])
    out = agent.invoke({"messages": [{"role": "user", "content": USER_TEMPLATE.format(question=Q)}]})
    trace = out["messages"][-1].response_metadata["sc_chains"]["leco"]
    assert [a["answer"] for a in trace["attempts"]] == state["candidates"]
    assert trace["votes"] == state["vote"] and trace["answer"] == state["answer"] == "6"
    assert trace["cost"] == state["usage"]
    assert out["messages"][-1].content == state["response"]


def test_the_middleware_never_samples_a_side_conversation() -> None:
    from graphs.loop import ModelCall
    from sc_chains.middleware._calls import AgentCalls

    calls = AgentCalls("leco", "final", models={"critic": object()})
    with pytest.raises(InvalidRequestError, match="n > 1") as exc:
        calls.call(ModelCall("critique", messages=({"role": "user", "content": "hi"},), target="critic", n=2))
    assert exc.value.param == "ModelCall"


# -- the local model -------------------------------------------------------------------------------
def test_tiny_random_samples_every_cut_in_one_batch() -> None:
    tiny = resolve_model("hf:tiny-random")
    out = create_leco_graph(tiny, max_tokens=40, rethink_samples=3, rethink_temperature=1.0, seed=1,
                            max_rethinks=1).invoke({"question": "2+3?"})
    n_cuts = len(out["cuts"])
    assert n_cuts == 1  # the greedy draft of "2+3?" has candidate steps
    assert len(out["attempts"]) == 1 + 3 * n_cuts
    assert out["usage"]["calls"] == len(out["attempts"])
    for a in out["attempts"][1:]:
        assert a["cut"] == 0 and a["response"].startswith(out["cuts"][0]["prefix"])
    assert out["usage"]["completion_tokens"] == sum(a["usage"]["completion_tokens"] for a in out["attempts"])


def test_the_local_model_encodes_a_shared_prompt_once_and_each_row_equals_its_lone_reply() -> None:
    from adapters.hf import load_hf_model

    tiny = resolve_model("hf:tiny-random")
    msgs = [{"role": "user", "content": "2+3?"}]
    greedy = tiny.batch([msgs] * 3, max_tokens=12)
    alone = tiny.generate(msgs, max_tokens=12)
    assert {g.text for g in greedy} == {alone.text}
    reqs = [tiny.request(msgs, max_tokens=12, temperature=1.0, seed=s, prefill="Step 1:") for s in (3, 4, 5)]
    shared = tiny.generate_batch(reqs)
    fresh = load_hf_model("tiny-random", kv_reuse=False)
    assert [g.text for g in shared] == [fresh.generate(r).text for r in reqs]
    prompt = len(tiny.encode(reqs[0]))
    assert all(g.usage.cached_tokens == prompt - 1 for g in shared[1:])  # rows 2.. reuse row 1's prefill
    assert len({g.text for g in shared}) > 1  # the seeds give different samples


def test_the_middleware_samples_a_real_model_reproducibly_with_seeds() -> None:
    from langchain.agents import create_agent

    from sc_chains.chat_model import ChatLogprobModel
    from sc_chains.middleware.leco import LecoMiddleware

    class Spy(ChatLogprobModel):
        seen: list = []

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            self.seen.append({k: kwargs.get(k) for k in ("temperature", "seed")})
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    chat = Spy(resolve_model("hf:tiny-random"), max_tokens=24)

    def run() -> tuple[dict, str]:
        mw = LecoMiddleware(rethink_samples=3, rethink_temperature=1.0, seed=1, max_rethinks=1,
                            applies=lambda q: True, step_instruction=False)
        out = create_agent(chat, middleware=[mw]).invoke({"messages": [{"role": "user", "content": "2+3?"}]})
        return out["messages"][-1].response_metadata["sc_chains"]["leco"], out["messages"][-1].text

    (trace, text), again = run(), run()
    if trace["stop_reason"] == "no_candidate_step":  # random text may have no step to cut
        pytest.skip("the random draft had no candidate step")
    assert len(trace["attempts"]) == 4 and trace["cost"]["calls"] == 4 and trace["corrections"] == 1
    assert chat.seen[:4] == [{"temperature": None, "seed": None}, *({"temperature": 1.0, "seed": s} for s in (2, 3, 4))]
    # seed + i per sample: the same samples again (only the prompt cache's reuse differs)
    assert (again[0]["attempts"], again[0]["votes"], again[1]) == (trace["attempts"], trace["votes"], text)

"""LECO in the plain chain-of-thought format: the prompt, line-split steps, the eval chains."""

from __future__ import annotations

import pytest

from adapters.errors import InvalidRequestError
from graphs.leco import LecoConfig, create_leco_graph
from graphs.leco.prompts import PLAIN_FORMAT, PLAIN_USER_TEMPLATE, chat_messages
from graphs.sc.config import SC_INSTRUCTION
from sc_chains.cli.options import validate_chain_options
from sc_chains.eval.chains import CHAINS, LECO_VOTE
from sc_chains.testing import FakeLogprobModel, FakeReply

Q = "Tom has 3 apples. He buys 4 more and eats 1. How many apples does he have?"
L1 = "Tom starts with 3 apples.\n"
L2_BAD = "After buying 4 more he has 3 + 4 = 8."
L3_BAD = "Then 8 - 1 = 7."
FIRST = FakeReply(f"{L1}{L2_BAD}\n{L3_BAD}\nThe answer is 7.", overrides={L2_BAD: -3.0, L3_BAD: -1.0})
TAIL = FakeReply("After buying 4 more he has 3 + 4 = 7.\nThen 7 - 1 = 6.\nThe answer is 6.")


def test_the_plain_prompt_is_the_question_with_scs_instruction_and_no_system_message() -> None:
    assert PLAIN_USER_TEMPLATE == "{question}\n\n" + SC_INSTRUCTION
    assert chat_messages(Q, **PLAIN_FORMAT) == [{"role": "user", "content": f"{Q}\n\n{SC_INSTRUCTION}"}]
    # a caller's own system message stays; only {question} is filled (other braces are literal)
    msgs = chat_messages("2+2?", "", [{"role": "system", "content": "Be brief."}], "Q {x}: {question}")
    assert msgs == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q {x}: 2+2?"}]


def test_a_plain_draft_is_cut_at_its_least_confident_line_and_continued_without_step_labels() -> None:
    fake = FakeLogprobModel([FIRST, TAIL])
    out = create_leco_graph(fake, max_rethinks=1, **PLAIN_FORMAT).invoke({"question": Q})
    first, rethink = fake.calls
    assert [m["role"] for m in first.messages] == ["user"] and first.messages[0]["content"].startswith(Q)
    assert rethink.prefill == L1  # the line before the earlier of the two lowest, verbatim: no "Step 2:"
    assert out["cuts"][0]["step_text"] == L2_BAD
    assert out["candidates"] == ["7", "6"] and out["attempts"][1]["seed"] == ""


def test_user_template_must_hold_the_question() -> None:
    with pytest.raises(InvalidRequestError, match="user_template") as err:
        LecoConfig(user_template="Solve it.")
    assert "'Solve it.'" in str(err.value) and "{question}" in str(err.value)
    with pytest.raises(InvalidRequestError, match="user_template"):
        validate_chain_options("leco-vote-plain", {"user_template": 3})


def test_the_eval_chains_combine_the_plain_format_with_their_settings() -> None:
    assert {"leco-plain", "leco-vote-plain"} <= set(CHAINS)
    validate_chain_options("leco-vote-plain", {"max_rethinks": 1})
    with pytest.raises(InvalidRequestError, match="rethink_temperature"):  # leco-vote's samples need it
        validate_chain_options("leco-vote-plain", {"rethink_temperature": 0})
    assert LECO_VOTE["rethink_samples"] > 1

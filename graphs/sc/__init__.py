"""Self-consistency (Wang et al., 2023): ``k`` sampled full solutions and a majority vote."""

from graphs.sc.config import ScConfig
from graphs.sc.graph import ScInput, ScState, create_sc_graph
from graphs.sc.loop import sc_loop
from graphs.sc.policy import Vote, VoteGroup, majority_vote

__all__ = ["ScConfig", "ScInput", "ScState", "Vote", "VoteGroup", "create_sc_graph", "majority_vote", "sc_loop"]

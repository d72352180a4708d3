"""LangGraph state machines for self-correction, and the pure policies that drive them.

Layering: ``graphs`` may import ``adapters``, never ``sc_chains``. Each graph lives in its own
subpackage; its decisions live in a ``policy`` module with no LangGraph or model import.
"""

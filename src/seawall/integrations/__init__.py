"""Adapters for the clients, frameworks and executors agents are already written with.

Each adapter is a module imported on its own, behind its own extra, so importing
``seawall.integrations`` pulls in no framework: ``seawall.integrations.openai``
(``pip install 'seawall[openai]'``), ``seawall.integrations.pydantic_ai``
(``seawall[pydantic-ai]``), ``seawall.integrations.langgraph`` (``seawall[langgraph]``),
``seawall.integrations.openai_agents`` (``seawall[openai-agents]``),
``seawall.integrations.mcp`` (``seawall[mcp]``), ``seawall.integrations.embeddings``
(``seawall[semantic]``: embedders for semantic drift), and ``seawall.integrations.celery``
(``seawall[celery]``), which executes runs in Celery workers.
"""

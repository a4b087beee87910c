"""Adapters for the clients and frameworks agents are already written with.

Each adapter is a module imported on its own, behind its own extra, so importing
``seawall.integrations`` pulls in no framework: ``seawall.integrations.openai``
(``pip install 'seawall[openai]'``), ``seawall.integrations.pydantic_ai``
(``seawall[pydantic-ai]``), ``seawall.integrations.langgraph`` (``seawall[langgraph]``).
"""

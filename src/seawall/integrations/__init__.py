"""Adapters for the frameworks Seawall runs with.

Each adapter is a module imported on its own, behind its own extra, so importing
``seawall.integrations`` pulls in no framework: ``seawall.integrations.celery``
(``pip install 'seawall[celery]'``) executes runs in Celery workers.
"""

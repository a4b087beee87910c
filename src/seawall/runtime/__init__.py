"""The engine: executor, runner, context and journal, and the services they are given."""

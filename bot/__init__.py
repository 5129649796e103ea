"""The Slack adapter: Block Kit builders, typed identifiers and (later) the Bolt app.

It may import from `api`, never the reverse (except `api/main.py`, the composition root).
"""

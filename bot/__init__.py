"""The Slack adapter: the Bolt app and its listeners, the outbox jobs that post
and update messages, and the pure Block Kit builders they share.

It may import from `api`, never the reverse: the core names it only by string, in
`api/surfaces/installed.py` (the registry of decision surfaces).
"""

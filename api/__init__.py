"""Cheqpoint: a human approval gate, in Slack, for AI agents that move money on Stripe."""

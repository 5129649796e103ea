"""Reconciliation from Stripe's webhooks: later outcomes of executions we carried out."""

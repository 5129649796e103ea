"""The Cheqpoint-compatible API (CONTRACT §3b): a thin translation onto `api.approvals.service`."""

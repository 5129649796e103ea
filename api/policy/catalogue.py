"""What a policy may name: the catalogue's actions (CONTRACT §5), read from `api.actions` so the
policy checks against the same details models that validate requests, and the variables a
condition can read."""

from types import MappingProxyType

from api.actions import ACTIONS

# Fields of `details` per catalogue action, for the load-time check of `details.<field>`.
DETAILS_FIELDS: MappingProxyType[str, frozenset[str]] = MappingProxyType({
    name: frozenset(spec.details_model.model_fields) for name, spec in ACTIONS.items()
})

CATALOGUE_ACTIONS = frozenset(DETAILS_FIELDS)

# Only these may be decided `pass` (run at once, no review): they change nothing at Stripe.
READ_ONLY_ACTIONS = frozenset(name for name, spec in ACTIONS.items() if spec.read_only)

ALL_DETAILS_FIELDS = frozenset().union(*DETAILS_FIELDS.values())

# The request's own fields a condition may read, as the intake API names them (camelCase).
REQUEST_FIELDS = frozenset({"riskLevel", "priority", "agentName", "metadata"})

CONNECTION_FIELDS = frozenset({"id", "name"})

# The top-level names a condition may use.
VARIABLES = frozenset({"action", "details", "request", "connection", "totals", "stripe", "now"})

"""The fake Stripe API for tests (see `fake.py`): `from tests.fakes.stripe import FakeStripe`."""

from tests.fakes.stripe.fake import FakeStripe
from tests.fakes.stripe.objects import charge_object, dispute_object, list_of, subscription_object
from tests.fakes.stripe.wire import (
    BUILT_IN_PARAMETERS,
    SPEC_PATH,
    RecordedRequest,
    StripeErrorResponse,
    find_problem,
    invalid,
    load_spec,
    new_id,
    parse_brackets,
)

__all__ = ["BUILT_IN_PARAMETERS", "SPEC_PATH", "FakeStripe", "RecordedRequest", "StripeErrorResponse",
           "charge_object", "dispute_object", "find_problem", "invalid", "list_of", "load_spec", "new_id",
           "parse_brackets", "subscription_object"]

"""close_dispute and submit_dispute_evidence → `/v1/disputes/{id}`."""

from typing import Annotated, Any

from pydantic import StrictBool, StrictStr, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from api.actions.base import ActionSpec, EditableField, ExecutionOutcome, without_none
from api.actions.fields import Details, DisputeId
from api.execution.gateway import StripeGateway

# Stripe's limits: long explanations up to 20,000 characters, everything else 5,000.
Text = Annotated[StrictStr, StringConstraints(max_length=20000)]
Short = Annotated[StrictStr, StringConstraints(max_length=5000)]


class Evidence(Details):
    """Stripe's dispute evidence fields; file fields take uploaded file ids (file_…)."""

    access_activity_log: Text | None = None
    billing_address: Short | None = None
    cancellation_policy: Short | None = None
    cancellation_policy_disclosure: Text | None = None
    cancellation_rebuttal: Text | None = None
    customer_communication: Short | None = None
    customer_email_address: Short | None = None
    customer_name: Short | None = None
    customer_purchase_ip: Short | None = None
    customer_signature: Short | None = None
    duplicate_charge_documentation: Short | None = None
    duplicate_charge_explanation: Text | None = None
    duplicate_charge_id: Short | None = None
    product_description: Text | None = None
    receipt: Short | None = None
    refund_policy: Short | None = None
    refund_policy_disclosure: Text | None = None
    refund_refusal_explanation: Text | None = None
    service_date: Short | None = None
    service_documentation: Short | None = None
    shipping_address: Short | None = None
    shipping_carrier: Short | None = None
    shipping_date: Short | None = None
    shipping_documentation: Short | None = None
    shipping_tracking_number: Short | None = None
    uncategorized_file: Short | None = None
    uncategorized_text: Text | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> "Evidence":
        if not self.model_fields_set:
            raise PydanticCustomError("evidence_empty", "give at least one evidence field")
        return self


class CloseDisputeDetails(Details):
    dispute_id: DisputeId


class CloseDispute(ActionSpec):
    """Accepts the loss: irreversible, which is why nothing in it is editable."""

    name = "close_dispute"
    title = "Close dispute"
    plural = "Dispute closures"
    stripe_object = "dispute"
    family = "dispute"
    details_model = CloseDisputeDetails

    def headline(self, details: dict[str, Any]) -> str:
        return f"Close dispute {details.get('dispute_id', '')} (accept the loss)"

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        dispute = await gateway.close_dispute(details.dispute_id, idempotency_key=idempotency_key)
        return ExecutionOutcome(dispute["id"], dispute)


class SubmitDisputeEvidenceDetails(Details):
    dispute_id: DisputeId
    evidence: Evidence
    # Stripe submits at once unless told false, in which case the evidence is only staged.
    submit: StrictBool | None = None


class SubmitDisputeEvidence(ActionSpec):
    name = "submit_dispute_evidence"
    title = "Submit dispute evidence"
    plural = "Dispute evidence"
    stripe_object = "dispute"
    family = "dispute"
    details_model = SubmitDisputeEvidenceDetails
    editable = (EditableField("submit", "Submit to the bank now", "bool"),)

    def headline(self, details: dict[str, Any]) -> str:
        verb = "Submit" if details.get("submit") else "Save"
        return f"{verb} evidence for dispute {details.get('dispute_id', '')}".strip()

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        params = without_none({
            "evidence": details.evidence.model_dump(exclude_none=True),
            "submit": details.submit,
        })
        dispute = await gateway.update_dispute(details.dispute_id, params, idempotency_key=idempotency_key)
        return ExecutionOutcome(dispute["id"], dispute)

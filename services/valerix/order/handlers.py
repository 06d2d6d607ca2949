"""Which event goes to which order use case: the table the worker's consumers dispatch on."""

from __future__ import annotations

from valerix.contracts.events import OrderVerified
from valerix.kit.service_worker import Handlers
from valerix.order import service

HANDLERS: Handlers = {
    OrderVerified: service.apply_verification,
}

"""A service in a nameko container on the real broker does no work for a call
the gateway did not vouch for: no worker, no row, a warning without the
arguments; a vouched call works and its assertion goes no further; a service
without the public key does not start."""
import logging

import pytest
from nameko.exceptions import ConfigurationError
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ServiceRpcProxy

from services.common.caller import HEADER
from services.common.errors import CallerNotVouched
from services.common.service import rpc
from services.welfare.models import AuditEntry, Household
from services.welfare.service import WelfareService
from tests.integration.conftest import ADMIN, HOUSEHOLD, count
from tests.vouching import vouched_rpc, with_caller_keys

SECRET_ADDRESS = "Building 9, Room 909, knock twice"


class ContextData(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx.context_data


class Probe:
    name = "probe"
    context_data = ContextData()
    calls = []

    @rpc
    def touch(self, note):
        Probe.calls.append(note)
        return sorted(self.context_data)


def test_an_unvouched_call_spawns_no_worker_and_writes_nothing(service_config, start_service, caplog):
    config = service_config("welfare")
    start_service(WelfareService, config)
    caplog.set_level(logging.WARNING)
    household = {**HOUSEHOLD, "address": SECRET_ADDRESS}
    with ServiceRpcProxy("welfare", {"AMQP_URI": config["AMQP_URI"]}, timeout=15) as welfare:
        with pytest.raises(CallerNotVouched) as refused:
            welfare.create_household(household, ADMIN)
        assert refused.value.details == {"reason": "the call carries no assertion"}
        with pytest.raises(CallerNotVouched):
            welfare.list_audit(ADMIN)
    assert count(config, Household) == 0 and count(config, AuditEntry) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.getMessage()]
    assert warnings == ["refused an RPC call to welfare.create_household: the call carries no assertion",
                        "refused an RPC call to welfare.list_audit: the call carries no assertion"]
    assert SECRET_ADDRESS not in caplog.text

    with vouched_rpc(config, "welfare") as welfare:  # the same call, vouched for: done
        created = welfare.create_household(household, ADMIN)
        assert welfare.get_household(created["id"], ADMIN)["address"] == SECRET_ADDRESS
    assert count(config, Household) == 1


def test_a_refused_call_runs_nothing_and_a_vouched_ones_assertion_goes_no_further(vhost, start_service):
    config = with_caller_keys({"AMQP_URI": vhost.amqp_uri})
    start_service(Probe, config)
    Probe.calls.clear()
    with ServiceRpcProxy("probe", config, timeout=15, context_data={"caller": "forged"}) as probe:
        with pytest.raises(CallerNotVouched):
            probe.touch("unvouched")
    with vouched_rpc(config, "probe") as probe:
        context = probe.touch("vouched")
    assert Probe.calls == ["vouched"]
    assert HEADER not in context  # not context data: nothing the worker sends on carries it


def test_a_service_without_the_public_key_does_not_start(service_config, container_factory):
    config = service_config("welfare")
    del config["CALLER_PUBLIC_KEY"]
    container = container_factory(WelfareService, config)
    with pytest.raises(ConfigurationError, match="CALLER_PUBLIC_KEY"):
        container.start()

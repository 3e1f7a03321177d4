"""API Gateway's gateway responses as AWS applies them, for LocalStack.

LocalStack 2026.3.0 applies a gateway response's status code but neither its body template nor
its headers (next_gen/execute_api/handlers/gateway_exception.py: "TODO apply responseTemplates").
AWS renders the `application/json` template (a VTL template: $context.requestId,
$context.error.messageString, ...) and sets each `gatewayresponse.header.*` given as a static
'value'. This hook does the same, with LocalStack's own VTL renderer, so a deployment that sets
gateway responses (sluice's: tools/deploy/gateway_responses.py) answers here as it would on AWS.
"""

import json
import logging
from typing import Any

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)
_HEADER = "gatewayresponse.header."


@hooks.on_infra_start()
def apply_gateway_response_templates() -> None:
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
        get_gateway_response_or_default,
    )
    from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import (
        GatewayExceptionHandler,
    )
    from localstack.services.apigateway.next_gen.execute_api.template_mapping import ApiGatewayVtlTemplate

    original = GatewayExceptionHandler.create_exception_response
    renderer = ApiGatewayVtlTemplate()

    def create_exception_response(handler: Any, exception: Any, context: Any) -> Any:
        response = original(handler, exception, context)
        try:
            configured = get_gateway_response_or_default(exception.type, context.deployment.rest_api.gateway_responses)
            template = (configured.get("responseTemplates") or {}).get("application/json")
            if template:
                context_variables = dict(context.context_variables)
                error = dict(context_variables.get("error") or {})
                # AWS: messageString is the message quoted as a JSON string (LocalStack leaves it bare)
                error["messageString"] = json.dumps(error.get("message") or "")
                context_variables["error"] = error
                variables = {
                    "context": context_variables,
                    "stageVariables": context.stage_variables or {},
                    "input": {"body": b"", "params": {}},
                }
                response.set_data(renderer.render_vtl(template=template.strip(), variables=variables))
            for name, value in (configured.get("responseParameters") or {}).items():
                if name.startswith(_HEADER) and len(value) >= 2 and value[0] == value[-1] == "'":
                    response.headers[name.removeprefix(_HEADER)] = value[1:-1]
        except Exception:  # LocalStack's own answer stands if ours cannot be made
            LOG.exception("sluice: could not apply the gateway response of %s", exception.type)
        return response

    GatewayExceptionHandler.create_exception_response = create_exception_response

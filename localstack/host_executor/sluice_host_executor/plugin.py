"""The plux plugin LocalStack finds by LAMBDA_RUNTIME_EXECUTOR=host."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "host"

    def load(self, *args, **kwargs):
        from sluice_host_executor.executor import HostRuntimeExecutor

        return HostRuntimeExecutor

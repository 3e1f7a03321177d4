"""The plux plugins LocalStack finds: the Lambda runtime executor named by
LAMBDA_RUNTIME_EXECUTOR=host, and the provider of CloudFormation custom resources."""

from localstack.services.cloudformation.resource_provider import CloudFormationResourceProviderPlugin, ResourceProvider
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "host"

    def load(self, *args, **kwargs):
        from sluice_host_executor.executor import HostRuntimeExecutor

        return HostRuntimeExecutor


class CustomResourceProviderPlugin(CloudFormationResourceProviderPlugin):
    """Custom::* and AWS::CloudFormation::CustomResource, backed by a Lambda function."""

    name = "AWS::CloudFormation::CustomResource"

    def __init__(self) -> None:
        self.factory: type[ResourceProvider] | None = None

    def load(self):
        from sluice_host_executor.custom_resource import CustomResourceProvider

        self.factory = CustomResourceProvider

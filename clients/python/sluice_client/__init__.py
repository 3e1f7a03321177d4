"""Send logs to sluice: `SluiceHandler` for the logging module, `Client` for the HTTP API."""

from sluice_client.client import Client, SluiceError
from sluice_client.handler import SluiceHandler

__all__ = ["Client", "SluiceError", "SluiceHandler"]

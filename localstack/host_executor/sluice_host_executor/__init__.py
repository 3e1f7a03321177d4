"""Run LocalStack's Lambda execution environments as host processes (see localstack/README.md)."""

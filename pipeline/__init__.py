"""The self-mutating CDK Pipelines pipeline: push -> staging (migrate, smoke, load test) -> approval -> prod."""

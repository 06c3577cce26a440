"""Prefect flows: orchestration only. The business logic lives in negsamp.stages."""

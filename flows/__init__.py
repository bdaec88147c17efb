"""Prefect 3 orchestration: the only code that imports prefect."""

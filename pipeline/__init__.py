"""Pure data logic (no Prefect): fetch, sections, align, code-switch, significance."""

"""Renderers of a run: Markdown (report.md, GitHub step summary) and the --json document."""

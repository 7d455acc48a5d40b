"""Reports: HTML/Markdown/JSON outputs and figures of the contamination check and the analysis."""

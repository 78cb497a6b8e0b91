"""Build-time tools, not installed: man pages and shell completion, generated from the argparse definitions."""

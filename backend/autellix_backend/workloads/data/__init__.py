"""Package data of the workloads (the compact BFCL token counts)."""

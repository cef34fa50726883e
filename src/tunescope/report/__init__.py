"""Report: Results -> figures and a self-contained HTML report."""

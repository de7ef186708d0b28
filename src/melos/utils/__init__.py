"""Small helpers every layer may use: Markdown tables, matplotlib figures, atomic writes."""

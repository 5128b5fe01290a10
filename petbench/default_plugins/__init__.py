"""What the host itself registers, through the same hooks as any plugin."""

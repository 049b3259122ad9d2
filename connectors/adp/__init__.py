"""ADP Workforce Now (HR): read-only worker connector over mutual TLS, with its event queue, and its local sandbox."""

"""Views of the client workspace, one module per screen. Thin: role check, form, one service or selector, render."""

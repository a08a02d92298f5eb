"""Presentation: magics, CLI, demo, widgets and the dashboard. Parses and displays only."""

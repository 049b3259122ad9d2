"""Asana: tasks and their time tracking entries over REST API 1.0."""

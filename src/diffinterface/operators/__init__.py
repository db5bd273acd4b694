"""Operators: generic definitions and dispatch to the engines."""

"""Errors of the concrete loopback-ism model.

The model is an implementation, not the spec, so it has its own error classes (it must not
import spec logic). Every error leaves the device and connection state unchanged.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every error the model raises for a bad call."""

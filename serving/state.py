"""Typed keys for what the aiohttp application and its requests hold."""

from __future__ import annotations

from aiohttp import web

from serving.servable import ServableManager
from serving.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVABLES = web.AppKey("servables", ServableManager)
# The servable a request named, for the metrics' model label (set by the routes that know it).
MODEL_LABEL = web.RequestKey("ovserve_model", str)
